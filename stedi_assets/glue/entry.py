"""AWS Glue 5.0 job script: compute one derived table of the lake, on Spark, from the packaged SQL, or
validate landing files of one source into a landing table's staged parts.

Glue 5.0 runs Spark 3.5 and Python 3.11, like `pip install pyspark==3.5.9` here. The job computes the
table exactly as SparkEngine does (`spark_engine.run_select` over the rule of `zones/`), so a table built
on Glue is interchangeable with one built by DuckDB or by local Spark.

The lake's tables are Iceberg tables; the job neither plans nor commits them. It reads the Parquet data
files the Dagster side planned (pyiceberg) for the input snapshots its run pinned, and writes plain
Parquet part files into the table's staged folder, which no snapshot references until the Dagster side
has audited them and committed them through pyiceberg, as for every engine (see glue/pipes.py). The job
runs as well with Glue's Iceberg connector loaded (`--datalake-formats iceberg` and the catalog settings
of pipes.job_definition) as without it: plain Parquet reads and writes do not go through it.

Arguments (Glue passes each job argument as `--name value`; its own --JOB_ID, --JOB_RUN_ID, --JOB_NAME,
--TempDir, ... are ignored):

    --table T                 the table to compute, e.g. machine_learning_curated
    --policy strict|rubric    which rule (zones/<zone>/<T>[.<policy>].sql)
    --relations JSON          {"<relation the SQL reads>": ["s3://…/part-00000.parquet", …], …}: the data
                              files of the input snapshots, as pyiceberg planned them
    --output-dir URI          the staged write's folder (<zone>/<table>/data/stage-<uuid>/); part-*.parquet
                              files are written there, and nothing else
    --sql-sha256 HEX          optional: fail unless the packaged SQL is the one the caller expects
    --pseudonym-secret-id ID  Secrets Manager secret holding the pseudonym key (rules that call pseudonym())
    --pseudonym-key-check HEX optional: fail unless that key is the caller's (see key_check)
    --pseudonym-key-hex HEX   the key itself, for local runs and tests only (visible in the job run's details)
    --spark-master M          local runs only (local[*]); on Glue the platform provides Spark
    --s3-scheme s3|s3a        s3a for open-source Spark with hadoop-aws; Glue reads s3:// as is

Landing mode (instead of --table, --policy and --relations): the executors validate landing files with the
reference reader, exactly as the Spark engine does (zones/landing/spark_reader.read_files_spark):

    --landing-source S        customer, accelerometer or step_trainer
    --landing-plan URI        s3://… (or a local path) of a JSON object the Dagster side wrote: {"root": the
                              landing root URI, "files": {landing path: URI}, "schemas_sha256": …, "erased":
                              {"identities": […], "serials": […]} (the register's keyed hashes) or null}
    --output-dir URI          the staged folder of the typed rows (part-*.parquet)
    --rejected-dir URI        the staged folder of the quarantine rows
    --erasure-secret-id ID    Secrets Manager secret holding the erasure key (when someone is erased)
    --erasure-key-check HEX   optional: fail unless that key is the caller's
    --erasure-key-hex HEX     the key itself, for local runs and tests only

It reports {"source", "rows", "rejected", "files": {"data": [...], "rejected": [...]}, "figures": the read's
SourceStats figures, "rest": [the landing paths Spark did not read, left to the Dagster side]}.

Launched by Dagster's PipesGlueClient (stedi_assets/glue/pipes.py), it also gets --dagster-pipes-context and
--dagster-pipes-messages: it then reads the Pipes context from S3, streams its log lines to Dagster and
reports {"rows": n, "files": [...]} as a Pipes custom message. Without them it prints that JSON line.

The worker needs pyspark (Glue provides it), this package's pure-Python modules (stedi_assets/engines,
stedi_assets/zones, stedi_assets/contract.py, stedi_assets/glue), sqlglot and pyarrow, and dagster-pipes
and boto3 when launched through Pipes; never Dagster itself.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import importlib.util
import json
import logging
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa


def _unpack_zipped_package() -> None:
    """Glue puts --extra-py-files zips on sys.path as they are, but the rules are read as files from
    stedi_assets/zones/: when the package would be imported from a zip, unpack it and import it from there."""
    if "stedi_assets" in sys.modules:
        return
    spec = importlib.util.find_spec("stedi_assets")
    archive = getattr(spec.loader, "archive", None) if spec is not None else None
    if archive:
        target = tempfile.mkdtemp(prefix="stedi_assets-")
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(target, [n for n in bundle.namelist() if n.startswith("stedi_assets/")])
        sys.path.insert(0, target)


_unpack_zipped_package()

from stedi_assets.engines.spark_engine import run_select, spark_session  # noqa: E402
from stedi_assets.privacy.subjects import LandingFilter, Subjects  # noqa: E402
from stedi_assets.zones.landing.increment import figures_of  # noqa: E402
from stedi_assets.zones.landing.schema import LANDING_TABLES, SOURCE_OF  # noqa: E402
from stedi_assets.zones.landing.spark_reader import read_files_spark  # noqa: E402
from stedi_assets.zones.sql import ephemerals, load_rule  # noqa: E402

log = logging.getLogger("stedi_assets.glue")

PIPES_CONTEXT_ARG = "--dagster-pipes-context"
MESSAGE_INTERVAL = 5.0  # seconds between uploads of buffered Pipes messages (and at the end)


class JobError(RuntimeError):
    """The job cannot run as asked; the message is one clear line."""


def rule_sha256(table: str, policy: str) -> str:
    """Digest of the SQL that computes `table` under `policy` (its rule and ephemeral sub-rules, in order)."""
    rule = load_rule(table, policy)
    if rule is None:
        raise JobError(f"{table} has no SQL rule (landing tables are built by the validating reader)")
    digest = hashlib.sha256()
    for r in [*ephemerals(rule, policy), rule]:
        digest.update(f"{r.name}\0{r.body}\0".encode())
    return digest.hexdigest()


def key_check(key: bytes, purpose: str = "pseudonym") -> str:
    """A fingerprint of a key (pseudonym, erasure) that reveals nothing about it (an HMAC of a fixed label)."""
    return hmac.new(key, f"stedi {purpose} key check".encode(), hashlib.sha256).hexdigest()[:32]


def landing_schemas(source: str) -> dict[str, pa.Schema]:
    """The parts of `source`'s landing table, as the reader writes them (both policies share them)."""
    spec = next(s for s in LANDING_TABLES if SOURCE_OF[s.name] == source)
    return {part: spec.arrow_schema("strict", part) for part in spec.parts}


def schemas_sha256(schemas: dict[str, pa.Schema]) -> str:
    """Digest of a landing table's part schemas: the job's package must type rows as the caller's does."""
    digest = hashlib.sha256()
    for part in sorted(schemas):
        digest.update(part.encode() + b"\0" + schemas[part].serialize().to_pybytes())
    return digest.hexdigest()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stedi-glue-entry", description=__doc__.splitlines()[0])
    parser.add_argument("--table")
    parser.add_argument("--policy", choices=("strict", "rubric"))
    parser.add_argument("--relations", help="JSON object: relation -> list of Parquet URIs")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--landing-source", choices=sorted(SOURCE_OF.values()))
    parser.add_argument("--landing-plan")
    parser.add_argument("--rejected-dir")
    parser.add_argument("--erasure-secret-id")
    parser.add_argument("--erasure-key-check")
    parser.add_argument("--erasure-key-hex")
    parser.add_argument("--sql-sha256")
    parser.add_argument("--pseudonym-secret-id")
    parser.add_argument("--pseudonym-key-check")
    parser.add_argument("--pseudonym-key-hex")
    parser.add_argument("--spark-master")
    parser.add_argument("--s3-scheme", default="s3", choices=("s3", "s3a"))
    args, _ = parser.parse_known_args(list(argv))  # Glue's own arguments are not ours
    needed = ("landing_plan", "rejected_dir") if args.landing_source else ("table", "policy", "relations")
    missing = [f"--{n.replace('_', '-')}" for n in needed if getattr(args, n) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    return args


def pseudonym_key(args: argparse.Namespace) -> bytes:
    return secret_key(args, "pseudonym", f"{args.table} ({args.policy}) calls pseudonym()", "STEDI_PSEUDONYM_KEY")


def secret_key(args: argparse.Namespace, purpose: str, why: str, env_var: str) -> bytes:
    """The `purpose` key (pseudonym, erasure): from --<purpose>-secret-id, or --<purpose>-key-hex locally,
    checked against --<purpose>-key-check."""
    secret_id, key_hex, check = (getattr(args, f"{purpose}_{n}") for n in ("secret_id", "key_hex", "key_check"))
    if secret_id:
        import boto3

        secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
        # Same convention as the Dagster side's environment variable: the secret's text, UTF-8 encoded.
        key = secret["SecretBinary"] if "SecretBinary" in secret else secret["SecretString"].strip().encode()
    elif key_hex:
        key = bytes.fromhex(key_hex)
    else:
        raise JobError(f"{why}: give --{purpose}-secret-id")
    if check and not hmac.compare_digest(key_check(key, purpose), check):
        raise JobError(
            f"the {purpose} key is not the caller's (--{purpose}-key-check differs): "
            f"the secret and the Dagster side's {env_var} must hold the same key"
        )
    return key


def _argv_params_loader(argv: Sequence[str]):
    """dagster-pipes' CLI params loader, reading the given argument list instead of sys.argv."""
    from dagster_pipes import DAGSTER_PIPES_CLI_PARSER, PipesParamsLoader, decode_param

    class ArgvParamsLoader(PipesParamsLoader):
        def __init__(self) -> None:
            self.args, _ = DAGSTER_PIPES_CLI_PARSER.parse_known_args(list(argv))

        def is_dagster_pipes_process(self) -> bool:
            return self.args.dagster_pipes_context is not None

        def load_context_params(self):
            return decode_param(self.args.dagster_pipes_context)

        def load_messages_params(self):
            return decode_param(self.args.dagster_pipes_messages)

    return ArgvParamsLoader()


class _NoPipes:
    """Stands in for the Pipes context when the job was not launched by Dagster."""

    log = log

    def report_custom_message(self, payload: Any) -> None:
        print(json.dumps(payload), flush=True)


@contextlib.contextmanager
def pipes_context(argv: Sequence[str]) -> Iterator[Any]:
    """The Dagster Pipes context when launched by PipesGlueClient, else a stand-in that prints."""
    if PIPES_CONTEXT_ARG not in argv:
        yield _NoPipes()
        return
    import boto3
    from dagster_pipes import (
        PipesContext,
        PipesDefaultMessageWriter,
        PipesS3ContextLoader,
        PipesS3MessageWriter,
        open_dagster_pipes,
    )

    if PipesContext.is_initialized() and PipesContext.get().is_closed:
        PipesContext._instance = None  # a previous main() in this process (open_dagster_pipes keeps one)

    loader = _argv_params_loader(argv)
    s3 = boto3.client("s3")
    # S3 when the Dagster side reads messages from a bucket; else stdout, which Glue ships to CloudWatch
    writer = (
        PipesS3MessageWriter(client=s3, interval=MESSAGE_INTERVAL)
        if "bucket" in loader.load_messages_params()
        else PipesDefaultMessageWriter()
    )
    context_loader = PipesS3ContextLoader(client=s3)
    with open_dagster_pipes(context_loader=context_loader, message_writer=writer, params_loader=loader) as pipes:
        yield pipes


def read_plan(uri: str) -> dict:
    """The landing plan the Dagster side wrote (an S3 object next to the Pipes context, or a local file)."""
    if uri.startswith("s3://"):
        import boto3

        bucket, key = uri[len("s3://") :].split("/", 1)
        return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    with open(uri, "rb") as plan:
        return json.load(plan)


def validate_landing(args: argparse.Namespace, pipes) -> dict:
    """Landing mode: the executors read and validate the plan's files as the Spark engine's do."""
    source = args.landing_source
    plan = read_plan(args.landing_plan)
    schemas = landing_schemas(source)
    if plan.get("schemas_sha256") != schemas_sha256(schemas):
        raise JobError(
            f"the packaged landing schema of {source} differs from the caller's: deploy the same stedi_assets "
            "version to the Glue job"
        )
    erased = None
    if plan.get("erased"):  # someone is erased: their lines are dropped here, as by every reader
        key = secret_key(args, "erasure", f"{source} landing has erased people", "STEDI_ERASURE_KEY")
        hashes = plan["erased"]
        erased = LandingFilter(
            source, Subjects(key, frozenset(hashes.get("identities", ())), frozenset(hashes.get("serials", ())))
        )
    files: dict[str, str] = plan["files"]
    pipes.log.info(f"validating {len(files)} {source} landing file(s) into {args.output_dir}")
    spark = spark_session(master=args.spark_master, app_name=f"stedi-landing-{source}")
    done = read_files_spark(
        spark,
        source,
        schemas,
        {"data": args.output_dir, "rejected": args.rejected_dir},
        erased,
        plan["root"],
        files,
        s3_scheme=args.s3_scheme,
    )
    result = {
        "source": source,
        "rows": done.stats.rows,
        "rejected": done.stats.rejected,
        "files": done.files,
        "figures": figures_of(done.stats),
        "rest": done.rest.files,
    }
    pipes.log.info(
        f"{source}: {done.stats.rows} rows, {done.stats.rejected} rejected from {len(done.stats.files)} file(s); "
        f"{len(done.rest.files)} left to the caller"
    )
    pipes.report_custom_message(result)
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    with pipes_context(argv) as pipes:
        if args.landing_source:
            return validate_landing(args, pipes)
        rule = load_rule(args.table, args.policy)
        if rule is None:
            raise JobError(f"{args.table} has no SQL rule (landing tables are built by the validating reader)")
        subrules = ephemerals(rule, args.policy)
        if args.sql_sha256 and args.sql_sha256 != rule_sha256(args.table, args.policy):
            raise JobError(
                f"the packaged SQL of {args.table} ({args.policy}) differs from the caller's: deploy "
                "the same stedi_assets version to the Glue job"
            )
        relations = json.loads(args.relations)
        needed = {n for r in [rule, *subrules] for n in r.relations if not n.startswith("_")}
        missing = sorted(needed - set(relations))
        if missing:
            raise JobError(f"--relations lacks {', '.join(missing)}, which {rule.path.name} reads")
        uses_pseudonym = any("pseudonym" in r.functions for r in [rule, *subrules])
        key = pseudonym_key(args) if uses_pseudonym else None
        pipes.log.info(f"computing {args.table} ({args.policy}, {rule.path.name}) into {args.output_dir}")
        spark = spark_session(master=args.spark_master, app_name=f"stedi-{args.table}")
        rows, files = run_select(
            spark,
            rule.body,
            {n: relations[n] for n in sorted(needed)},
            args.output_dir,
            ephemerals=[(s.name, s.body) for s in subrules],
            pseudonym_key=key,
            s3_scheme=args.s3_scheme,
        )
        result = {"table": args.table, "policy": args.policy, "sql": rule.path.name, "rows": rows, "files": files}
        pipes.log.info(f"{args.table}: {rows} rows in {len(files)} file(s)")
        pipes.report_custom_message(result)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
