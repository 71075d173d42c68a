"""Landing validation on Spark: the executors read and validate the landing files, the driver only plans.

Why the result is exactly the reference reader's (reader.py), row for row: the executors run the reference
code itself. Spark's binaryFile source reads each file's bytes through Spark's file systems (file://, s3a://,
EMR's s3://); in a Python worker, `mapInArrow` hands every file to `reader.read_source` over a store that
holds just that file's bytes under its landing path, so gzip, BOM, CRLF, a final line without newline, the
"unreadable_file: … after line N" row and the erased-people filter are the same code on the same bytes.
A file's lines never depend on another file's, so reading files one by one and adding up the figures
(increment.add, as runs add up their groups) is a read of them all.

Spark does not get every entry: entries the listing found unreadable, files it does not deliver (removed
after the listing, empty, larger than MAX_FILE_BYTES, or a name Hadoop cannot take literally) come back in
`SparkRead.rest`, for the reference reader on the driver: none is dropped, and the ones Spark did read are
told by the figures its executors returned, one per file.

`read_files_spark` is the part that runs on Spark, from a list of file URIs; the Spark engine calls it through
`read_source_spark` (with the landing store at hand), the Glue job's landing mode (glue/entry.py) directly.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from ...step_progress import polling
from .increment import figures_of, stats_of
from .reader import Listing, SourceStats, read_source

# A whole file is one row of Spark's binaryFile source (one byte array in an executor, at most 2 GiB); bigger
# files are streamed by the driver instead.
MAX_FILE_BYTES = 256 << 20
GLOB = re.compile(r"([\\{}\[\]*?])")  # Hadoop globs paths with these: escaped, they are taken literally
DATA, REJECTED, STATS = "data", "rejected", "stats"  # the kinds of the executors' output rows


@dataclass
class SparkRead:
    stats: SourceStats  # the figures of the files the executors read
    files: dict[str, list[str]]  # part -> the Parquet files Spark wrote into its folder (names)
    rest: Listing  # the entries left to the reference reader on the driver


class _OneFile:
    """The store `read_source` sees in an executor: one landing file's bytes (its listing names no other)."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def size(self, path: str) -> int:
        return len(self.content)

    def open(self, path: str) -> io.BytesIO:
        return io.BytesIO(self.content)


def output_schema(schemas: dict[str, pa.Schema]) -> pa.Schema:
    """One row kind per row: a typed row, a quarantine row, or one file's figures (JSON)."""
    parts = [(part, pa.struct(list(schemas[part]))) for part in (DATA, REJECTED)]
    return pa.schema([("kind", pa.string()), *parts, (STATS, pa.string())])


def _rows(schema: pa.Schema, kind: str, batch: pa.RecordBatch | None = None, stats: str | None = None):
    n = 1 if batch is None else batch.num_rows
    columns = [pa.array([kind] * n, pa.string())]
    for part in (DATA, REJECTED):
        struct = schema.field(part).type
        if batch is not None and kind == part:
            columns.append(pa.StructArray.from_arrays(batch.columns, fields=list(struct)))
        else:
            columns.append(pa.nulls(n, struct))
    columns.append(pa.array([stats] * n, pa.string()))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def validate_files(
    batches: Iterator[pa.RecordBatch],
    source: str,
    prefix: str,
    planned: frozenset[str],
    schema: pa.Schema,
    erased,
    typed=None,
) -> Iterator[pa.RecordBatch]:
    """In an executor: (path, content) rows of binaryFile in, the reference reader's output rows out. `typed`
    (a Spark accumulator, or None) adds up the typed rows: the driver sees a task's share when the task ends."""
    for batch in batches:
        for uri, content in zip(batch.column("path").to_pylist(), batch.column("content"), strict=True):
            path = uri[len(prefix) :] if uri.startswith(prefix) else None
            if path in planned:  # else not a file asked for: the driver reads what Spark did not deliver
                yield from _validate_file(path, content.as_py(), source, schema, erased, typed)


def _validate_file(
    path: str, content: bytes, source: str, schema: pa.Schema, erased, typed=None
) -> list[pa.RecordBatch]:
    out: list[pa.RecordBatch] = []
    stats = read_source(
        _OneFile(content),
        source,
        pa.schema(list(schema.field(DATA).type)),
        lambda b: out.append(_rows(schema, DATA, b)),
        lambda b: out.append(_rows(schema, REJECTED, b)),
        erased,
        Listing(files=[path]),
    )
    if typed is not None:
        typed.add(stats.rows)
    return [*out, _rows(schema, STATS, stats=json.dumps({"path": path, **figures_of(stats)}))]


def read_source_spark(
    spark,
    store,
    source: str,
    schemas: dict[str, pa.Schema],
    folders: dict[str, str],
    erased,
    listing: Listing,
    s3_scheme: str = "s3",
    on_rows: Callable[[int], None] | None = None,
) -> SparkRead:
    """Validate the files of `listing` on Spark's executors into Parquet part files of `folders` (part -> the
    folder's URI, replaced whole). `store` is the landing store: the driver never opens its files, Spark reads
    them by URI (s3:// as `s3_scheme`, see spark_engine.spark_uri). `on_rows` hears the typed rows so far."""
    done = read_files_spark(
        spark,
        source,
        schemas,
        folders,
        erased,
        store.uri(),
        {path: store.uri(path) for path in listing.files},
        functools.partial(_gone, store),
        s3_scheme,
        on_rows,
    )
    return SparkRead(done.stats, done.files, Listing(files=done.rest.files, unreadable=dict(listing.unreadable)))


def read_files_spark(
    spark,
    source: str,
    schemas: dict[str, pa.Schema],
    folders: dict[str, str],
    erased,
    root: str,
    uris: dict[str, str],
    gone: Callable[[str], bool] | None = None,
    s3_scheme: str = "s3",
    on_rows: Callable[[int], None] | None = None,
) -> SparkRead:
    """Validate the landing files `uris` (landing path -> URI, under the landing root `root`) on Spark's
    executors into Parquet part files of `folders`; the rest lists the files left to the reference reader.
    `gone(path)` tells whether a file can no longer be examined (by default, Hadoop's file system says).
    `on_rows` hears the typed rows so far: those of the files whose tasks have ended, while Spark works, then
    the exact total (a retried task may count twice in the first figures, never in the last)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from ...engines.spark_engine import spark_uri, write_parquet

    session = spark.newSession()
    session.conf.set("spark.sql.files.ignoreMissingFiles", "true")  # removed since planning: left to the driver
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "1")  # one file's bytes at a time
    hadoop_path = session.sparkContext._jvm.org.apache.hadoop.fs.Path
    in_spark = {path: spark_uri(uri, s3_scheme) for path, uri in uris.items()}
    # Hadoop cannot glob a name with a colon: such a name with glob characters is read by the driver
    in_spark = {p: u for p, u in in_spark.items() if not (GLOB.search(u) and ":" in u.split("://", 1)[-1])}
    files, pending = _binary_files(session, in_spark, gone or functools.partial(_gone_in_hadoop, session, in_spark))
    if files is None:
        return SparkRead(SourceStats(), {}, Listing(files=list(uris)))
    schema = output_schema(schemas)
    typed = session.sparkContext.accumulator(0) if on_rows is not None else None
    validate = functools.partial(
        validate_files,
        source=source,
        prefix=hadoop_path(spark_uri(root, s3_scheme)).toString() + "/",  # binaryFile's form of the root
        planned=frozenset(pending),
        schema=schema,
        erased=erased,
        typed=typed,
    )
    validated = (
        files.where((F.col("length") > 0) & (F.col("length") <= MAX_FILE_BYTES))
        .select("path", "content")
        .mapInArrow(validate, from_arrow_schema(schema))
        .persist()
    )
    try:
        with polling(lambda: typed.value if typed is not None else 0, on_rows, "spark-landing-progress"):
            written = {
                part: write_parquet(
                    validated.where(F.col("kind") == part).select(f"{part}.*"), spark_uri(folders[part], s3_scheme)
                )
                for part in (DATA, REJECTED)
            }
        reads = sorted(
            (json.loads(r[0]) for r in validated.where(F.col("kind") == STATS).select(STATS).collect()),
            key=lambda r: r["path"],
        )
    finally:
        validated.unpersist()
    stats = SourceStats()
    for read in reads:
        stats.add(stats_of(read))  # a read also names its path
    read_paths = [r["path"] for r in reads]
    if len(set(read_paths)) != len(read_paths) or (stats.rows, stats.rejected) != (
        written[DATA][0],
        written[REJECTED][0],
    ):
        raise RuntimeError(f"Spark's read of {source} does not add up: a landing file was read twice or changed")
    rest = Listing(files=[p for p in uris if p not in set(read_paths)])
    if on_rows is not None:
        on_rows(stats.rows)
    return SparkRead(stats, {part: names for part, (_, names) in written.items()}, rest)


def _binary_files(session, uris: dict[str, str], gone: Callable[[str], bool]):
    """Spark's binaryFile source over `uris` (landing path -> Spark URI): (the DataFrame or None, the paths it
    reads). Files removed since the listing are left out (Spark refuses a missing path when it plans)."""
    from pyspark.errors import AnalysisException

    for _attempt in range(3):
        if not uris:
            return None, []
        try:
            return session.read.format("binaryFile").load([GLOB.sub(r"\\\1", u) for u in uris.values()]), list(uris)
        except AnalysisException as err:
            missing = [p for p in uris if gone(p)]
            if err.getErrorClass() != "PATH_NOT_FOUND" or not missing:
                raise
            uris = {p: u for p, u in uris.items() if p not in missing}
    raise RuntimeError("landing files keep disappearing while Spark plans to read them")


def _gone(store, path: str) -> bool:
    """Whether a listed file cannot be examined now (removed, no access): the driver's reader says why."""
    try:
        store.size(path)  # a stat locally, a HEAD request on S3
        return False
    except OSError:
        return True


def _gone_in_hadoop(session, uris: dict[str, str], path: str) -> bool:
    """`_gone` where no landing store is at hand (the Glue job): Hadoop's file system of the file's Spark URI."""
    jvm = session.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(uris[path])
    try:
        return not target.getFileSystem(session.sparkContext._jsc.hadoopConfiguration()).exists(target)
    except Exception:  # noqa: BLE001 - no access (Py4JJavaError): it cannot be examined, the driver says why
        return True
