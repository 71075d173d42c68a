"""How a staged snapshot gets its data: landing tables by the validating reader, the rest by SQL."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq

from .contract import TableSpec
from .engines.base import Engine
from .engines.duckdb_engine import DuckDBEngine, attach_parquet, connect
from .privacy.keys import key_id
from .privacy.register import ErasureRegister
from .storage.lake import Lake, Snapshot, StagedWrite
from .zones import incremental
from .zones.landing import increment
from .zones.landing.duckdb_reader import read_source_duckdb
from .zones.landing.reader import UNREADABLE, Listing, Sink, SourceStats, landing_files, read_source
from .zones.landing.schema import SOURCE_OF
from .zones.sql import PART_SUFFIX, ephemerals, load_rule


def landing_reader(engine: Engine | None) -> str:
    """The landing reader for a run on `engine`: the DuckDB engine's choice (duckdb_reader.py by default,
    or the reference reader.py); on the Spark engine spark_reader.py (the reference reader in Spark's executors),
    on the Glue engine the same code in a Glue job run's executors (glue); the reference reader on others."""
    if isinstance(engine, DuckDBEngine):
        return engine.landing_reader
    return engine.name if engine is not None and engine.name in EXECUTORS else "python"


EXECUTORS = ("spark", "glue")  # the readers that validate in Spark's executors (spark_reader.read_files_spark)


def counted(sink: Sink, on_rows: Callable[[int], None] | None) -> Sink:
    """`sink`, telling `on_rows` how many rows went through it so far after each batch."""
    if on_rows is None:
        return sink
    total = 0

    def write(batch: pa.RecordBatch) -> None:
        nonlocal total
        sink(batch)
        total += batch.num_rows
        on_rows(total)

    return write


def parquet_writer(where, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer for landing rows: dictionary encoding for the text columns only. Numbers rarely repeat
    in readings, so trying a dictionary for them is wasted work: writing 8 M accelerometer rows took 2.8 s
    with dictionaries on every column and 1.8 s like this, for files 15 % larger."""
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return pq.ParquetWriter(where, schema, use_dictionary=text)


class WritesBehind:
    """Sinks whose writes run in one worker thread, in the order they were given, while the reader goes on
    reading: writing Parquet is a quarter of landing's work, and pyarrow writes without Python's lock (K=100
    accelerometer landing: 8.5 s with the writes in line, 7.3 s behind). At most AHEAD batches wait, so
    memory stays bounded. Leaving the block waits for every write and raises the first one's error; after an
    error of the block, writes not started are dropped (the files are thrown away with the failed read)."""

    AHEAD = 2

    def __init__(self) -> None:
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="landing-write")
        self.pending: deque[Future] = deque()

    def sink(self, write: Sink) -> Sink:
        def submit(batch: pa.RecordBatch) -> None:
            self.pending.append(self.worker.submit(write, batch))
            while len(self.pending) > self.AHEAD:
                self.pending.popleft().result()

        return submit

    def __enter__(self) -> WritesBehind:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        try:
            while self.pending and error is None:
                self.pending.popleft().result()
        finally:  # the file may be closed only after its last write
            self.worker.shutdown(wait=True, cancel_futures=True)


class _LandingReads:
    """Reads of landing entries into the staged write, one group (with its own Parquet files) per read."""

    def __init__(self, spec: TableSpec, staged: StagedWrite, lake: Lake, landing_store, engine, register, on_rows):
        self.source = SOURCE_OF[spec.name]
        self.staged, self.lake, self.landing_store, self.engine = staged, lake, landing_store, engine
        # policy is irrelevant at landing: both policies share the same typed rows
        self.schemas = {part: spec.arrow_schema("strict", part) for part in spec.parts}
        self.reader = landing_reader(engine)
        self.erased = register.landing_filter(self.source)
        self.written = 0  # Parquet files written here: each read gets new names
        self.empty: set[str] = set()  # those of them that hold no row
        self.on_rows = on_rows

    def group(self, listing: Listing, fingerprints: dict[str, str], executors: bool = True) -> increment.Group:
        """Read `listing` into one group. On the Spark and Glue engines Spark's executors read what they can
        (unless `executors` is false), the rest is read here, by the reference reader."""
        staged, schemas = self.staged, self.schemas
        rest, lake_files, stats = listing, {}, SourceStats()
        if executors and self.reader in EXECUTORS:
            folders = {part: self.lake.uri(staged.part_folder(part)) for part in schemas}
            what = (self.landing_store, self.source, schemas, folders, self.erased, listing)
            done = self.engine.read_landing(*what, on_rows=self.on_rows)
            lake_files = {part: staged.add_files(part, names) for part, names in done.files.items()}
            rest, stats = done.rest, done.stats
        if rest.files or rest.unreadable or not lake_files:
            here_files = {part: [staged.file(part, self.written)] for part in schemas}
            self.written += 1
            written = dict.fromkeys(schemas, 0)
            with (
                self.lake.local_output(here_files["data"][0]) as data,
                self.lake.local_output(here_files["rejected"][0]) as rejects,
                parquet_writer(data, schemas["data"]) as rows,
                parquet_writer(rejects, schemas["rejected"]) as bad,
                WritesBehind() as behind,  # left first: its writes end before the files close
            ):

                def tallied(part: str, sink: Sink) -> Sink:  # `written` learns the rows each file got
                    return counted(sink, lambda total: written.__setitem__(part, total))

                write_rows = tallied("data", counted(behind.sink(rows.write_batch), self._after(stats.rows)))
                write_bad = tallied("rejected", behind.sink(bad.write_batch))
                args = (self.landing_store, self.source, schemas["data"], write_rows, write_bad)
                if self.reader == "duckdb":
                    here = read_source_duckdb(*args, self.erased, rest, connection=self.engine.session)
                else:
                    here = read_source(*args, self.erased, rest)
            for part, paths in here_files.items():
                lake_files.setdefault(part, []).extend(paths)
                if written[part] == 0:
                    self.empty.update(paths)
            stats.add(increment.stats_of(increment.figures_of(here)))  # the figures a group records
        group = increment.Group.of_read({p: fingerprints[p] for p in listing.files}, lake_files, stats)
        if set(stats.unreadable_files) <= set(listing.unreadable):  # their causes are known already
            group.failures = {p: listing.unreadable[p] for p in stats.unreadable_files}
        else:
            group.failures = self.causes(lake_files["rejected"])
        return group

    def _after(self, executors_rows: int) -> Callable[[int], None] | None:
        """on_rows for the rows read here, after the `executors_rows` that Spark's executors typed first."""
        on_rows = self.on_rows
        return None if on_rows is None else lambda total: on_rows(executors_rows + total)

    def causes(self, rejected_files: list[str]) -> dict[str, str]:
        """Why each unreadable entry of a read could not be read to its end, from its quarantine row (Spark's
        executors write theirs themselves): fixed words, never a file's content."""
        prefix = f"{UNREADABLE}: "
        with connect(self.lake.store.duckdb_setup()) as con:
            attach_parquet(con, {"rejected": [self.lake.uri(f) for f in rejected_files]})
            found = con.execute(
                "SELECT source_file, reason FROM rejected WHERE starts_with(reason, ?)", [prefix]
            ).fetchall()
        return {path: reason.removeprefix(prefix) for path, reason in found}


def build_landing(
    spec: TableSpec,
    staged: StagedWrite,
    lake: Lake,
    landing_store,
    engine=None,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Validate the lines of the table's landing source into typed rows and rejected lines; records of erased
    people are dropped (counted as rejected, reason "erased"). Files an earlier run read, unchanged since,
    are not read again: their lake files are kept (zones/landing/increment.py). `on_rows` hears the typed rows
    written so far by the readers on this process (Spark's and Glue's executors write theirs unheard)."""
    register = ErasureRegister.load(lake)
    reads = _LandingReads(spec, staged, lake, landing_store, engine, register, on_rows)
    listing = landing_files(landing_store, reads.source)
    key = increment.index_key(landing_store.uri(), reads.schemas, sorted(register.identities | register.serials))
    replaced = lake.snapshot(spec.zone, spec.name, staged.base["data"]) if staged.base.get("data") else None
    live = {f for files in replaced.files.values() for f in files} if replaced else set()
    plan = increment.plan(landing_store, listing, replaced.extra if replaced else None, live, key)
    groups = list(plan.kept)
    if plan.read.files or not (groups or plan.unexamined):  # a table always has a data file, maybe empty
        groups.append(reads.group(plan.read, plan.fingerprints))
    if plan.unexamined:  # no fingerprint, so never kept: re-made on each run, apart from the readable files
        # read last (Spark replaces its folder whole); its files come first in the snapshot
        groups.insert(0, reads.group(Listing(unreadable=plan.unexamined), {}, executors=False))
    _drop_empty_files(groups, reads.empty, lake)
    # the snapshot's files are its groups', in their order
    staged.files = {part: [f for g in groups for f in g.lake_files.get(part, [])] for part in reads.schemas}
    stats = increment.total(groups, listing)
    staged.rows = {"data": stats.rows, "rejected": stats.rejected}
    staged.extra = {
        # the validating reader: duckdb (zones/landing/duckdb_reader.py), spark (spark_reader.py), glue
        # (spark_reader.py in a Glue job) or python (reader.py)
        "engine": reads.reader,
        "landing_root": landing_store.uri(),
        "landing_files": stats.files,  # path -> bytes, of the files it opened
        "ignored_files": stats.ignored_files,
        "skipped_files": stats.skipped_files,
        "unreadable_files": stats.unreadable_files,
        "nonblank_lines": stats.lines,  # reconciliation's figure: files are read once, by the reader
        "blank_lines": stats.blank_lines,
        "fast_lines": stats.fast_lines,  # typed set-wise by the DuckDB reader: a drop means a new line layout
        "erased_lines": stats.erased,
        # what this run read and why (paths only): the rest is kept from the replaced snapshot
        "landing_read": {
            "files": sorted(plan.read.files),
            "new": plan.new,
            "changed": plan.changed,
            "vanished": plan.vanished,
            "kept_files": sum(len(g.files) for g in plan.kept),
            "unexamined": sorted(plan.unexamined),  # reported again, as on every run
        },
        **increment.record(groups, key),
    }


# The relation of the current snapshot's rows, in a semi-join's append (no table has this name)
KEPT_ROWS = "kept_rows_of_the_current_snapshot"


def _drop_empty_files(groups: list[increment.Group], empty: set[str], lake: Lake) -> None:
    """Leave out of the snapshot the files this run wrote without a row (a new landing file without an invalid
    line writes an empty quarantine file), where the part keeps another file: the tables built on that part
    then see it unchanged and are reused (zones/incremental.py). A part always keeps one file, maybe empty."""
    for part in {p for g in groups for p in g.lake_files}:
        files = [f for g in groups for f in g.lake_files.get(part, [])]
        dropped = [f for f in files if f in empty]
        if len(dropped) == len(files):  # nothing but empty files: the first stays
            dropped = dropped[1:]
        for g in groups:
            if part in g.lake_files:
                g.lake_files[part] = [f for f in g.lake_files[part] if f not in dropped]
        for f in dropped:
            lake.store.delete_tree(f)


def build_sql(
    spec: TableSpec,
    staged: StagedWrite,
    lake: Lake,
    engine: Engine,
    policy: str,
    inputs: dict[str, Snapshot],
    pseudonym_key,
    on_percent: Callable[[float], None] | None = None,
) -> incremental.Plan:
    """Run the table's SELECT for `policy` over the input snapshots into the staged snapshot, or over just the
    rows an input gained, or not at all, where that gives the same rows (zones/incremental.py); returns how.
    `on_percent` hears DuckDB's estimate of how much of the query is done (other engines give none)."""
    rule = load_rule(spec.name, policy)
    if rule is None:
        raise FileNotFoundError(f"{spec.name} has no SQL rule under the {policy!r} policy")
    subrules = ephemerals(rule, policy)
    files: dict[str, list[str]] = {}  # relation -> its lake-relative files
    for r in [rule, *subrules]:
        for name in r.relations:
            if name.startswith("_"):
                continue
            base = name.removesuffix(PART_SUFFIX)
            files[name] = inputs[base].files["data" if base == name else "rejected"]
    key = pseudonym_key() if any("pseudonym" in r.functions for r in [rule, *subrules]) else None
    built_by = incremental.fingerprint([rule, *subrules], policy, str(staged.schemas["data"]), key and key_id(key))
    current = lake.snapshot(spec.zone, spec.name, staged.base["data"]) if staged.base.get("data") else None
    plan = incremental.plan(lake, rule, subrules, files, current, built_by)
    staged.policy = None if spec.zone == "landing" else policy
    staged.inputs = {name: snap.snapshot for name, snap in inputs.items()}
    staged.extra = {"engine": engine.name, "sql": rule.path.name, "fingerprint": built_by, "build": plan.how}
    if plan.how != incremental.REBUILT or plan.reason != "first build":
        staged.extra["build_reason"] = plan.reason
    if key is not None:  # which key made the pseudonyms: erasure must match them with the same key
        staged.extra["pseudonym_key_id"] = key_id(key)
    staged.files["data"] = list(plan.kept)
    staged.rows = {"data": plan.rows}
    if plan.how == incremental.REUSED or (plan.how == incremental.APPENDED and not plan.added):
        if current is not None and current.engine:  # the engine that made the files it keeps
            staged.extra["engine"] = current.engine
        return plan
    sql = rule.body
    if plan.how == incremental.APPENDED and plan.grown is not None:
        files[plan.grown] = plan.added
        if plan.new_only:  # a semi-join: of the rows the added files give, those the kept files lack
            files[KEPT_ROWS] = plan.kept
            sql = f"SELECT * FROM ({sql}) EXCEPT ALL SELECT * FROM {KEPT_ROWS}"
    folder = staged.part_folder("data")
    lake.make_dirs(folder)
    # only DuckDB can tell a query's progress: Engine.select_into stays as every engine implements it
    progress = {"on_percent": on_percent} if isinstance(engine, DuckDBEngine) and on_percent else {}
    output = engine.select_into(
        sql,
        {name: [lake.uri(f) for f in paths] for name, paths in files.items()},
        lake.uri(folder),
        ephemerals=[(s.name, s.body) for s in subrules],
        pseudonym_key=key,
        setup=lake.store.duckdb_setup(),
        **progress,
    )
    written = staged.add_files("data", output.files)
    staged.rows["data"] += output.rows
    if plan.how == incremental.APPENDED and output.rows == 0:  # no new file: the tables after it stay unchanged
        lake.store.delete_tree(folder)
        staged.files["data"] = list(plan.kept)
        news = "is new" if plan.new_only else "passes the rule"
        plan = dataclasses.replace(plan, reason=f"{plan.reason}, none of whose rows {news}")
        staged.extra["build_reason"] = plan.reason
    elif plan.how == incremental.REBUILT and incremental.same_rows(lake, written, output.rows, current):
        assert current is not None
        lake.store.delete_tree(folder)
        staged.files["data"] = list(current.files["data"])
        staged.extra["engine"] = current.engine or engine.name  # the engine that made the files it keeps
        plan = incremental.Plan(incremental.KEPT, f"{plan.reason}; the same rows as before", staged.files["data"])
        staged.extra["build"], staged.extra["build_reason"] = plan.how, plan.reason
    return plan
