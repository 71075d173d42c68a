"""The Dagster side of the Glue path: run a table's SQL as an AWS Glue 5.0 job run, through Dagster Pipes.

`GlueJob` builds the `start_job_run` parameters for stedi_assets/glue/entry.py and launches it with
dagster-aws's `PipesGlueClient`: the Pipes context goes to S3 (`PipesS3ContextInjector`), the job's log
lines and its result come back through S3 (`PipesS3MessageReader`, the default) or CloudWatch.
`GlueEngine` implements the engines' interface (engines/base.py), as DuckDBEngine and SparkEngine do: bound
to the `engine` key, every derived table of a run is computed by a Glue job run, with the same SQL files,
into the same lake layout, and every landing table is validated by one (`read_landing`, the job's landing
mode: the executor code of the Spark engine's landing reader).

The lake's tables are Iceberg tables, but the job does not commit to them. Like every engine, it reads
the data files pyiceberg planned for the input snapshots the run pinned (`--relations`) and writes plain
Parquet into the table's staged folder (`--output-dir`, `<zone>/<table>/data/stage-<uuid>/`), which no
snapshot references; the Dagster side then audits those files and commits them through pyiceberg
(`Lake.commit`): one commit path for every engine, so the compare-and-set, the snapshot summary
(`stedi.run-id`, `stedi.engine` = glue, `stedi.inputs`), write-audit-publish and the run tags are the same
whichever engine computed the table. The job definition still enables Glue 5's Iceberg connector
(`--datalake-formats iceberg` and the Spark settings of a Glue Data Catalog Iceberg catalog, see
`iceberg_spark_conf`), so the job runs on the same Spark set-up as any Glue job that reads or maintains
these tables (`glue_catalog.<prefix>_<zone>.<table>`), e.g. an OPTIMIZE or a time-travel read.

The job itself is created once, outside Dagster (`job_definition` gives the create_job parameters;
`build_job_bundle` zips the package for --extra-py-files). See the README section "Running on AWS Glue".
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import boto3
import dagster as dg
import pyarrow as pa
from dagster_aws.pipes import (
    PipesCloudWatchMessageReader,
    PipesGlueClient,
    PipesS3ContextInjector,
    PipesS3MessageReader,
)
from pydantic import Field

from ..contract import POLICIES
from ..engines.base import Engine, EngineOutput
from ..zones.landing.increment import stats_of
from ..zones.landing.reader import Listing
from ..zones.landing.spark_reader import SparkRead
from ..zones.sql import ephemerals, load_rule
from .entry import key_check, rule_sha256, schemas_sha256

GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11: what pyspark==3.5.9 reproduces locally
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
ENTRY_SCRIPT = Path(__file__).with_name("entry.py")
# What the worker installs from PyPI at start (pure Python); Glue 5.0 provides pyspark, pyarrow and boto3.
WORKER_MODULES = ("sqlglot==30.30.0", "dagster-pipes==1.13.27")
ICEBERG_CATALOG = "glue_catalog"  # the Spark catalog name of the Iceberg connector's settings (AWS's own)


@dataclass(frozen=True)
class GlueRun:
    rows: int
    files: list[str]
    run_metadata: Mapping[str, Any]  # Glue job run id, name and console URL


class GlueJob(dg.ConfigurableResource):
    """An AWS Glue job running stedi_assets/glue/entry.py, launched through dagster-aws's PipesGlueClient."""

    job_name: str = Field(description="Name of the Glue job (created from job_definition()).")
    pipes_bucket: str = Field(description="S3 bucket for the Pipes context and, with messages='s3', its messages.")
    pipes_prefix: str = Field(default="dagster-pipes/", description="Key prefix of the Pipes context objects.")
    region_name: str | None = Field(default=None, description="AWS region; the default chain when empty.")
    endpoint_url: str | None = Field(default=None, description="AWS endpoint override (tests).")
    messages: Literal["s3", "cloudwatch"] = Field(
        default="s3",
        description=(
            "Where the job's Pipes messages come back: s3 (the bucket above) or cloudwatch (Glue's output log)."
        ),
    )
    message_interval: float = Field(default=10.0, description="Seconds between polls for Pipes messages.")
    pseudonym_secret_id: str | None = Field(
        default=None,
        description=("Secrets Manager secret with the pseudonym key; needed for tables that call pseudonym()."),
    )
    erasure_secret_id: str | None = Field(
        default=None,
        description="Secrets Manager secret with the erasure key; needed to read landing once someone is erased.",
    )
    worker_type: str | None = Field(default=None, description="Override the job's WorkerType (e.g. G.1X).")
    number_of_workers: int | None = Field(default=None, description="Override the job's NumberOfWorkers.")
    timeout_minutes: int | None = Field(default=None, description="Override the job's Timeout.")
    extra_arguments: dict[str, str] = Field(default={}, description="More job arguments (e.g. --s3-scheme).")

    def _client(self, service: str):
        return boto3.client(service, region_name=self.region_name, endpoint_url=self.endpoint_url)

    def glue_client(self):
        return self._client("glue")

    def start_job_run_params(
        self,
        *,
        table: str,
        policy: str,
        relations: Mapping[str, Sequence[str]],
        output_dir: str,
        pseudonym_key: bytes | None = None,
    ) -> dict:
        """The StartJobRun request for computing `table` (PipesGlueClient adds the Pipes arguments)."""
        arguments = {
            "--table": table,
            "--policy": policy,
            "--relations": json.dumps({name: list(uris) for name, uris in relations.items()}, sort_keys=True),
            "--output-dir": output_dir,
            "--sql-sha256": rule_sha256(table, policy),
            **self.extra_arguments,
        }
        if pseudonym_key is not None:
            arguments.update(self._key_arguments("pseudonym", pseudonym_key, f"{table} ({policy})"))
        return self._params(arguments)

    def landing_params(
        self, *, source: str, plan: str, folders: Mapping[str, str], erasure_key: bytes | None = None
    ) -> dict:
        """The StartJobRun request for validating `source`'s landing files of the plan object `plan`."""
        arguments = {
            "--landing-source": source,
            "--landing-plan": plan,
            "--output-dir": folders["data"],
            "--rejected-dir": folders["rejected"],
            **self.extra_arguments,
        }
        if erasure_key is not None:
            arguments.update(self._key_arguments("erasure", erasure_key, f"{source} landing"))
        return self._params(arguments)

    def _key_arguments(self, purpose: str, key: bytes, what: str) -> dict[str, str]:
        """The arguments that let the job fetch the `purpose` key: never the key, which the job run's details
        would show, but its secret's id and a fingerprint the job checks the secret's key against."""
        secret_id = getattr(self, f"{purpose}_secret_id")
        if not secret_id:
            env_var = f"STEDI_{purpose.upper()}_KEY"
            raise dg.Failure(
                f"{what} needs the {purpose} key on Glue: set GlueJob.{purpose}_secret_id "
                f"to a Secrets Manager secret holding {env_var}"
            )
        return {f"--{purpose}-secret-id": secret_id, f"--{purpose}-key-check": key_check(key, purpose)}

    def _params(self, arguments: dict[str, str]) -> dict:
        params: dict[str, Any] = {"JobName": self.job_name, "Arguments": arguments}
        if self.worker_type:
            params["WorkerType"] = self.worker_type
        if self.number_of_workers:
            params["NumberOfWorkers"] = self.number_of_workers
        if self.timeout_minutes:
            params["Timeout"] = self.timeout_minutes
        return params

    def pipes_client(self) -> PipesGlueClient:
        s3 = self._client("s3")
        reader = (
            PipesS3MessageReader(bucket=self.pipes_bucket, client=s3, interval=self.message_interval)
            if self.messages == "s3"
            else PipesCloudWatchMessageReader(client=self._client("logs"))
        )
        return PipesGlueClient(
            client=self.glue_client(),
            context_injector=PipesS3ContextInjector(bucket=self.pipes_bucket, client=s3, key_prefix=self.pipes_prefix),
            message_reader=reader,
        )

    def run(
        self,
        context: dg.AssetExecutionContext,
        *,
        table: str,
        policy: str,
        relations: Mapping[str, Sequence[str]],
        output_dir: str,
        pseudonym_key: bytes | None = None,
    ) -> GlueRun:
        params = self.start_job_run_params(
            table=table, policy=policy, relations=relations, output_dir=output_dir, pseudonym_key=pseudonym_key
        )
        result, run_metadata = self.launch(context, params, {"table": table, "policy": policy}, table)
        context.log.info(
            f"{table}: Glue run {run_metadata.get('AWS Glue Job Run ID')} wrote "
            f"{result['rows']} rows ({run_metadata.get('AWS Glue Job Run URL')})"
        )
        return GlueRun(rows=int(result["rows"]), files=list(result["files"]), run_metadata=run_metadata)

    def launch(
        self, context: dg.AssetExecutionContext, params: dict, extras: dict, what: str
    ) -> tuple[dict, dict[str, Any]]:
        """Run the job through Pipes: (the result it reported, the Glue run's metadata)."""
        invocation = self.pipes_client().run(context=context, start_job_run_params=params, extras=extras)
        results = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and "rows" in m]
        if not results:
            raise dg.Failure(
                f"Glue job {self.job_name} finished but reported no result for {what}: did the job "
                "run stedi_assets/glue/entry.py and reach Dagster Pipes (pipes bucket, IAM)?"
            )
        run_metadata = {k: (v.value if hasattr(v, "value") else v) for k, v in invocation.metadata.items()}
        return results[-1], run_metadata

    def validate_landing(
        self,
        context: dg.AssetExecutionContext,
        *,
        source: str,
        plan: Mapping[str, Any],
        folders: Mapping[str, str],
        erasure_key: bytes | None = None,
    ) -> dict:
        """Run the job's landing mode over `plan` (see entry.validate_landing); its result. The plan holds the
        file list (unbounded) and the register's keyed hashes, so it goes as an S3 object beside the Pipes
        context, removed after the run, rather than in the arguments the job run's details show."""
        s3 = self._client("s3")
        key = f"{self.pipes_prefix}landing-plan-{uuid.uuid4().hex}.json"
        s3.put_object(Bucket=self.pipes_bucket, Key=key, Body=json.dumps(plan).encode())
        try:
            params = self.landing_params(
                source=source, plan=f"s3://{self.pipes_bucket}/{key}", folders=folders, erasure_key=erasure_key
            )
            result, run_metadata = self.launch(context, params, {"landing_source": source}, f"{source} landing")
        finally:
            s3.delete_object(Bucket=self.pipes_bucket, Key=key)
        context.log.info(
            f"{source} landing: Glue run {run_metadata.get('AWS Glue Job Run ID')} validated "
            f"{len(result['figures']['files'])} file(s) ({run_metadata.get('AWS Glue Job Run URL')})"
        )
        return result


class GlueEngine(Engine):
    """An engine whose tables are computed by AWS Glue job runs of the packaged SQL (see GlueJob).

    The lake must be on S3 (Glue cannot see this machine's folders); `allow_local_paths` is for tests
    that stand a local Spark in for the Glue service.
    """

    job: GlueJob
    allow_local_paths: bool = Field(default=False, description="Accept non-s3:// lake URIs (tests only).")

    @property
    def name(self) -> str:
        return "glue"

    def select_into(
        self,
        sql: str,
        relations: Mapping[str, Sequence[str]],
        output_dir: str,
        *,
        ephemerals: Sequence[tuple[str, str]] = (),
        pseudonym_key: bytes | None = None,
        setup: Sequence[str] = (),
    ) -> EngineOutput:
        context = dg.AssetExecutionContext.get()
        table = context.asset_key.path[-1]
        policy = _policy_of(table, sql, ephemerals)
        self._on_s3(table, [output_dir, *(u for us in relations.values() for u in us)])
        run = self.job.run(
            context, table=table, policy=policy, relations=relations, output_dir=output_dir, pseudonym_key=pseudonym_key
        )
        return EngineOutput(rows=run.rows, files=run.files)

    def read_landing(
        self,
        store,
        source: str,
        schemas: Mapping[str, pa.Schema],
        folders: Mapping[str, str],
        erased,
        listing: Listing,
        on_rows: Callable[[int], None] | None = None,
    ) -> SparkRead:
        """Validate the files of `listing` in a Glue job run's executors, as SparkEngine's executors do
        (spark_reader.read_files_spark), into Parquet part files of `folders` (part -> the staged folder's URI).
        What the job did not read comes back in `rest` (with the listing's unreadable entries), for the
        reference reader here. `on_rows` hears the typed rows once, when the job run has ended: the job reports
        its figures only then."""
        uris = {path: store.uri(path) for path in listing.files}
        self._on_s3(source, [*folders.values(), store.uri(), *uris.values()])
        subjects = erased.subjects if erased is not None else None
        plan = {
            "root": store.uri(),
            "files": uris,
            "schemas_sha256": schemas_sha256(dict(schemas)),
            # keyed hashes: they name nobody without the erasure key, which the job reads from its secret
            "erased": {"identities": sorted(subjects.identities), "serials": sorted(subjects.serials)}
            if subjects
            else None,
        }
        result = self.job.validate_landing(
            dg.AssetExecutionContext.get(),
            source=source,
            plan=plan,
            folders=folders,
            erasure_key=subjects.key if subjects else None,
        )
        rest = result["rest"]
        if not set(rest) <= set(uris):
            raise dg.Failure(f"the Glue job's read of {source} left files it was not given: a different job script?")
        stats = stats_of(result["figures"])
        if on_rows is not None:
            on_rows(stats.rows)
        return SparkRead(
            stats,
            {part: list(names) for part, names in result["files"].items()},
            Listing(files=list(rest), unreadable=dict(listing.unreadable)),
        )

    def _on_s3(self, what: str, uris: Sequence[str]) -> None:
        if not self.allow_local_paths and not all(u.startswith("s3://") for u in uris):
            raise dg.Failure(
                f"GlueEngine needs the lake on S3 (s3://...); {what} reads or writes "
                f"{next(u for u in uris if not u.startswith('s3://'))}"
            )


def _policy_of(table: str, sql: str, subrules: Sequence[tuple[str, str]]) -> str:
    """The policy whose packaged rule for `table` is `sql`: the Glue job recomputes it from the package."""
    for policy in POLICIES:
        rule = load_rule(table, policy)
        if (
            rule is not None
            and rule.body == sql
            and [(s.name, s.body) for s in ephemerals(rule, policy)] == list(subrules)
        ):
            return policy
    raise dg.Failure(f"the SQL given for {table} is not one of its packaged rules: GlueEngine runs packaged SQL only")


def iceberg_spark_conf(lake_root: str, catalog: str = ICEBERG_CATALOG) -> dict[str, str]:
    """The Spark settings of a Glue 5 job that sees the lake's tables through its Iceberg connector: a Spark
    catalog `catalog` over the Glue Data Catalog (databases `<prefix>_<zone>`, as storage/catalog.py makes
    them) whose new tables go under `lake_root`, with S3FileIO and Iceberg's SQL extensions."""
    return {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        f"spark.sql.catalog.{catalog}": "org.apache.iceberg.spark.SparkCatalog",
        f"spark.sql.catalog.{catalog}.warehouse": lake_root.rstrip("/") + "/",
        f"spark.sql.catalog.{catalog}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"spark.sql.catalog.{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    }


def glue_conf_argument(conf: Mapping[str, str]) -> str:
    """The value of Glue's single `--conf` job argument: the first setting, the others chained with ` --conf `
    (Glue hands the value to spark-submit after `--conf`, as AWS's Iceberg guide does)."""
    return " --conf ".join(f"{key}={value}" for key, value in conf.items())


def job_definition(
    *,
    job_name: str,
    role_arn: str,
    script_location: str,
    package_location: str,
    lake_root: str,
    worker_type: str = "G.1X",
    number_of_workers: int = 2,
    max_concurrent_runs: int = 3,
    extra_default_arguments: Mapping[str, str] | None = None,
) -> dict:
    """`glue.create_job(**job_definition(...))`: a Glue 5.0 Spark job running entry.py.

    script_location: s3://…/entry.py (a copy of stedi_assets/glue/entry.py); package_location: s3://…/
    stedi_assets.zip from build_job_bundle(); lake_root: the lake's s3://bucket/prefix (the Iceberg
    catalog's warehouse). `--datalake-formats iceberg` loads Glue 5's Iceberg connector (Iceberg 1.7.1)
    and `--conf` configures its Glue Data Catalog catalog; the job itself writes Parquet into the staged
    folder and the Dagster side commits it (see the module docstring).
    """
    if not lake_root.startswith("s3://"):
        raise ValueError(f"a Glue job needs the lake on S3 (s3://bucket/prefix), not {lake_root}")
    return {
        "Name": job_name,
        "Role": role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": script_location, "PythonVersion": "3"},
        "GlueVersion": GLUE_VERSION,
        "WorkerType": worker_type,
        "NumberOfWorkers": number_of_workers,
        "ExecutionProperty": {"MaxConcurrentRuns": max_concurrent_runs},
        "DefaultArguments": {
            "--job-language": "python",
            "--extra-py-files": package_location,
            "--additional-python-modules": ",".join(WORKER_MODULES),
            "--datalake-formats": "iceberg",
            "--conf": glue_conf_argument(iceberg_spark_conf(lake_root)),
            **(extra_default_arguments or {}),
        },
    }


def build_job_bundle(out: str | os.PathLike) -> Path:
    """Zip the package's Python modules and SQL files for the job's --extra-py-files; returns the zip."""
    out = Path(out)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(PACKAGE_ROOT.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
                bundle.write(path, Path("stedi_assets") / path.relative_to(PACKAGE_ROOT))
    return out
