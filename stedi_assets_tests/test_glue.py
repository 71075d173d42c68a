"""The AWS Glue path without AWS: the job script under local Spark, and Dagster's Pipes launch against moto.

What runs for real: stedi_assets/glue/entry.py (argument parsing with Glue's own arguments mixed in,
packaged-SQL lookup and digest check, Secrets Manager key lookup, Spark compute, Pipes context loading
and message writing), dagster-aws's PipesGlueClient (StartJobRun/GetJobRun calls, S3 context injection,
S3 message reading) and GlueEngine inside a full Dagster materialization. moto serves S3, Secrets
Manager and the Glue API (it records job runs but executes nothing), and `LocalGlueWorker` stands in for
Glue's workers: when moto records a StartJobRun it runs the job's script here, under local Spark, with
the run's merged arguments, as Glue would. The lake is an Iceberg lake: the job writes Parquet into the
table's staged folder and the Dagster side commits it through pyiceberg, so what is checked is what a
user reads through Iceberg: the committed table's rows, the snapshot summary (`stedi.engine` = glue, the
run id) and that the snapshot holds exactly the files the job wrote. Not exercised: the real Glue service
(IAM, workers, the Glue
5.0 image and its Python modules, --additional-python-modules installs, its Iceberg connector, whose jar
cannot be loaded here), Spark on s3:// paths, and the CloudWatch message reader (only the job side's switch to
stdout messages is tested).
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import dagster as dg
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.contract import POLICIES
from stedi_assets.generator import DEFECTS, generate_landing
from stedi_assets.glue import entry
from stedi_assets.glue.pipes import (
    ENTRY_SCRIPT,
    GLUE_VERSION,
    GlueEngine,
    GlueJob,
    build_job_bundle,
    iceberg_spark_conf,
    job_definition,
)
from stedi_assets.identity import identity_key
from stedi_assets.privacy.register import ErasureRegister, LandingFilter, Subjects
from stedi_assets.resources import local_resources
from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.runs import run_tag
from stedi_assets.storage.stores import LocalStore
from stedi_assets.zones import TABLES, table
from stedi_assets.zones.landing.increment import stats_of
from stedi_assets.zones.landing.reader import Listing, landing_files, read_source
from stedi_assets.zones.sql import PART_SUFFIX, ephemerals, load_rule
from stedi_assets_tests.conftest import landing_records
from stedi_assets_tests.parity import assert_same_rows, engine_and_run, multiset, multiset_of, spark_child
from stedi_assets_tests.test_landing_duckdb import SOURCES, write_fuzzed
from stedi_assets_tests.test_landing_spark import OPENED, WatchedLanding

KEY = "glue-test-key"
REGION = "us-east-1"
DERIVED = [s for s in TABLES if s.zone != "landing" or s.name == "rejected"]
LAKE_ON_S3 = "s3://stedi-lake/lake"  # the job definition's warehouse; the tests' lakes are local folders
NAMES = ("DuckDB", "Glue")


def folder_rows(folder: Path, files):
    return multiset_of(r for f in files for r in pq.read_table(folder / f).to_pylist())


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("glue") / "landing"
    generate_landing(root, customers=40, seed=5, defects=DEFECTS)
    return root


@pytest.fixture(scope="module")
def duckdb_lakes(landing, tmp_path_factory) -> dict[str, Path]:
    """The reference: each policy's lake built by DuckDB."""
    lakes = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEDI_PSEUDONYM_KEY", KEY)
        for policy in POLICIES:
            lakes[policy] = tmp_path_factory.mktemp(f"duckdb-{policy}")
            result = dg.materialize(TABLE_ASSETS, resources=local_resources(str(landing), str(lakes[policy]), policy))
            assert result.success
    return lakes


def relations_for(lake: Path, name: str, policy: str) -> dict[str, list[str]]:
    """What builders.build_sql hands an engine: each relation the rule reads -> its published Parquet files."""
    rule = load_rule(name, policy)
    relations = {}
    for r in [rule, *ephemerals(rule, policy)]:
        for relation in r.relations:
            if relation.startswith("_"):
                continue
            base = relation.removesuffix(PART_SUFFIX)
            snapshot = open_lake(str(lake)).current(table(base).zone, base)
            relations[relation] = [str(lake / f) for f in snapshot.files["data" if base == relation else "rejected"]]
    return relations


def job_args(name: str, policy: str, relations: dict, output_dir: Path, **extra: str) -> list[str]:
    args = {
        "--table": name,
        "--policy": policy,
        "--relations": json.dumps(relations),
        "--output-dir": str(output_dir),
        "--sql-sha256": entry.rule_sha256(name, policy),
        **extra,
    }
    # what Glue itself puts on the command line, around the job's own arguments
    return [
        "--JOB_ID",
        "j_0123",
        "--JOB_RUN_ID",
        "jr_0123",
        "--job-bookmark-option",
        "job-bookmark-disable",
        *[x for kv in args.items() for x in kv],
        "--JOB_NAME",
        "stedi-table",
        "--TempDir",
        "s3://tmp/glue/",
    ]


# ------------------------------------------------------------------------ the job script, under local Spark


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_entry_computes_every_table_like_duckdb(policy, duckdb_lakes, tmp_path):
    lake = duckdb_lakes[policy]
    for spec in DERIVED:
        out = tmp_path / spec.name
        out.mkdir()
        result = entry.main(
            job_args(
                spec.name,
                policy,
                relations_for(lake, spec.name, policy),
                out,
                **{"--pseudonym-key-hex": KEY.encode().hex(), "--spark-master": "local[*]"},
            )
        )
        assert sorted(p.name for p in out.iterdir()) == result["files"]  # part files only
        expected = multiset(lake, spec.zone, spec.name)
        assert_same_rows(expected, folder_rows(out, result["files"]), spec.name, NAMES)
        assert result["rows"] == sum(expected.values())


@pytest.mark.slow
def test_entry_runs_as_a_glue_script_from_the_job_bundle_without_dagster_or_duckdb(duckdb_lakes, tmp_path):
    """As on a Glue worker: the script copied out of the package, the package from the --extra-py-files zip,
    and neither Dagster nor DuckDB importable."""
    bundle = build_job_bundle(tmp_path / "stedi_assets.zip")
    script = tmp_path / "entry.py"
    script.write_text(ENTRY_SCRIPT.read_text())
    out = tmp_path / "out"
    out.mkdir()
    lake = duckdb_lakes["strict"]
    argv = job_args(
        "machine_learning_curated",
        "strict",
        relations_for(lake, "machine_learning_curated", "strict"),
        out,
        **{"--pseudonym-key-hex": KEY.encode().hex(), "--spark-master": "local[*]"},
    )
    runner = (
        "import runpy, sys\n"
        "sys.modules.update(dict.fromkeys(['dagster', 'dagster_aws', 'dagster_duckdb', 'duckdb']))\n"
        f"sys.path.insert(0, {str(bundle)!r})\n"
        f"sys.argv = [{str(script)!r}, *{argv!r}]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "import stedi_assets\n"
        "assert '/stedi_assets-' in stedi_assets.__file__, stedi_assets.__file__   # unpacked from the zip\n"
    )
    result = json.loads(spark_child(runner).strip().splitlines()[-1])  # printed when not launched by Pipes
    assert_same_rows(
        multiset(lake, "curated", "machine_learning_curated"),
        folder_rows(out, result["files"]),
        "machine_learning_curated",
        NAMES,
    )
    assert result["rows"] > 0


# ------------------------------------------------------------------------ the job script's refusals


def test_entry_refuses_sql_that_differs_from_the_callers(tmp_path):
    args = job_args("customer_trusted", "strict", {"customer_landing": ["x.parquet"]}, tmp_path)
    args[args.index("--sql-sha256") + 1] = "0" * 64
    with pytest.raises(entry.JobError, match="packaged SQL of customer_trusted"):
        entry.main(args)


def test_entry_refuses_missing_relations(tmp_path):
    with pytest.raises(entry.JobError, match="lacks accelerometer_trusted"):
        entry.main(job_args("customer_curated", "strict", {"customer_trusted": ["x.parquet"]}, tmp_path))


def test_entry_needs_the_pseudonym_key_and_checks_it_is_the_callers(tmp_path):
    relations = {"step_trainer_trusted": ["a.parquet"], "accelerometer_trusted": ["b.parquet"]}
    with pytest.raises(entry.JobError, match="pseudonym-secret-id"):
        entry.main(job_args("machine_learning_curated", "strict", relations, tmp_path))
    with pytest.raises(entry.JobError, match="not the caller's"):
        entry.main(
            job_args(
                "machine_learning_curated",
                "strict",
                relations,
                tmp_path,
                **{"--pseudonym-key-hex": b"another key".hex(), "--pseudonym-key-check": entry.key_check(KEY.encode())},
            )
        )


# ------------------------------------------------------------------------ landing mode, under local Spark

ERASURE_KEY = "glue-erasure-key"


@pytest.fixture(scope="module")
def bad_landing(tmp_path_factory) -> Path:
    """Generated landing with every defect, plus fuzzed files (gzip among them) beside each source's files."""
    root = tmp_path_factory.mktemp("bad") / "landing"
    generate_landing(root, customers=40, seed=11, defects=DEFECTS)
    fuzzed = write_fuzzed(tmp_path_factory.mktemp("fuzzed"), 3, 300)
    for source in SOURCES:
        (fuzzed / source / "landing").rename(root / source / "fuzzed")
    return root


def erased_people(landing: Path, key: bytes) -> dict[str, list[str]]:
    """The register's keyed hashes of one accelerometer user and one step trainer serial."""
    digest = Subjects(key).digest
    return {
        "identities": [digest(identity_key(landing_records(landing, "accelerometer")[0]["user"]))],
        "serials": [digest(landing_records(landing, "step_trainer")[0]["serialNumber"])],
    }


def reference(landing: Path, source: str, erased, listing: Listing | None = None):
    """The reference reader's typed rows and quarantine rows (multisets) and figures."""
    rows: list[dict] = []
    rejected: list[dict] = []
    stats = read_source(
        LocalStore(landing),
        source,
        entry.landing_schemas(source)["data"],
        lambda b: rows.extend(b.to_pylist()),
        lambda b: rejected.extend(b.to_pylist()),
        erased,
        listing,
    )
    return multiset_of(rows), multiset_of(rejected), stats


def landing_args(source: str, plan: Path, out: Path, **extra: str) -> list[str]:
    args = {
        "--landing-source": source,
        "--landing-plan": str(plan),
        "--output-dir": str(out / "data"),
        "--rejected-dir": str(out / "rejected"),
        **extra,
    }
    return ["--JOB_ID", "j_1", *[x for kv in args.items() for x in kv], "--TempDir", "s3://tmp/glue/"]


def write_plan(path: Path, landing: Path, source: str, erased: dict | None) -> Path:
    """What GlueEngine.read_landing puts in the plan object."""
    store = LocalStore(landing)
    plan = {
        "root": store.uri(),
        "files": {p: store.uri(p) for p in landing_files(store, source).files},
        "schemas_sha256": entry.schemas_sha256(entry.landing_schemas(source)),
        "erased": erased,
    }
    path.write_text(json.dumps(plan))
    return path


@pytest.mark.parametrize("source", SOURCES)
def test_entry_landing_mode_reads_as_the_reference_reader(source, bad_landing, tmp_path):
    """The job's landing mode, with an erasure: its Parquet rows and quarantine rows, plus the reference
    reader's read of the files it left to the caller, are the reference reader's read of the whole source,
    and so are the figures it reports."""
    key = ERASURE_KEY.encode()
    hashes = erased_people(bad_landing, key)
    plan = write_plan(tmp_path / "plan.json", bad_landing, source, hashes)
    result = entry.main(
        landing_args(
            source,
            plan,
            tmp_path / "out",
            **{
                "--erasure-key-hex": key.hex(),
                "--erasure-key-check": entry.key_check(key, "erasure"),
                "--spark-master": "local[*]",
            },
        )
    )
    erased = LandingFilter(source, Subjects(key, frozenset(hashes["identities"]), frozenset(hashes["serials"])))
    expected_rows, expected_rejected, expected = reference(bad_landing, source, erased)
    rest_rows, rest_rejected, rest = reference(bad_landing, source, erased, Listing(files=result["rest"]))
    stats = stats_of(result["figures"])
    assert stats.files and all(p not in result["rest"] for p in stats.files)  # the job read these
    stats.add(rest)
    assert (stats.rows, stats.rejected) == (expected.rows, expected.rejected)
    assert (stats.files, stats.unreadable_files, stats.lines, stats.blank_lines, stats.erased) == (
        expected.files,
        expected.unreadable_files,
        expected.lines,
        expected.blank_lines,
        expected.erased,
    )
    assert expected.erased and expected.rejected > 100 and any(p.endswith(".gz") for p in expected.files)
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "data").iterdir()) == result["files"]["data"]  # part files only
    assert_same_rows(expected_rows, folder_rows(out / "data", result["files"]["data"]) + rest_rows, source)
    assert_same_rows(
        expected_rejected, folder_rows(out / "rejected", result["files"]["rejected"]) + rest_rejected, source
    )


def test_entry_landing_mode_leaves_a_vanished_file_to_the_caller(bad_landing, tmp_path):
    """A file removed after the Dagster side listed it: Hadoop's file system tells the job it is gone, the job
    reads the others and returns it in `rest`, where the caller's reference reader records why."""
    plan = write_plan(tmp_path / "plan.json", bad_landing, "customer", None)
    content = json.loads(plan.read_text())
    first = sorted(content["files"])[0]
    content["files"]["customer/gone.json"] = str(bad_landing / "customer" / "gone.json")
    plan.write_text(json.dumps(content))
    result = entry.main(landing_args("customer", plan, tmp_path / "out", **{"--spark-master": "local[*]"}))
    assert result["rest"] == ["customer/gone.json"] and first in result["figures"]["files"]


def test_entry_landing_mode_checks_the_erasure_key_and_the_schema(bad_landing, tmp_path):
    key = ERASURE_KEY.encode()
    plan = write_plan(tmp_path / "plan.json", bad_landing, "customer", erased_people(bad_landing, key))
    with pytest.raises(entry.JobError, match="erasure-secret-id"):
        entry.main(landing_args("customer", plan, tmp_path))
    with pytest.raises(entry.JobError, match="erasure key is not the caller's"):
        entry.main(
            landing_args(
                "customer",
                plan,
                tmp_path,
                **{"--erasure-key-hex": b"other".hex(), "--erasure-key-check": entry.key_check(key, "erasure")},
            )
        )
    assert entry.key_check(key, "erasure") != entry.key_check(key)  # a pseudonym check never passes for it
    other = json.loads(plan.read_text()) | {"schemas_sha256": "0" * 64}
    plan.write_text(json.dumps(other))
    with pytest.raises(entry.JobError, match="landing schema of customer differs"):
        entry.main(landing_args("customer", plan, tmp_path))


def test_entry_refuses_landing_tables(tmp_path):
    with pytest.raises(entry.JobError, match="validating reader"):
        entry.main(["--table", "customer_landing", "--policy", "strict", "--relations", "{}", "--output-dir", "x"])


# ------------------------------------------------------------------------ the Dagster side's parameters


def test_start_job_run_params_carry_the_table_and_never_the_key():
    job = GlueJob(
        job_name="stedi-table",
        pipes_bucket="b",
        pseudonym_secret_id="stedi/pseudonym-key",
        worker_type="G.1X",
        number_of_workers=4,
        timeout_minutes=30,
        extra_arguments={"--s3-scheme": "s3"},
    )
    relations = {"step_trainer_trusted": ["s3://lake/t/1.parquet"], "accelerometer_trusted": ["s3://lake/a/1.parquet"]}
    params = job.start_job_run_params(
        table="machine_learning_curated",
        policy="strict",
        relations=relations,
        output_dir="s3://lake/curated/x/data",
        pseudonym_key=KEY.encode(),
    )
    args = params.pop("Arguments")
    assert params == {"JobName": "stedi-table", "WorkerType": "G.1X", "NumberOfWorkers": 4, "Timeout": 30}
    assert json.loads(args.pop("--relations")) == relations
    assert args == {
        "--table": "machine_learning_curated",
        "--policy": "strict",
        "--output-dir": "s3://lake/curated/x/data",
        "--sql-sha256": entry.rule_sha256("machine_learning_curated", "strict"),
        "--s3-scheme": "s3",
        "--pseudonym-secret-id": "stedi/pseudonym-key",
        "--pseudonym-key-check": entry.key_check(KEY.encode()),
    }
    assert KEY not in json.dumps(params) + json.dumps(args) and KEY.encode().hex() not in json.dumps(args)
    with pytest.raises(dg.Failure, match="pseudonym_secret_id"):
        GlueJob(job_name="j", pipes_bucket="b").start_job_run_params(
            table="machine_learning_curated",
            policy="strict",
            relations=relations,
            output_dir="o",
            pseudonym_key=KEY.encode(),
        )


def test_landing_params_carry_the_plan_and_never_the_erasure_key():
    job = GlueJob(job_name="stedi-table", pipes_bucket="b", erasure_secret_id="stedi/erasure-key")
    folders = {"data": "s3://lake/landing/t/data/stage-1", "rejected": "s3://lake/landing/t/rejected/stage-1"}
    params = job.landing_params(source="customer", plan="s3://b/p.json", folders=folders, erasure_key=b"secret")
    assert params["Arguments"] == {
        "--landing-source": "customer",
        "--landing-plan": "s3://b/p.json",
        "--output-dir": folders["data"],
        "--rejected-dir": folders["rejected"],
        "--erasure-secret-id": "stedi/erasure-key",
        "--erasure-key-check": entry.key_check(b"secret", "erasure"),
    }
    with pytest.raises(dg.Failure, match="erasure_secret_id"):
        GlueJob(job_name="j", pipes_bucket="b").landing_params(
            source="customer", plan="p", folders=folders, erasure_key=b"secret"
        )


def test_job_definition_is_a_glue_5_spark_job_with_the_iceberg_connector():
    definition = job_definition(
        job_name="stedi-table",
        role_arn="arn:aws:iam::123456789012:role/stedi-glue",
        script_location="s3://code/entry.py",
        package_location="s3://code/stedi_assets.zip",
        lake_root="s3://lake-bucket/stedi",
    )
    assert definition["GlueVersion"] == GLUE_VERSION == "5.0"
    assert definition["Command"] == {"Name": "glueetl", "ScriptLocation": "s3://code/entry.py", "PythonVersion": "3"}
    arguments = definition["DefaultArguments"]
    assert arguments["--extra-py-files"] == "s3://code/stedi_assets.zip"
    assert "dagster-pipes==" in arguments["--additional-python-modules"]
    assert arguments["--datalake-formats"] == "iceberg"
    # Glue takes one --conf; spark-submit reads the rest of its value as further --conf settings
    settings = dict(item.split("=", 1) for item in arguments["--conf"].split(" --conf "))
    assert (
        settings
        == iceberg_spark_conf("s3://lake-bucket/stedi")
        == {
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            "spark.sql.catalog.glue_catalog": "org.apache.iceberg.spark.SparkCatalog",
            "spark.sql.catalog.glue_catalog.warehouse": "s3://lake-bucket/stedi/",
            "spark.sql.catalog.glue_catalog.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
            "spark.sql.catalog.glue_catalog.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        }
    )
    with pytest.raises(ValueError, match="needs the lake on S3"):
        job_definition(
            job_name="j",
            role_arn="r",
            script_location="s3://c/e.py",
            package_location="s3://c/p.zip",
            lake_root="/home/me/lake",
        )


def test_the_job_ignores_the_iceberg_connectors_arguments(tmp_path):
    """Glue passes the job's default arguments (--datalake-formats, --conf) to the script too."""
    definition = job_definition(
        job_name="j", role_arn="r", script_location="s3://c/e.py", package_location="s3://c/p.zip", lake_root=LAKE_ON_S3
    )
    glue_args = [x for kv in definition["DefaultArguments"].items() for x in kv]
    args = entry.parse_args([*glue_args, *job_args("customer_trusted", "strict", {}, tmp_path)])
    assert (args.table, args.policy, args.output_dir) == ("customer_trusted", "strict", str(tmp_path))


def test_glue_engine_wants_the_lake_on_s3(landing, tmp_path):
    engine = GlueEngine(job=GlueJob(job_name="j", pipes_bucket="b", region_name=REGION))
    result = dg.materialize(
        TABLE_ASSETS,
        resources={**local_resources(str(landing), str(tmp_path), "rubric"), "engine": engine},
        selection=dg.AssetSelection.groups("landing") | dg.AssetSelection.assets(["trusted", "customer_trusted"]),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "GlueEngine needs the lake on S3" in str(failure.event_specific_data.error)


# ------------------------------------------------------------------------ Pipes, end to end against moto


class LocalGlueWorker:
    """The Glue API of moto, plus what moto does not do: run the job. On StartJobRun it runs the job's
    script (entry.main) in this process under local Spark with the run's merged arguments, as a Glue
    worker would; if the script raises, the run reads FAILED with the error, as on Glue."""

    def __init__(self, glue) -> None:
        self.glue, self.failed, self.argv = glue, {}, []
        self.meta = glue.meta

    def start_job_run(self, **params):
        run_id = self.glue.start_job_run(**params)["JobRunId"]
        run = self.glue.get_job_run(JobName=params["JobName"], RunId=run_id)["JobRun"]
        argv = [
            "--JOB_ID",
            "j_1",
            "--JOB_RUN_ID",
            run_id,
            "--JOB_NAME",
            params["JobName"],
            *[x for kv in run["Arguments"].items() for x in kv],
        ]
        self.argv.append(argv)
        try:
            entry.main(argv)
        except Exception as err:  # noqa: BLE001 - the worker's failure is the job run's state
            self.failed[run_id] = f"{type(err).__name__}: {err}"
        return {"JobRunId": run_id}

    def get_job_run(self, **params):
        response = self.glue.get_job_run(**params)
        if params["RunId"] in self.failed:
            response["JobRun"].update(JobRunState="FAILED", ErrorMessage=self.failed[params["RunId"]])
        return response

    def batch_stop_job_run(self, **params):
        return self.glue.batch_stop_job_run(**params)


class LocalGlueJob(GlueJob):
    def glue_client(self):
        worker = LocalGlueWorker(super().glue_client())
        self.__dict__.setdefault("_workers", []).append(worker)
        return worker


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "STEDI_PSEUDONYM_KEY": KEY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="stedi-code")
        s3.create_bucket(Bucket="stedi-pipes")
        s3.upload_file(str(ENTRY_SCRIPT), "stedi-code", "glue/entry.py")
        s3.upload_file(str(build_job_bundle(tmp_path / "stedi_assets.zip")), "stedi-code", "glue/stedi_assets.zip")
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="stedi/pseudonym-key", SecretString=KEY
        )
        glue = boto3.client("glue", region_name=REGION)
        glue.create_job(
            **job_definition(
                job_name="stedi-table",
                role_arn="arn:aws:iam::123456789012:role/stedi-glue",
                script_location="s3://stedi-code/glue/entry.py",
                package_location="s3://stedi-code/glue/stedi_assets.zip",
                lake_root=LAKE_ON_S3,
                max_concurrent_runs=1,
                extra_default_arguments={"--spark-master": "local[*]"},
            )
        )  # local Spark stands in
        yield {"secret_arn": secret["ARN"], "glue": glue, "s3": s3}


def glue_engine(aws, **job: str) -> GlueEngine:
    return GlueEngine(
        allow_local_paths=True,
        job=LocalGlueJob(
            job_name="stedi-table",
            pipes_bucket="stedi-pipes",
            region_name=REGION,
            message_interval=0.2,
            pseudonym_secret_id=aws["secret_arn"],
            **job,
        ),
    )


def test_pipes_glue_client_validates_landing_in_the_job(aws, bad_landing, tmp_path, monkeypatch):
    """GlueEngine on a landing table, with someone erased: one Glue job run validates the files in its
    executors (the Dagster process opens only what the job left to it, here none), the erasure key comes from
    its secret (never in the run's arguments, nor the register's hashes), and the committed table is the
    reference reader's."""
    monkeypatch.setenv("STEDI_ERASURE_KEY", ERASURE_KEY)
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="stedi/erasure-key", SecretString=ERASURE_KEY
    )
    lake = tmp_path / "lake"
    register = ErasureRegister.load(open_lake(str(lake)), for_update=True)
    user = landing_records(bad_landing, "accelerometer")[0]["user"]
    register.save(open_lake(str(lake)), register.record({identity_key(user)}, set(), {}))
    OPENED.clear()
    result = dg.materialize(
        TABLE_ASSETS,
        resources={
            **local_resources(str(bad_landing), str(lake), "strict"),
            "engine": glue_engine(aws, erasure_secret_id=secret["ARN"]),
            "landing": WatchedLanding(root=str(bad_landing)),
        },
        selection=dg.AssetSelection.assets(["landing", "accelerometer_landing"]),
    )
    assert result.success
    assert OPENED == []  # every file was read by the job

    [run] = aws["glue"].get_job_runs(JobName="stedi-table")["JobRuns"]
    arguments = run["Arguments"]
    assert arguments["--landing-source"] == "accelerometer" and run["JobRunState"] == "SUCCEEDED"
    assert arguments["--erasure-secret-id"] == secret["ARN"]
    shown = json.dumps(arguments)
    hashes = ErasureRegister.load(open_lake(str(lake))).identities
    assert ERASURE_KEY not in shown and ERASURE_KEY.encode().hex() not in shown and not any(h in shown for h in hashes)
    # the plan object and the Pipes context were removed after the run
    assert aws["s3"].list_objects_v2(Bucket="stedi-pipes", Prefix="dagster-pipes/").get("KeyCount") == 0

    erased = ErasureRegister.load(open_lake(str(lake))).landing_filter("accelerometer")
    expected_rows, expected_rejected, expected = reference(bad_landing, "accelerometer", erased)
    assert_same_rows(expected_rows, multiset(lake, "landing", "accelerometer_landing"), "rows", ("reference", "Glue"))
    assert_same_rows(
        expected_rejected,
        multiset(lake, "landing", "accelerometer_landing", "rejected"),
        "quarantine",
        ("reference", "Glue"),
    )
    snapshot = open_lake(str(lake)).current("landing", "accelerometer_landing")
    assert snapshot.extra["engine"] == "glue" and engine_and_run(lake, "landing", "accelerometer_landing")[0] == "glue"
    assert (snapshot.extra["landing_files"], snapshot.extra["erased_lines"], snapshot.extra["nonblank_lines"]) == (
        expected.files,
        expected.erased,
        expected.lines,
    )
    assert expected.erased > 0
    # the job wrote the table's files into the staged folders it was given
    assert Path(arguments["--output-dir"]).parent == lake / "landing" / "accelerometer_landing" / "data"


@pytest.mark.slow
def test_pipes_glue_client_builds_the_lake_like_duckdb(aws, landing, duckdb_lakes, tmp_path):
    lake = tmp_path / "lake"
    instance = dg.DagsterInstance.ephemeral()
    engine = glue_engine(aws)
    result = dg.materialize(
        TABLE_ASSETS,
        resources={**local_resources(str(landing), str(lake), "strict"), "engine": engine},
        instance=instance,
    )
    assert result.success
    failed = {
        (e.asset_key.path[-1], e.check_name, e.severity.value)
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }
    assert failed == {("step_trainer_trusted", "ambiguous_readings", "WARN")}  # the duplicate-serial defect
    for spec in TABLES:
        assert_same_rows(
            multiset(duckdb_lakes["strict"], spec.zone, spec.name),
            multiset(lake, spec.zone, spec.name),
            spec.name,
            NAMES,
        )

    # one Glue job run per derived table, with the table's arguments and the Pipes bootstrap arguments, and
    # one per landing source
    runs = aws["glue"].get_job_runs(JobName="stedi-table")["JobRuns"]
    landing_runs = [r for r in runs if "--landing-source" in r["Arguments"]]
    assert sorted(r["Arguments"]["--landing-source"] for r in landing_runs) == sorted(SOURCES)
    assert all(r["JobRunState"] == "SUCCEEDED" for r in landing_runs)
    runs = [r for r in runs if r not in landing_runs]
    assert sorted(r["Arguments"]["--table"] for r in runs) == sorted(s.name for s in DERIVED)
    assert_committed_what_the_jobs_wrote(lake, runs, result.run_id)
    for run in runs:
        assert run["JobRunState"] == "SUCCEEDED"
        assert {
            "--policy",
            "--relations",
            "--output-dir",
            "--sql-sha256",
            "--dagster-pipes-context",
            "--dagster-pipes-messages",
        } <= set(run["Arguments"])
        needs_key = run["Arguments"]["--table"] == "machine_learning_curated"
        assert ("--pseudonym-secret-id" in run["Arguments"]) == needs_key
    # the job's log lines came back through Pipes (S3 messages) into the run's log
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("machine_learning_curated: " in m and "rows in 1 file(s)" in m for m in logs), logs[-20:]
    assert any("Started AWS Glue job stedi-table run" in m for m in logs)
    # the Pipes context objects were removed from the bucket after each run
    assert aws["s3"].list_objects_v2(Bucket="stedi-pipes", Prefix="dagster-pipes/").get("KeyCount") == 0


def assert_committed_what_the_jobs_wrote(lake: Path, job_runs: list[dict], run_id: str) -> None:
    """Each Glue-built table's current Iceberg snapshot was committed by this Dagster run, records the glue
    engine, and holds exactly the Parquet files its job run wrote into the staged folder it was given;
    the run tagged the consistent lake it built."""
    read = open_lake(str(lake))
    for job_run in job_runs:
        name = job_run["Arguments"]["--table"]
        zone = table(name).zone
        assert engine_and_run(lake, zone, name) == ("glue", run_id), name
        output_dir = Path(job_run["Arguments"]["--output-dir"])
        assert output_dir.parent == lake / zone / name / "data" and output_dir.name.startswith("stage-"), output_dir
        written = sorted(str(p.relative_to(lake)) for p in output_dir.iterdir())
        assert written and read.current(zone, name).files["data"] == written, name
    for spec in TABLES:
        assert read.tags(spec.zone, spec.name).get(run_tag(run_id)) == read.current(spec.zone, spec.name).snapshot


@pytest.mark.slow
def test_a_failed_glue_run_fails_the_asset(aws, landing, duckdb_lakes, tmp_path):
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=aws["secret_arn"], SecretString="not the key"
    )  # the job will refuse this key
    lake = tmp_path / "lake"
    ml = dg.AssetSelection.assets(["curated", "machine_learning_curated"])
    upstream = dg.materialize(
        TABLE_ASSETS,
        resources=local_resources(str(landing), str(lake), "strict"),
        selection=dg.AssetSelection.all() - ml,
    )  # DuckDB builds the inputs
    assert upstream.success
    before = {
        s.name: open_lake(str(lake)).current(s.zone, s.name).snapshot
        for s in TABLES
        if s.name != "machine_learning_curated"
    }
    result = dg.materialize(
        TABLE_ASSETS,
        resources={**local_resources(str(landing), str(lake), "strict"), "engine": glue_engine(aws)},
        raise_on_error=False,
        selection=ml,
    )
    assert not result.success
    failures = {
        e.step_key: str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    }
    assert list(failures) == ["machine_learning_curated"]
    assert "completed with status FAILED" in failures["machine_learning_curated"]
    assert "not the caller's" in failures["machine_learning_curated"]
    after = open_lake(str(lake))
    assert not after.has_current("curated", "machine_learning_curated")
    assert {
        s.name: after.current(s.zone, s.name).snapshot for s in TABLES if s.name != "machine_learning_curated"
    } == before, "a failed Glue run committed nothing anywhere"


def test_messages_go_to_stdout_when_dagster_reads_cloudwatch(aws, capsys):
    """With PipesCloudWatchMessageReader the job writes Pipes messages to stdout, which Glue ships to CloudWatch."""
    from dagster_pipes import encode_param

    aws["s3"].put_object(
        Bucket="stedi-pipes",
        Key="ctx.json",
        Body=json.dumps(
            {
                "asset_keys": ["trusted/customer_trusted"],
                "run_id": "r",
                "job_name": "j",
                "retry_number": 0,
                "extras": {},
                "code_version_by_asset_key": None,
                "provenance_by_asset_key": None,
                "partition_key": None,
                "partition_key_range": None,
                "partition_time_window": None,
            }
        ).encode(),
    )
    argv = [
        "--dagster-pipes-context",
        encode_param({"bucket": "stedi-pipes", "key": "ctx.json"}),
        "--dagster-pipes-messages",
        encode_param({"stdio": "stdout"}),
    ]
    with entry.pipes_context(argv) as pipes:
        pipes.report_custom_message({"rows": 1, "files": ["part-0.parquet"]})
    out = capsys.readouterr().out
    assert '"method": "report_custom_message"' in out and "part-0.parquet" in out
