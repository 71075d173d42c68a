"""The scale-out engine: the rules' SQL files on Apache Spark 3.5 (local[*], a spark:// cluster, EMR, AWS Glue 5).

It implements the engines' interface (engines/base.py), as DuckDBEngine does: `select_into(sql, relations,
output_dir, ...)` reads each relation's Parquet files, runs the table's SELECT and writes the result as
Parquet part files into `output_dir`, returning the row count and the part-file names; the lake layout,
the snapshots and the checks do not know which engine ran. On the Iceberg lake, `relations` are the data
files pyiceberg planned for the input snapshots the run pinned and `output_dir` is a staged write's folder:
the lake's pyiceberg commit adds the part files afterwards (Spark's Iceberg runtime is not needed, nor loaded).
The SQL is the same file DuckDB runs, translated by `translate.to_spark` where the
two dialects differ (that module lists every difference); `pseudonym()` becomes plain Spark SQL
(HMAC-SHA256 with sha2/unhex/concat), so no Python UDF runs for a SQL table. The one Python code Spark runs
is the landing validation (zones/landing/spark_reader.py), in the executors' Python workers.

Start-up: one SparkSession (one JVM) per process, created on first use and reused by every step that
runs in the process; each call works in its own `newSession()` so temp views never leak between tables.

The first half of this module needs only pyspark: the AWS Glue job script (stedi_assets/glue/entry.py)
runs `run_select` on a Glue worker, where Dagster is not installed. `SparkEngine`, the Dagster resource,
is defined below it when dagster is importable.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from .translate import to_spark, view_name

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# HMAC key pads are 128 hex digits; Spark replaces matches by *********(redacted) in EXPLAIN output, the
# SQL tab of the UI and event logs, so the pseudonym key does not show up in plans.
REDACT_KEY_PADS = "(?i)[0-9a-f]{128}"

BASE_CONF = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # Part files only: no _SUCCESS marker (the Iceberg commit that adds them is the commit record).
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.sql.parquet.compression.codec": "snappy",
    "spark.sql.redaction.string.regex": REDACT_KEY_PADS,
}
# local[*]: no web UI, and shuffles sized for one machine rather than Spark's cluster default of 200.
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": str(max(2, 2 * (os.cpu_count() or 1))),
    # Executors run in the driver's JVM here. When a task's thread that feeds a Python worker runs out of
    # heap it dies, and the task and its worker then wait for each other for ever (seen at 100 x Udacity with
    # a 2 GB heap): exiting the JVM fails the step instead (then raise spark.driver.memory in spark_conf).
    "spark.driver.extraJavaOptions": "-XX:+ExitOnOutOfMemoryError",
}

_lock = threading.Lock()
_session: SparkSession | None = None
_session_master: str | None = None


def _is_local(master: str | None) -> bool:
    if master is None:
        return False
    host = urlparse(master).hostname if "://" in master else None
    return master.startswith("local") or host in ("127.0.0.1", "localhost")


def spark_session(
    master: str | None = "local[*]",
    app_name: str = "stedi-lakehouse",
    conf: Mapping[str, str] | None = None,
    log_level: str = "WARN",
) -> SparkSession:
    """The process's SparkSession, started on first use (seconds: a JVM) and reused afterwards.

    `master` None means "whatever the environment provides" (spark-submit, AWS Glue, EMR).
    """
    global _session, _session_master
    if master is not None and master.startswith("sc://"):
        raise ValueError(
            f"Spark Connect ({master}) is not supported: the engine needs the classic "
            "SparkSession (newSession, Hadoop FileSystem); use local[*], spark://host:port or yarn"
        )
    with _lock:
        if _session is not None and _session.sparkContext._jsc is not None:
            if master is not None and _session_master is not None and master != _session_master:
                raise RuntimeError(
                    f"this process already runs Spark with master {_session_master}; one "
                    f"SparkSession per process, so it cannot also use {master}"
                )
            return _session
        if _is_local(master):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else Spark binds a public address
            # Python workers (landing validation) run this interpreter, not whatever `python3` is on the PATH
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        settings = {**BASE_CONF, **(LOCAL_CONF if master and master.startswith("local") else {}), **(conf or {})}
        builder = SparkSession.builder.appName(app_name)
        if master is not None:
            builder = builder.master(master)
        for key, value in settings.items():
            builder = builder.config(key, value)
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel(log_level)
        _session_master = master
        return _session


def jvm_exit_code(error: BaseException) -> int | None:
    """The exit code of this process's local Spark JVM if it has exited, else None (also when the JVM is not a
    child of this process: Glue, EMR, spark-submit). After a failed call from Python (`error`), a JVM that is
    dying may not have exited yet: for an error of the connection to it, wait a moment (not for a Java exception,
    which a live JVM sent)."""
    from py4j.protocol import Py4JError, Py4JJavaError
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
    if process is None:
        return None
    connection = isinstance(error, Py4JError | ConnectionError) and not isinstance(error, Py4JJavaError)
    try:
        return process.wait(timeout=3 if connection else 0.01)
    except subprocess.TimeoutExpired:
        return None


def stop_session() -> None:
    """Stop the process's SparkSession (tests, benchmarks); the next use starts a new one."""
    global _session, _session_master
    with _lock:
        if _session is not None:
            _session.stop()
        _session, _session_master = None, None


def spark_uri(uri: str, s3_scheme: str = "s3") -> str:
    """A lake URI as Spark's Hadoop file systems want it: local paths become file:// URIs.

    `s3_scheme` "s3a" rewrites s3:// for open-source Spark with hadoop-aws; EMR and Glue read s3:// as is.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "s3" and s3_scheme != "s3":
        return f"{s3_scheme}://{uri[len('s3://') :]}"
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:
        path = parsed.path if parsed.scheme == "file" else uri
        return "file://" + os.path.abspath(path)
    return uri


def _remove_side_files(spark: SparkSession, target: str, keep: Sequence[str]) -> None:
    """Delete the checksum files Hadoop's local file system writes beside each part (.part-….crc)."""
    if target.startswith("file://"):  # Hadoop's local file system hides .crc files from listings
        folder = target[len("file://") :]
        for name in os.listdir(folder):
            if name not in keep and (name.endswith(".crc") or name == "_SUCCESS"):
                os.remove(os.path.join(folder, name))
        return
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has no JVM gateway (was it stopped?)")
    path = jvm.org.apache.hadoop.fs.Path(target)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        if name not in keep and (name.endswith(".crc") or name == "_SUCCESS"):
            fs.delete(status.getPath(), False)


def register_relations(spark: SparkSession, relations: Mapping[str, Sequence[str]], s3_scheme: str = "s3") -> None:
    """A temp view per relation over its Parquet files (`zone.table` becomes `zone__table`)."""
    for name, uris in relations.items():
        if not uris:
            raise ValueError(f"relation {name} has no data files")
        spark.read.parquet(*[spark_uri(u, s3_scheme) for u in uris]).createOrReplaceTempView(view_name(name))


def run_select(
    spark: SparkSession,
    sql: str,
    relations: Mapping[str, Sequence[str]],
    output_dir: str,
    *,
    ephemerals: Sequence[tuple[str, str]] = (),
    pseudonym_key: bytes | None = None,
    s3_scheme: str = "s3",
) -> tuple[int, list[str]]:
    """Run the DuckDB-dialect SELECT `sql` on Spark into `output_dir`; (rows, part-file names).

    `relations` maps each table name the SQL reads to its Parquet file URIs; `ephemerals` are
    (name, SELECT) pairs defined as views first, in order.
    """
    session = spark.newSession()  # private temp views and SQL settings for this table
    register_relations(session, relations, s3_scheme)
    for name, body in ephemerals:
        session.sql(to_spark(body, pseudonym_key=pseudonym_key)).createOrReplaceTempView(view_name(name))
    target = spark_uri(output_dir.rstrip("/"), s3_scheme)
    return write_parquet(session.sql(to_spark(sql, pseudonym_key=pseudonym_key)), target)


def write_parquet(df: DataFrame, target: str) -> tuple[int, list[str]]:
    """Write `df` as the Parquet part files of the folder `target` (a Spark URI, replaced whole); (rows, names)."""
    df.write.mode("overwrite").parquet(target)
    written = df.sparkSession.read.parquet(target)
    files = sorted(posixpath.basename(unquote(urlparse(f).path)) for f in written.inputFiles())
    rows = written.count()
    _remove_side_files(df.sparkSession, target, files)
    return rows, files


def run_query(spark: SparkSession, sql: str, relations: Mapping[str, Sequence[str]], s3_scheme: str = "s3") -> pa.Table:
    """The result of an ad-hoc DuckDB-dialect SELECT, computed by Spark, as an Arrow table.

    Unlike the rules, ad-hoc SQL may use constructs without a tested translation (sqlglot's alone).
    """
    import pyarrow as pa

    session = spark.newSession()
    register_relations(session, relations, s3_scheme)
    df = session.sql(to_spark(sql, portable_only=False))
    batches = df._collect_as_arrow()  # the Arrow path toPandas() uses; keeps int64 with nulls exact
    if batches:
        return pa.Table.from_batches(batches)
    return pa.schema([(f.name, _arrow_type(f.dataType)) for f in df.schema.fields]).empty_table()


def _arrow_type(spark_type) -> pa.DataType:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(spark_type)


try:
    import dagster as dg
    from pydantic import Field

    _HAS_DAGSTER = True
except ModuleNotFoundError:  # a Glue/EMR worker: run_select above is all it needs
    _HAS_DAGSTER = False

if _HAS_DAGSTER:
    from .base import Engine, EngineOutput

    class SparkEngine(Engine):
        """Runs a table's SELECT on Apache Spark into the lake (same SQL files, same layout as DuckDB)."""

        master: str = Field(
            default="local[*]",
            description=(
                "Spark master: local[*] (this machine), spark://host:7077 (standalone cluster), yarn (EMR); "
                "empty: whatever spark-submit or the platform provides."
            ),
        )
        app_name: str = Field(default="stedi-lakehouse", description="Spark application name.")
        spark_conf: dict[str, str] = Field(
            default={},
            description=(
                "Extra Spark settings, e.g. spark.driver.memory, spark.sql.shuffle.partitions, fs.s3a.* keys."
            ),
        )
        s3_scheme: str = Field(
            default="s3",
            description=(
                "URI scheme for s3:// lake paths: s3 on EMR and Glue, s3a for open-source Spark with hadoop-aws."
            ),
        )
        log_level: str = Field(default="WARN", description="Spark's log level (ERROR, WARN, INFO, ...).")

        @property
        def name(self) -> str:
            return "spark"

        def session(self) -> SparkSession:
            from .. import settings

            try:
                settings.require_engine("spark")  # a run launched from the UI: say which extra is missing
            except settings.SettingError as err:
                raise dg.Failure(str(err)) from None
            return spark_session(self.master or None, self.app_name, self.spark_conf, self.log_level)

        @contextlib.contextmanager
        def _jvm_exit_explained(self):
            """A local JVM that exits mid-step leaves Python with py4j's connection errors, which do not say
            why: it exits when its heap runs out (LOCAL_CONF), so say that, and how to give it more."""
            try:
                yield
            except Exception as err:
                code = jvm_exit_code(err)
                if code is None:
                    raise
                memory = self.spark_conf.get("spark.driver.memory", "Spark's default, 1g")
                raise RuntimeError(
                    f"the local Spark JVM exited (code {code}) during this step; it exits when it runs out of "
                    f"memory: give it more with STEDI_SPARK_DRIVER_MEMORY or spark.driver.memory in the engine's "
                    f"spark_conf (now {memory}). Every later Spark step of this run fails too"
                ) from None

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
            """Write the result of `sql` as Parquet part files into the folder `output_dir`.

            `setup` holds DuckDB statements for reaching the lake and is not used: Spark reaches
            s3:// through its Hadoop configuration (the platform's role on EMR/Glue, or spark_conf).
            """
            with self._jvm_exit_explained():
                rows, files = run_select(
                    self.session(),
                    sql,
                    relations,
                    output_dir,
                    ephemerals=ephemerals,
                    pseudonym_key=pseudonym_key,
                    s3_scheme=self.s3_scheme,
                )
            return EngineOutput(rows=rows, files=files)

        def query(self, sql: str, relations: Mapping[str, Sequence[str]], setup: Sequence[str] = ()) -> pa.Table:
            with self._jvm_exit_explained():
                return run_query(self.session(), sql, relations, self.s3_scheme)

        def read_landing(self, store, source: str, schemas, folders, erased, listing, on_rows=None):
            """Validate the files of `listing` in Spark's executors (zones/landing/spark_reader.py), into Parquet
            part files of `folders`; what they did not read comes back in the result's `rest`. `on_rows` hears
            the typed rows so far (as the executors' tasks end)."""
            from ..zones.landing.spark_reader import read_source_spark

            with self._jvm_exit_explained():
                session = self.session()
                return read_source_spark(
                    session, store, source, schemas, folders, erased, listing, self.s3_scheme, on_rows
                )
