"""The lakehouse on S3: the same commands against moto (fast; Iceberg catalog in moto's Glue Data Catalog)
and Ceph RADOS Gateway (real; Iceberg catalog in PostgreSQL), with faults injected between the pipeline and
the server."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from conftest import S3Target, new_bucket, only_on, postgres_database
from fault_proxy import FaultProxy
from test_acceptance import EXPECTED

from stedi_assets.cli import main
from stedi_assets.contract import ZONES
from stedi_assets.generator import DEFECTS, generate_landing
from stedi_assets.storage.lake import open_lake, part_table
from stedi_assets.zones import TABLES

# Every Iceberg table of a complete lake: the 8 tables, landing.rejected and each landing table's rejected lines.
LAKE_TABLES = {spec.qualified_name for spec in TABLES} | {
    f"{spec.zone}.{part_table(spec.name, part)}" for spec in TABLES for part in spec.part_columns
}


def bucket_with_landing(target: S3Target, local_landing: Path) -> str:
    """A new bucket on `target` holding `local_landing`'s files under raw/, uploaded with `stedi land`."""
    bucket = new_bucket()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in target.env().items():
            mp.setenv(name, value)
        landing = f"s3://{bucket}/raw"
        assert main(["init", "--lake", f"s3://{bucket}/lake", "--landing", landing]) == 0
        assert main(["land", str(local_landing), "--landing", landing]) == 0
    return bucket


@pytest.fixture(scope="module")
def udacity_on_s3(s3_target, udacity_landing):
    """A bucket holding the Udacity landing files."""
    return bucket_with_landing(s3_target, udacity_landing)


@dataclass(frozen=True)
class GeneratedOnS3:
    """A bucket holding a small generated landing tree with every defect kind (uploaded with `stedi land`),
    and the table counts the same tree gives on a local lake: what the lake on S3 must reproduce."""

    bucket: str
    local_landing: Path
    counts: dict[str, int]


@pytest.fixture(scope="module")
def generated_on_s3(s3_target, tmp_path_factory) -> GeneratedOnS3:
    # The Udacity data proves the counts on S3 once per server (test_pipeline_on_s3_reproduces_the_udacity_counts);
    # the other S3 tests run on this tree, a few seconds a run instead of most of a minute.
    root = tmp_path_factory.mktemp("generated")
    generate_landing(root / "landing", customers=40, seed=3, defects=DEFECTS)
    assert main(["run", "--landing", str(root / "landing"), "--lake", str(root / "lake")]) == 0
    counts = {name: local_count(root / "lake", name) for name in EXPECTED["strict"]}
    return GeneratedOnS3(bucket_with_landing(s3_target, root / "landing"), root / "landing", counts)


def local_count(lake: Path, table: str) -> int:
    import duckdb

    snapshot = open_lake(str(lake)).current(*table.split("."))
    files = [str(lake / f) for f in snapshot.files["data"]]
    return duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchone()[0] if files else 0


def aws(service: str):
    """A client for the server under test now (boto3.client() would reuse the first credentials it saw)."""
    return boto3.session.Session().client(service)


def cli_json(capsys, *argv) -> list[dict]:
    capsys.readouterr()
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def count(capsys, lake: str, table: str, *options: str) -> int:
    (row,) = cli_json(capsys, "query", "--lake", lake, *options, f"SELECT count(*) AS n FROM {table}")
    return row["n"]


def assert_counts(capsys, lake: str, expected: dict[str, int]) -> None:
    for table, rows in expected.items():
        assert count(capsys, lake, table) == rows, table


def assert_checks_pass(capsys, lake: str) -> None:
    """Every blocking check passes (the generated tree's ambiguous serials make one WARN check warn)."""
    capsys.readouterr()
    assert main(["check", "--lake", lake]) == 0
    assert "49 checks: " in (out := capsys.readouterr().out) and ", 0 failed" in out


def catalog_tables(target: S3Target, lake: str) -> dict[str, dict[str, str]]:
    """'zone.table' -> the catalog's entry for every table of `lake`, read where a user would look: the Glue
    Data Catalog's table parameters, or the SQL catalog's `iceberg_tables` rows."""
    settings = target.catalog_env(lake)
    if target.catalog_server is None:
        glue, prefix = aws("glue"), settings["STEDI_GLUE_DATABASE_PREFIX"]
        names = {d["Name"] for d in glue.get_databases()["DatabaseList"]}
        return {
            f"{zone}.{t['Name']}": t["Parameters"]
            for zone in ZONES
            if f"{prefix}_{zone}" in names
            for t in glue.get_tables(DatabaseName=f"{prefix}_{zone}")["TableList"]
        }
    engine = sa.create_engine(settings["STEDI_CATALOG"])
    try:
        with engine.connect() as con:
            rows = con.execute(sa.text("SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"))
            return {f"{ns}.{name}": {"metadata_location": location} for ns, name, location in rows}
    finally:
        engine.dispose()


def current_snapshots(lake: str) -> dict[str, str]:
    opened = open_lake(lake)
    return {f"{zone}.{table}": opened.current(zone, table).snapshot for zone, table in opened.tables()}


def test_pipeline_on_s3_reproduces_the_udacity_counts(s3_env, s3_lake, udacity_on_s3, capsys):
    # One policy is enough here: the policies differ in SQL only, which test_acceptance proves on both; what this
    # proves is the storage path (S3 data files, catalog entries, checks reading over S3).
    policy = "strict"
    lake, landing = s3_lake(udacity_on_s3, policy), f"s3://{udacity_on_s3}/raw"
    assert main(["run", "--landing", landing, "--lake", lake, "--policy", policy]) == 0
    assert_counts(capsys, lake, EXPECTED[policy])
    assert_checks_pass(capsys, lake)
    # Every table is an Iceberg table in the lake's catalog, its metadata in the lake beside its data.
    entries = catalog_tables(s3_env, lake)
    assert set(entries) == LAKE_TABLES
    s3 = aws("s3")
    for name, entry in entries.items():
        location = entry["metadata_location"]
        assert location.startswith(f"{lake}/{name.replace('.', '/')}/metadata/") and location.endswith(".metadata.json")
        s3.head_object(Bucket=udacity_on_s3, Key=location.split("/", 3)[3])  # it exists
        if s3_env.catalog_server is None:
            assert entry["table_type"] == "ICEBERG"


def test_init_creates_bucket_and_prefixes_and_land_is_idempotent(s3_env, udacity_landing, capsys):
    bucket = new_bucket()
    assert main(["init", "--lake", f"s3://{bucket}/lake", "--landing", f"s3://{bucket}/landing"]) == 0
    keys = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert {
        "lake/landing/",
        "lake/trusted/",
        "lake/curated/",
        "landing/customer/",
        "landing/accelerometer/",
        "landing/step_trainer/",
    } <= keys
    capsys.readouterr()
    assert main(["land", str(udacity_landing), "--landing", f"s3://{bucket}/landing"]) == 0
    assert capsys.readouterr().out.startswith("13 uploaded, 0 already there")
    assert main(["land", str(udacity_landing), "--landing", f"s3://{bucket}/landing"]) == 0
    assert capsys.readouterr().out.startswith("0 uploaded, 13 already there")


def snapshot_lines(capsys, lake: str, table: str) -> list[str]:
    capsys.readouterr()
    assert main(["snapshots", table, "--lake", lake]) == 0
    return [line for line in capsys.readouterr().out.splitlines()[2:] if line.strip()]


def test_snapshots_and_rollback_on_s3(s3_env, s3_lake, generated_on_s3, capsys):
    bucket = generated_on_s3.bucket
    lake, landing = s3_lake(bucket, "rollback"), f"s3://{bucket}/raw"
    for _ in range(2):
        assert main(["run", "--landing", landing, "--lake", lake, "--select", "group:landing"]) == 0
    lines = snapshot_lines(capsys, lake, "landing.customer_landing")
    assert len(lines) == 2 and lines[-1].endswith("current") and not lines[0].endswith("current")
    older = lines[0].split()[0]
    assert main(["rollback", "landing.customer_landing", "--lake", lake]) == 0
    assert f"now at snapshot {older}" in capsys.readouterr().out
    lines = snapshot_lines(capsys, lake, "landing.customer_landing")
    assert [line.split()[0] for line in lines if line.endswith("current")] == [older]
    expected = generated_on_s3.counts["landing.customer_landing"]
    assert count(capsys, lake, "landing.customer_landing", "--as-of", "current") == expected


def only_on_moto(target: S3Target, why: str = "the proxy makes the faults, whatever the server") -> None:
    only_on(target, "moto", why)  # the faster server


def test_transient_faults_are_retried(s3_env, s3_lake, generated_on_s3, capsys, monkeypatch):
    only_on_moto(s3_env)
    lake = s3_lake(generated_on_s3.bucket, "flaky")
    with FaultProxy(s3_env.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)  # S3, and on moto Glue too
        proxy.mode, proxy.every = "flaky", 40  # every 40th request: 503 SlowDown (each retry backs off)
        assert main(["run", "--landing", f"s3://{generated_on_s3.bucket}/raw", "--lake", lake]) == 0
        assert proxy.faults > 5
        proxy.mode = "pass"
        assert_counts(capsys, lake, generated_on_s3.counts)


def test_server_gone_mid_write_fails_in_one_line_and_leaves_the_lake_as_it_was(
    s3_env, s3_lake, generated_on_s3, capsys
):
    only_on_moto(s3_env)
    bucket = generated_on_s3.bucket
    lake, landing = s3_lake(bucket, "cut"), f"s3://{bucket}/raw"
    assert main(["run", "--landing", landing, "--lake", lake]) == 0
    before = current_snapshots(lake)
    assert set(before) == {spec.qualified_name for spec in TABLES}
    with FaultProxy(s3_env.endpoint) as proxy:
        proxy.cut_at("/data/stage-")  # the server goes away as the first new data file is uploaded
        env = {**os.environ, **s3_env.env(AWS_ENDPOINT_URL=proxy.endpoint, AWS_MAX_ATTEMPTS="2")}
        child = subprocess.run(
            [sys.executable, "-m", "stedi_assets.cli", "run", "--landing", landing, "--lake", lake],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    output = child.stdout + child.stderr
    assert proxy.cut.is_set(), f"the run never uploaded a data file; cannot test a cut mid-write: {output}"
    assert child.returncode != 0
    failures = [line for line in output.splitlines() if proxy.endpoint in line]
    assert failures and "Traceback" not in output  # one line names the endpoint ...
    assert s3_env.secret not in output  # ... and never a credential
    assert current_snapshots(lake) == before  # the previous snapshots stay current
    assert_checks_pass(capsys, lake)
    assert_counts(capsys, lake, generated_on_s3.counts)


@pytest.mark.parametrize(
    "problem",
    [
        "endpoint down",
        "missing bucket",
    ],
)
def test_permanent_faults_are_one_clear_line(s3_env, s3_lake, generated_on_s3, capsys, monkeypatch, problem):
    bucket = new_bucket()
    lake = s3_lake(bucket, "lake")
    if problem == "endpoint down":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        expected = ("at http://127.0.0.1:9", "cannot connect")
    else:
        expected = (bucket, "the bucket does not exist")
    assert main(["run", "--landing", str(generated_on_s3.local_landing), "--lake", lake]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(text in err for text in expected), err


def test_wrong_secret_is_access_denied_in_one_line(s3_env, s3_lake, generated_on_s3, capsys, monkeypatch):
    if s3_env.name == "moto":
        pytest.skip("moto does not check signatures")
    lake = s3_lake(generated_on_s3.bucket, "strict")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    assert main(["query", "--lake", lake, "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "secret key does not match" in err or "access denied" in err
    assert "not-the-secret" not in err


def test_writers_opening_a_new_sql_catalog_together_all_succeed(s3_env):
    """Two runs that start together on a new PostgreSQL catalog both create its tables; the one whose CREATE
    loses (a duplicate `pg_type` row) must still open the catalog, not fail the run."""
    if s3_env.catalog_server is None:
        pytest.skip("the SQL catalog runs on the Ceph tier's PostgreSQL")
    import threading

    from stedi_assets.storage.catalog import CatalogChoice, load_catalog, reset_catalogs

    for attempt in range(5):  # the race is lost often, not always: five new catalogs, eight writers each
        uri = postgres_database(s3_env.catalog_server, f"race{attempt}{new_bucket()[-8:]}")
        reset_catalogs()
        start, failures = threading.Barrier(8), []

        def open_catalog(uri=uri, start=start, failures=failures):
            start.wait()
            try:
                load_catalog(CatalogChoice("sql", uri=uri)).list_namespaces()
            except Exception as err:  # noqa: BLE001 - every failure is the finding
                failures.append(str(err))

        writers = [threading.Thread(target=open_catalog) for _ in range(8)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert failures == [], failures[0]


def test_two_runs_at_once_do_not_corrupt_the_lake(s3_env, s3_lake, generated_on_s3, capsys):
    if s3_env.catalog_server is None:
        pytest.skip(
            "moto's Glue ignores UpdateTable's VersionId, so two commits can both win there; the race "
            "runs on the Ceph tier's PostgreSQL catalog (real Glue checks the version)"
        )
    bucket = generated_on_s3.bucket
    lake, landing = s3_lake(bucket, "concurrent"), f"s3://{bucket}/raw"
    env = {**os.environ, **s3_env.env()}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "stedi_assets.cli", "run", "--landing", landing, "--lake", lake],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    codes = [r.returncode for r in runs]
    for code, output in zip(codes, outputs, strict=False):  # a run that lost a commit race says so, naming the winner
        assert code == 0 or ("was committed by run" in output and "Traceback" not in output), output
    if 0 not in codes:  # each lost a different table: nothing is lost, run again
        assert main(["run", "--landing", landing, "--lake", lake]) == 0
    assert_checks_pass(capsys, lake)
    assert_counts(capsys, lake, generated_on_s3.counts)
    assert not [
        o["Key"]
        for o in aws("s3").list_objects_v2(Bucket=bucket, Prefix="concurrent/")["Contents"]
        if o["Key"].endswith("_lock.json")
    ]


def test_glue_data_catalog_is_the_registration(s3_env, generated_on_s3, capsys, monkeypatch):
    """In the aws deployment the catalog is Glue by default: Athena finds every table as an Iceberg table
    under the same <zone>.<table> names `stedi query` uses, and each commit or rollback moves it."""
    if s3_env.catalog_server is not None:
        pytest.skip("the Glue Data Catalog is served by moto only")
    bucket = generated_on_s3.bucket
    lake, landing = f"s3://{bucket}/glue", f"s3://{bucket}/raw"
    prefix = f"g{bucket[-6:]}"
    monkeypatch.delenv("STEDI_CATALOG", raising=False)
    monkeypatch.setenv("STEDI_DEPLOYMENT", "aws")
    monkeypatch.setenv("STEDI_GLUE_DATABASE_PREFIX", prefix)
    assert main(["run", "--landing", landing, "--lake", lake]) == 0
    glue, database = aws("glue"), f"{prefix}_curated"
    table = glue.get_table(DatabaseName=database, Name="machine_learning_curated")["Table"]
    assert table["Parameters"]["table_type"] == "ICEBERG"
    first = table["Parameters"]["metadata_location"]
    assert first.startswith(f"{lake}/curated/machine_learning_curated/metadata/")
    assert table["StorageDescriptor"]["Location"] == f"{lake}/curated/machine_learning_curated"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
        "customer_id",
        "sensorReadingTime",
        "distanceFromObject",
        "x",
        "y",
        "z",
    ]
    assert {t["Name"] for t in glue.get_tables(DatabaseName=f"{prefix}_trusted")["TableList"]} == {
        "customer_trusted",
        "accelerometer_trusted",
        "step_trainer_trusted",
    }
    first_snapshot = snapshot_lines(capsys, lake, "curated.machine_learning_curated")[-1].split()[0]

    assert (
        main(["run", "--landing", landing, "--lake", lake, "--select", 'key:"curated/machine_learning_curated"']) == 0
    )
    second = glue.get_table(DatabaseName=database, Name="machine_learning_curated")["Table"]["Parameters"]
    assert second["metadata_location"] != first
    assert main(["rollback", "curated.machine_learning_curated", "--lake", lake]) == 0
    assert f"now at snapshot {first_snapshot}" in capsys.readouterr().out
    # What Athena reads: the metadata file Glue points at now has the first snapshot current again.
    now = glue.get_table(DatabaseName=database, Name="machine_learning_curated")["Table"]["Parameters"]
    metadata = aws("s3").get_object(Bucket=bucket, Key=now["metadata_location"].split("/", 3)[3])["Body"]
    assert str(json.load(metadata)["current-snapshot-id"]) == first_snapshot


def test_aws_deployment_refuses_a_local_lake(tmp_path, monkeypatch, udacity_landing, capsys):
    monkeypatch.setenv("STEDI_DEPLOYMENT", "aws")
    assert main(["run", "--landing", str(udacity_landing), "--lake", str(tmp_path / "lake")]) == 2
    assert "needs an s3:// lake" in capsys.readouterr().err


def test_a_lake_on_s3_needs_a_catalog_it_can_share(s3_env, generated_on_s3, capsys, monkeypatch):
    monkeypatch.delenv("STEDI_CATALOG", raising=False)
    bucket = generated_on_s3.bucket
    assert main(["run", "--landing", f"s3://{bucket}/raw", "--lake", f"s3://{bucket}/nocat"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "STEDI_CATALOG=glue" in err


def test_a_lake_on_s3_needs_configured_keys(s3_env, s3_lake, generated_on_s3, capsys, monkeypatch):
    only_on_moto(s3_env, "the refusal is the client's, whatever the server")
    monkeypatch.delenv("STEDI_PSEUDONYM_KEY")
    bucket = generated_on_s3.bucket
    lake = s3_lake(bucket, "nokey")
    assert main(["run", "--landing", f"s3://{bucket}/raw", "--lake", lake]) == 1
    assert "STEDI_PSEUDONYM_KEY is not set" in capsys.readouterr().out
    assert not [o for o in aws("s3").list_objects_v2(Bucket=bucket, Prefix="nokey/_private/").get("Contents", [])]


def test_forget_on_s3(s3_env, s3_lake, generated_on_s3, capsys):
    bucket = generated_on_s3.bucket
    landing, lake = f"s3://{bucket}/forget-landing", s3_lake(bucket, "forget")
    assert main(["land", str(generated_on_s3.local_landing), "--landing", landing]) == 0
    assert main(["run", "--landing", landing, "--lake", lake]) == 0
    (row,) = cli_json(
        capsys,
        "query",
        "--lake",
        lake,
        "SELECT email, serialNumber FROM curated.customer_curated ORDER BY email LIMIT 1",
    )
    assert main(["forget", row["email"], "--landing", landing, "--lake", lake]) == 0
    s3 = aws("s3")
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="forget-landing/")["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        body = (gzip.decompress(body) if obj["Key"].endswith(".gz") else body).lower()  # bytes: some are not UTF-8
        assert row["email"].lower().encode() not in body and row["serialNumber"].lower().encode() not in body
    for table in ("landing.customer_landing", "trusted.customer_trusted", "curated.customer_curated"):
        (found,) = cli_json(
            capsys,
            "query",
            "--lake",
            lake,
            f"SELECT count(*) AS n FROM {table} WHERE lower(email) = lower('{row['email']}')",
        )
        assert found["n"] == 0
    (readings,) = cli_json(
        capsys,
        "query",
        "--lake",
        lake,
        f"SELECT count(*) AS n FROM landing.step_trainer_landing WHERE serialNumber = '{row['serialNumber']}'",
    )
    assert readings["n"] == 0
    assert_checks_pass(capsys, lake)


def test_query_on_s3_reads_the_tables_and_nothing_else(s3_env, s3_lake, udacity_on_s3, capsys):
    """The sandbox of `stedi query` (see test_query_sandbox.py) on S3: the connection holds the lake's
    credentials, yet it reads only the tables' data files: not the raw landing objects beside them, and it
    writes nothing."""
    bucket = udacity_on_s3
    lake, landing = s3_lake(bucket, "sandbox"), f"s3://{bucket}/raw"
    assert main(["run", "--landing", landing, "--lake", lake, "--select", "group:landing"]) == 0
    assert count(capsys, lake, "landing.customer_landing", "--as-of", "current") == 956
    s3 = aws("s3")

    def objects() -> dict[str, str]:
        return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}

    raw = next(k for k in objects() if k.startswith("raw/customer/"))
    table_file = next(k for k in objects() if k.startswith("sandbox/landing/customer_landing/data/"))
    before = objects()
    for sql in (
        f"SELECT * FROM read_text('s3://{bucket}/{raw}')",
        f"SELECT * FROM read_csv('s3://{bucket}/{raw}')",
        f"SELECT * FROM glob('s3://{bucket}/**')",
        f"SELECT * FROM read_parquet('s3://{bucket}/sandbox/landing/*/data/*/*.parquet')",
        f"COPY (SELECT 1 AS a) TO 's3://{bucket}/{table_file}' (FORMAT parquet)",
        f"COPY (SELECT 1 AS a) TO 's3://{bucket}/stolen.csv'",
        "SELECT * FROM read_text('http://169.254.169.254/latest/meta-data/')",
    ):
        capsys.readouterr()
        assert main(["query", "--lake", lake, "--as-of", "current", sql]) == 2, sql
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "secret" not in err.lower(), err  # never the lake's credentials
    assert objects() == before
