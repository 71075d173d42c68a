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

import functools
import os
from dataclasses import dataclass

from .stores import StoreError, is_s3, open_store

EMBEDDED = "sqlite"
GLUE = "glue"
CATALOG_FILE = "_catalog.db"
CATALOG_NAME = "stedi"


@dataclass(frozen=True)
class CatalogChoice:
    kind: str                    # "sql" or "glue"
    uri: str | None = None       # SQLAlchemy URI of a SQL catalog
    database_prefix: str = ""    # Glue: databases are <prefix>_<zone>
    embedded_file: str | None = None   # the SQLite file inside a local lake (created by the first commit)

    def namespace(self, zone: str) -> str:
        return f"{self.database_prefix}_{zone}" if self.kind == GLUE else zone

    def describe(self) -> str:
        """Where the catalog is, without credentials (a URI's password never reaches a log)."""
        if self.kind == GLUE:
            return f"Glue Data Catalog (databases {self.database_prefix}_<zone>)"
        from sqlalchemy.engine import make_url
        return f"SQL catalog {make_url(self.uri).render_as_string(hide_password=True)}"


def choose(lake_root: str, setting: str | None = None, deployment: str = "local") -> CatalogChoice:
    """The catalog for `lake_root` from STEDI_CATALOG (or `setting`), with the defaults described above."""
    value = (setting if setting is not None else os.environ.get("STEDI_CATALOG", "")).strip()
    if not value:
        value = GLUE if deployment == "aws" else EMBEDDED
    if value == GLUE:
        return CatalogChoice(GLUE, database_prefix=os.environ.get("STEDI_GLUE_DATABASE_PREFIX", "stedi"))
    if value == EMBEDDED:
        if is_s3(lake_root):
            raise StoreError(f"lake {lake_root} is on S3: an embedded SQLite catalog cannot live there; set "
                             "STEDI_CATALOG=glue or to a SQL catalog URI (e.g. postgresql+psycopg2://…)")
        root = open_store(lake_root).uri()
        return CatalogChoice("sql", uri=f"sqlite:///{root}/{CATALOG_FILE}", embedded_file=f"{root}/{CATALOG_FILE}")
    if "://" not in value:
        raise StoreError(f"STEDI_CATALOG={value!r}: use sqlite, glue or a SQLAlchemy URI")
    return CatalogChoice("sql", uri=value)


def _s3_properties() -> dict[str, str]:
    """pyiceberg's S3 FileIO settings from the standard AWS environment (credentials stay in the chain)."""
    props = {"s3.region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        props["s3.endpoint"] = endpoint
    return props


@functools.lru_cache(maxsize=8)
def _load(choice: CatalogChoice, _environment: tuple):
    props = _s3_properties()
    if choice.kind == GLUE:
        from pyiceberg.catalog.glue import GlueCatalog
        glue = {"glue.region": props["s3.region"]}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_GLUE") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            glue["glue.endpoint"] = endpoint
        return GlueCatalog(CATALOG_NAME, **props, **glue)
    from pyiceberg.catalog.sql import SqlCatalog
    return SqlCatalog(CATALOG_NAME, uri=choice.uri, **props)


def load_catalog(choice: CatalogChoice):
    """The pyiceberg catalog (one per process and environment: creating one opens a connection pool)."""
    environment = tuple(os.environ.get(k, "") for k in (
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE", "AWS_ACCESS_KEY_ID", "AWS_REGION",
        "AWS_DEFAULT_REGION"))
    try:
        return _load(choice, environment)
    except ModuleNotFoundError as err:
        raise StoreError(f"{choice.describe()} needs the Python package {err.name!r}: "
                         "pip install 'stedi_assets[postgres]' for PostgreSQL") from None


def reset_catalogs() -> None:
    """Forget every catalog this process opened (after a lake folder was replaced underneath it)."""
    _load.cache_clear()
