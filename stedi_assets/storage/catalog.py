"""The Iceberg catalog of a lake, chosen by one setting (STEDI_CATALOG).

- `sqlite` (the default for a local lake): an embedded SQLite SQL catalog inside the lake, `<lake>/_catalog.db`;
  nothing to start.
- `glue` (the default in the `aws` deployment): the AWS Glue Data Catalog; one database per zone,
  `<prefix>_<zone>` (STEDI_GLUE_DATABASE_PREFIX, default `stedi`), so Athena sees `stedi_trusted.customer_trusted`.
- any SQLAlchemy URI (`postgresql+psycopg2://user@host/db`, `sqlite:////abs/path.db`): a SQL catalog shared by
  every writer, for an S3-compatible store without Glue.

The catalog is where a commit is decided: SQL catalogs swap a table's metadata pointer with
`UPDATE ... WHERE metadata_location = <the one this writer read>`, Glue with the table's VersionId, so two
writers of one table can never both win (optimistic concurrency, no lock files).
"""

from __future__ import annotations

import collections
import functools
import os
import time
from dataclasses import dataclass

from ..settings import install_hint
from .stores import StoreError, is_s3, open_store

EMBEDDED = "sqlite"
GLUE = "glue"
CATALOG_FILE = "_catalog.db"
CATALOG_NAME = "stedi"


@dataclass(frozen=True)
class CatalogChoice:
    kind: str  # "sql" or "glue"
    uri: str | None = None  # SQLAlchemy URI of a SQL catalog
    database_prefix: str = ""  # Glue: databases are <prefix>_<zone>
    embedded_file: str | None = None  # the SQLite file inside a local lake (created by the first commit)

    def namespace(self, zone: str) -> str:
        return f"{self.database_prefix}_{zone}" if self.kind == GLUE else zone

    def describe(self) -> str:
        """Where the catalog is, without credentials (a URI's password never reaches a log)."""
        if self.kind == GLUE:
            return f"Glue Data Catalog (databases {self.database_prefix}_<zone>)"
        if self.uri is None:
            raise ValueError("a SQL catalog needs a SQLAlchemy URI")
        from sqlalchemy.engine import make_url

        return f"SQL catalog {make_url(self.uri).render_as_string(hide_password=True)}"


def choose(lake_root: str, setting: str | None = None, deployment: str = "local") -> CatalogChoice:
    """The catalog for `lake_root` from STEDI_CATALOG (or `setting`), with the defaults described above."""
    value = (setting if setting is not None else os.environ.get("STEDI_CATALOG", "")).strip()
    if not value:
        value = GLUE if deployment == "aws" else EMBEDDED
    if value == GLUE:
        if not is_s3(lake_root):
            raise StoreError(
                f"lake {lake_root} is a local folder: the Glue Data Catalog (STEDI_CATALOG=glue, the "
                "default of STEDI_DEPLOYMENT=aws) needs an s3:// lake that Athena and Glue can read"
            )
        return CatalogChoice(GLUE, database_prefix=os.environ.get("STEDI_GLUE_DATABASE_PREFIX", "stedi"))
    if value == EMBEDDED:
        if is_s3(lake_root):
            raise StoreError(
                f"lake {lake_root} is on S3: an embedded SQLite catalog cannot live there; set "
                "STEDI_CATALOG=glue or to a SQL catalog URI (e.g. postgresql+psycopg2://…)"
            )
        root = open_store(lake_root).uri()
        return CatalogChoice("sql", uri=f"sqlite:///{root}/{CATALOG_FILE}", embedded_file=f"{root}/{CATALOG_FILE}")
    if "://" not in value:
        raise StoreError(f"STEDI_CATALOG={value!r}: use sqlite, glue or a SQLAlchemy URI")
    return CatalogChoice("sql", uri=value)


# The lake's S3 FileIO and its retry policy (storage/s3_fileio.py); pyiceberg loads both by dotted path.
FILE_IO = "stedi_assets.storage.s3_fileio.ArrowFileIO"
RETRY_STRATEGY = "stedi_assets.storage.s3_fileio.ArrowRetries"


def _endpoint(service: str) -> str | None:
    return os.environ.get(f"AWS_ENDPOINT_URL_{service}") or os.environ.get("AWS_ENDPOINT_URL") or None


def _s3_properties() -> dict[str, str]:
    """pyiceberg's S3 FileIO (pyarrow) settings from the standard AWS environment; credentials stay in the
    AWS chain. A custom endpoint means an S3-compatible store: pyarrow addresses it path-style by default."""
    props = {
        "s3.region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "py-io-impl": FILE_IO,
        "s3.retry-strategy-impl": RETRY_STRATEGY,
    }
    endpoint = _endpoint("S3")
    if endpoint:
        props["s3.endpoint"] = endpoint
        # The AWS SDK inside pyarrow uploads with streaming trailing checksums by default; S3-compatible
        # stores such as Ceph RGW 16 refuse those uploads (HTTP 411 MissingContentLength). Checksums only
        # where an operation requires one is what such stores accept; the SDK reads this when a client is made.
        os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    return props


def _glue_client(region: str):
    """A Glue client with the lake's S3 retry policy and timeouts (the endpoint from AWS_ENDPOINT_URL_GLUE or
    AWS_ENDPOINT_URL, e.g. moto's)."""
    import boto3

    from .s3 import boto_config

    return boto3.session.Session().client(
        "glue", region_name=region, endpoint_url=_endpoint("GLUE"), config=boto_config()
    )


# The catalog calls the lake makes; each fails as one StoreError line (see _one_line_catalog).
CATALOG_CALLS = (
    "create_namespace",
    "list_namespaces",
    "create_table",
    "load_table",
    "commit_table",
    "list_tables",
    "table_exists",
    "drop_table",
    "purge_table",
)


def _failure(err: Exception, where: str) -> str | None:
    """One line for a Glue (botocore) or SQL catalog (SQLAlchemy) failure: which catalog, where, and why."""
    module = type(err).__module__
    if module.startswith(("botocore", "boto3")):
        from .s3 import failure_reason

        return f"cannot use the {where}: {failure_reason(err)}"
    if module.startswith("sqlalchemy"):
        cause = str(getattr(err, "orig", None) or err).strip().splitlines()
        return f"cannot use the {where}: {cause[0] if cause else type(err).__name__}"
    return None


def _one_line(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            message = _failure(err, self.where)
            if message is None:
                raise  # pyiceberg's own outcomes (no such table, commit conflict, ...)
            raise StoreError(message) from None

    return call


@functools.cache
def _one_line_catalog(base: type) -> type:
    """`base` (a pyiceberg catalog class) whose calls fail as one line naming the catalog, not a driver traceback.
    Tables keep a reference to their catalog, so their commits go through these calls too."""
    return type(base.__name__, (base,), {name: _one_line(getattr(base, name)) for name in CATALOG_CALLS})


# How many parsed table metadata files a catalog keeps (see CachedSqlCatalog): a few per table of the lake.
_METADATA_KEEP = 64


@functools.cache
def _sql_catalog_class() -> type:
    """pyiceberg's SqlCatalog with one-line failures, whose tables reuse the metadata it already read.

    A metadata file is never rewritten (each commit writes a new one under a new name and points the catalog
    at it), so a location read once need not be read again: a run loads its tables a few hundred times, and
    each load otherwise re-reads and re-parses the JSON. The cache is the catalog's own, so a catalog made
    for other credentials (load_catalog) never gets this one's FileIO."""
    from pyiceberg.catalog import Catalog
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

    class CachedSqlCatalog(_one_line_catalog(SqlCatalog)):  # type: ignore[misc]
        def _convert_orm_to_iceberg(self, orm_table) -> Table:
            # a Table's metadata (frozen pydantic models) is replaced by a commit, never mutated: safe to share
            cache = self.__dict__.setdefault("_metadata_cache", collections.OrderedDict())
            location = orm_table.metadata_location
            hit = cache.get(location) if location else None
            if hit is None:
                table = super()._convert_orm_to_iceberg(orm_table)
                cache[location] = (table.metadata, table.io)
                while len(cache) > _METADATA_KEEP:
                    cache.popitem(last=False)
                return table
            cache.move_to_end(location)
            metadata, io = hit
            return Table(
                identifier=(*Catalog.identifier_to_tuple(orm_table.table_namespace), orm_table.table_name),
                metadata=metadata,
                metadata_location=location,
                io=io,
                catalog=self,
            )

    return CachedSqlCatalog


@functools.lru_cache(maxsize=8)
def _load(choice: CatalogChoice, _environment: tuple):
    props = {} if choice.embedded_file else _s3_properties()  # a local lake's files are local
    if choice.kind == GLUE:
        from pyiceberg.catalog.glue import GlueCatalog

        client = _glue_client(props["s3.region"])
        catalog = _one_line_catalog(GlueCatalog)(CATALOG_NAME, client=client, **props)
        catalog.where = f"{choice.describe()} at {client.meta.endpoint_url}"
        return catalog
    catalog = _sql_catalog_class()(CATALOG_NAME, uri=choice.uri, init_catalog_tables="false", **props)
    catalog.where = choice.describe()
    _create_catalog_tables(catalog)
    return catalog


def _create_catalog_tables(catalog, attempts: int = 5) -> None:
    """Create the SQL catalog's own tables if they are missing. Two writers that start together on a new
    PostgreSQL catalog both see no tables and both CREATE them; the loser's CREATE fails (duplicate
    `pg_type` row or "already exists") although the tables are now there, so a failure is retried: the
    retry finds the winner's tables and creates nothing."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            catalog._ensure_tables_exist()
            return
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _credentials(choice: CatalogChoice) -> str:
    """A changed AWS key or secret must reach a new FileIO and Glue client; a local lake's embedded catalog
    uses neither (and is spared importing boto3)."""
    if choice.embedded_file is not None:
        return ""
    from .s3 import credentials_fingerprint

    return credentials_fingerprint()


def load_catalog(choice: CatalogChoice):
    """The pyiceberg catalog (one per process and environment: creating one opens a connection pool)."""
    environment = (
        *(
            os.environ.get(k, "")
            for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE", "AWS_REGION")
        ),
        _credentials(choice),
    )
    try:
        return _load(choice, environment)
    except ModuleNotFoundError as err:
        raise StoreError(
            f"{choice.describe()} needs the Python package {err.name!r}: {install_hint('postgres')} for PostgreSQL"
        ) from None
    except Exception as err:  # a SQL catalog connects (and creates its tables) when it is made
        message = _failure(err, choice.describe())
        if message is None:
            raise
        raise StoreError(message) from None


def reset_catalogs() -> None:
    """Forget every catalog this process opened (after a lake folder was replaced underneath it)."""
    _load.cache_clear()
