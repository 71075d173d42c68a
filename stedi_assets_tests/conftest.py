"""Shared test fixtures: the Udacity landing data (read in place, never copied) and a pipeline runner
that swaps in resources pointing at temporary folders, as dagster's project_fully_featured does."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.resources import local_resources
from stedi_assets.storage.catalog import reset_catalogs
from stedi_assets.storage.lake import open_lake

REPO = Path(__file__).resolve().parents[1]

# Each test file's tier, where its cost puts it (pyproject.toml's addopts leave these out of the fast tier).
TIER_OF_MODULE = {
    "test_s3": "s3",
    "test_spark_parity": "spark",
    "test_landing_spark": "spark",
    "test_glue": "spark",
    "test_webserver": "ui",
    "test_ui_browser": "ui",
    "test_erasure": "slow",
    "test_volume": "slow",  # each test is two or three whole runs
    "test_incremental": "slow",  # each test is three to five whole runs
}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        tier = TIER_OF_MODULE.get(module)
        if tier is None and "udacity_landing" in item.fixturenames and module != "test_acceptance":
            tier = "slow"  # whole runs on the full Udacity data; the acceptance counts stay in the fast tier
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


# The Udacity data's licence forbids copying it into the project: tests read it from shared/ beside it.
UDACITY = Path(os.environ.get("STEDI_UDACITY_DATA", REPO.parent / "shared" / "stedi-data"))


@pytest.fixture(scope="session")
def udacity_landing() -> Path:
    if not (UDACITY / "customer").is_dir():
        pytest.fail(f"Udacity landing data not found at {UDACITY} (set STEDI_UDACITY_DATA)")
    return UDACITY


@pytest.fixture(scope="session")
def two_policy_lake(tmp_path_factory) -> Path:
    """A folder with `landing/` (40 generated customers, every defect) and `lake/`, run with the rubric
    policy and then with the strict one: the lake holds a complete run of each, strict the latest. One
    customer was erased before the first run and their landing lines were then delivered again, so both runs
    drop those lines at landing (reason `erased`). Tests that change it wrap themselves in `restored_afterwards`."""
    from stedi_assets.cli import main

    root = tmp_path_factory.mktemp("two_policies")
    landing, lake = root / "landing", str(root / "lake")
    assert main(["generate", str(landing), "--customers", "40", "--seed", "11", "--defects", "all"]) == 0
    shutil.copytree(landing, root / "delivered-again")
    assert main(["forget", "--lake", lake, "--landing", str(landing), first_email(landing)]) == 0
    shutil.rmtree(landing)
    (root / "delivered-again").rename(landing)
    for policy in ("rubric", "strict"):
        assert main(["run", "--landing", str(landing), "--lake", lake, "--policy", policy]) == 0
    return root


def landing_records(landing: Path, source: str) -> list[dict]:
    """Every landing line of `source` that parses as a JSON object (the others are quarantined)."""
    records = []
    for path in sorted((landing / source).rglob("*")):
        if not path.is_file():
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def first_email(landing: Path) -> str:
    from stedi_assets.privacy.forget import is_email

    emails = (r.get("email") for r in landing_records(landing, "customer"))
    return next(e for e in emails if isinstance(e, str) and is_email(e))


def run_pipeline(
    landing, lake, policy="strict", selection=None, raise_on_error=False, instance=None
) -> dg.ExecuteInProcessResult:
    """Materialize (a selection of) the lakehouse in-process over `landing` into `lake` (`instance`: where its
    events and logs go, default a throwaway one)."""
    return dg.materialize(
        TABLE_ASSETS,
        resources=local_resources(landing=str(landing), lake=str(lake), policy=policy),
        selection=selection,
        raise_on_error=raise_on_error,
        instance=instance,
    )


def read_table(lake, zone: str, table: str, part: str = "data") -> list[dict]:
    """The rows of a table's current Iceberg snapshot (its data files, as the catalog lists them)."""
    snapshot = open_lake(str(lake)).current(zone, table)
    return [row for f in snapshot.files[part] for row in pq.read_table(Path(lake) / f).to_pylist()]


@contextmanager
def restored_afterwards(folder: Path):
    """Put `folder` (a lake and its landing) back exactly as it was when the block ends."""
    backup = Path(tempfile.mkdtemp(prefix="stedi-backup-"))
    shutil.copytree(folder, backup / "copy")
    try:
        yield folder
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup / "copy", folder)
        shutil.rmtree(backup)
        reset_catalogs()  # pooled connections to the replaced catalog file must not be reused


def checks_of(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def write_landing(root: Path, source: str, lines: list, name: str = "part-1.json") -> Path:
    """Write one landing file; dicts become JSON lines, str/bytes are written as they are."""
    path = root / source / "landing" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        (json.dumps(line).encode() if isinstance(line, dict) else line.encode() if isinstance(line, str) else line)
        + b"\n"
        for line in lines
    )
    path.write_bytes(data)
    return path


# --- S3: moto's in-process server (fast tier) and Ceph RADOS Gateway (real tier) -------------------
# The moto tier keeps its Iceberg catalog in moto's Glue Data Catalog (one server serves S3 and Glue), the
# Ceph tier in a PostgreSQL SQL catalog. .ci/run starts radosgw and PostgreSQL (stedi_assets_tests/services/
# ceph_up.sh, pg_up.sh) and sets STEDI_TEST_CEPH_* and STEDI_TEST_PG_URI; there STEDI_REQUIRE_CEPH=1 turns a
# missing server into a failure instead of a skip.


@dataclass(frozen=True)
class S3Target:
    name: str
    endpoint: str
    key: str
    secret: str
    catalog_server: str | None = None  # PostgreSQL server URI of the SQL catalog; None: Glue

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            # a lake on S3 never generates its keys: they must be configured
            "STEDI_PSEUDONYM_KEY": "test-pseudonym-key",
            "STEDI_ERASURE_KEY": "test-erasure-key",
            **extra,
        }

    def catalog_env(self, lake: str) -> dict[str, str]:
        """The catalog settings of one lake: a catalog holds one lake (its namespaces are the zones), so
        each test lake gets its own Glue databases or its own PostgreSQL database."""
        name = "t" + hashlib.sha256(lake.encode()).hexdigest()[:12]
        if self.catalog_server is None:
            return {"STEDI_CATALOG": "glue", "STEDI_GLUE_DATABASE_PREFIX": name}
        return {"STEDI_CATALOG": postgres_database(self.catalog_server, name)}


def postgres_database(server: str, name: str) -> str:
    """The URI of database `name` on the PostgreSQL server at `server`, created if missing."""
    import sqlalchemy as sa

    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as con:
            if con.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                con.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _real_service(variable: str, what: str, start: str) -> str:
    """A setting of a service .ci/run starts: missing, the Ceph tier fails under STEDI_REQUIRE_CEPH, else skips."""
    value = os.environ.get(variable)
    if not value:
        if os.environ.get("STEDI_REQUIRE_CEPH"):
            pytest.fail(f"STEDI_REQUIRE_CEPH is set but no {what} is running ({variable})")
        pytest.skip(f"no {what} running (start stedi_assets_tests/services/{start})")
    return value


@pytest.fixture(scope="session", params=["moto", "ceph"])
def s3_target(request) -> S3Target:
    if request.param == "moto":
        return S3Target("moto", request.getfixturevalue("moto_endpoint"), "test", "test")
    endpoint = _real_service("STEDI_TEST_CEPH_ENDPOINT", "Ceph RADOS Gateway", "ceph_up.sh")
    catalog = _real_service("STEDI_TEST_PG_URI", "PostgreSQL server for the SQL catalog", "pg_up.sh")
    return S3Target(
        "ceph",
        endpoint,
        os.environ["STEDI_TEST_CEPH_KEY"],
        os.environ["STEDI_TEST_CEPH_SECRET"],
        catalog_server=catalog,
    )


def only_on(target: S3Target, server: str, why: str) -> None:
    """Skip unless `target` is `server`: what a test proves does not depend on the server behind it (`why`),
    so it runs once."""
    if target.name != server:
        pytest.skip(f"runs on the {server} tier only: {why}")


@pytest.fixture
def s3_env(s3_target, monkeypatch) -> S3Target:
    """AWS settings of the S3 server under test in this process's environment."""
    for name, value in s3_target.env().items():
        monkeypatch.setenv(name, value)
    reset_catalogs()
    return s3_target


@pytest.fixture
def s3_lake(s3_env, monkeypatch):
    """`make(bucket, prefix)` -> the lake URI s3://bucket/prefix, its catalog set in this process's environment
    (subprocesses started with os.environ inherit it)."""

    def make(bucket: str, prefix: str) -> str:
        lake = f"s3://{bucket}/{prefix}"
        for name, value in s3_env.catalog_env(lake).items():
            monkeypatch.setenv(name, value)
        return lake

    return make


def new_bucket() -> str:
    return f"stedi-{uuid.uuid4().hex[:12]}"
