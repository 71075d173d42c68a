"""The embedded default engine: an in-memory DuckDB per step, reading and writing Parquet in the lake.

Tables never live inside a DuckDB file, so there is no single-writer lock to fight over: every step
opens its own in-memory database, attaches the input snapshots as views and streams the SELECT's
result into the output Parquet file (out-of-core when it does not fit in memory).

The pipeline's smaller questions (checks, previews, erasures, reports) share one in-memory database per
process and lake access (`connect`), each in a session with a catalog of its own: opening a database
costs 8 ms, and on S3 loading httpfs into it a quarter of a second, where a session costs 0.3 ms.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

import duckdb
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from pydantic import Field

from .. import settings
from ..identity import IDENTITY_KEY_SQL
from ..step_progress import polling
from .base import Engine, EngineOutput

OUTPUT_FILE = "part-00000.parquet"


def quote_identifier(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def define_identity_key(con: duckdb.DuckDBPyConnection) -> None:
    """`identity_key(x)`, the contract's identity key (identity.IDENTITY_KEY_SQL), on this connection.

    A TEMP macro belongs to one connection (a cursor() is another), so each connection that runs the
    project's SQL defines it.
    """
    con.execute(f"CREATE OR REPLACE TEMP MACRO identity_key(x) AS {IDENTITY_KEY_SQL}")


def bound_memory(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
    """Hold this database to `memory_limit` (default STEDI_DUCKDB_MEMORY_LIMIT), spilling beyond it into a
    private folder of the system's temporary directory. DuckDB's own default lets each database take 80 % of
    the machine, and a run opens several; an in-memory database would otherwise spill into `./.tmp`."""
    limit = memory_limit or settings.duckdb_memory_limit()
    con.execute(f"SET memory_limit = {sql_literal(limit)}")
    con.execute(f"SET temp_directory = {sql_literal(_spill_folder())}")


def _spill_folder() -> str:
    # One folder per database: two databases spilling into one folder could overwrite each other's files.
    # The folder is named, not made: DuckDB creates it when it first spills and removes it (files and all)
    # when the database closes, so a long-lived process does not collect empty folders. The root goes when
    # the process exits.
    global _SPILL_ROOT
    if _SPILL_ROOT is None:
        _SPILL_ROOT = tempfile.mkdtemp(prefix="stedi-duckdb-spill-")
        atexit.register(shutil.rmtree, _SPILL_ROOT, True)
    return os.path.join(_SPILL_ROOT, uuid.uuid4().hex)


_SPILL_ROOT: str | None = None


def open_database(setup: Sequence[str] = ()) -> duckdb.DuckDBPyConnection:
    """A new private in-memory DuckDB that can read the lake (`setup` comes from the lake's store), holds to
    the memory bound, and knows identity_key(x)."""
    con = duckdb.connect()
    try:
        for statement in setup:
            con.execute(statement)
        bound_memory(con)
        define_identity_key(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def private(setup: Sequence[str] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private in-memory DuckDB for the duration of a block: for a user that changes the database's own
    settings (the query sandbox locks them; the landing reader sets its threads)."""
    con = open_database(setup)
    try:
        yield con
    finally:
        con.close()


# The databases `connect` shares: one per process (a forked child must not use its parent's), lake access and
# memory bound (a changed setting gets a new database). Few: a process reaches one lake, or a few in tests.
_SHARED: dict[tuple, duckdb.DuckDBPyConnection] = {}
_SHARED_KEEP = 4
_SHARED_LOCK = threading.Lock()


def _shared_database(setup: Sequence[str]) -> duckdb.DuckDBPyConnection:
    key = (os.getpid(), tuple(setup), settings.duckdb_memory_limit())
    with _SHARED_LOCK:
        database = _SHARED.get(key)
        if database is None:
            database = _SHARED[key] = open_database(setup)
            while len(_SHARED) > _SHARED_KEEP:  # not closed: a session may still use it; it goes with its last
                _SHARED.pop(next(iter(_SHARED)))
        return database


@contextmanager
def connect(setup: Sequence[str] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """A session of the process's in-memory DuckDB for `setup` (the lake's access), for the duration of a block.

    The session's views, schemas and macros are its own and go with it: its default catalog is an in-memory
    database attached for it alone (another session, even at the same time on another thread, sees none of
    them). It must not change the database's settings (SET) nor register a Python function (create_function
    registers it database-wide): `private` is for those.
    """
    con = _shared_database(setup).cursor()
    catalog = f"session_{uuid.uuid4().hex}"
    try:
        con.execute(f"ATTACH ':memory:' AS {catalog}")
        con.execute(f"USE {catalog}")
        define_identity_key(con)
        yield con
    finally:
        try:
            con.execute("USE memory")
            con.execute(f"DETACH DATABASE IF EXISTS {catalog}")
        finally:
            con.close()


def attach_parquet(con: duckdb.DuckDBPyConnection, relations: Mapping[str, Sequence[str]]) -> None:
    """Create a view per relation over its Parquet files; `zone.table` names get a schema."""
    for name, uris in relations.items():
        if "." in name:
            schema, _ = name.split(".", 1)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            target = ".".join(quote_identifier(p) for p in name.split(".", 1))
        else:
            target = quote_identifier(name)
        files = ", ".join(sql_literal(u) for u in uris)
        con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM read_parquet([{files}])")


def define_pseudonym(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """`pseudonym(identity_key)` = hex HMAC-SHA256 under `key`, in plain SQL (RFC 2104).

    The key material is bound into a macro of this private connection and never appears in a log.
    """
    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block).hex()
    outer = bytes(b ^ 0x5C for b in block).hex()
    con.execute(
        "CREATE OR REPLACE TEMP MACRO pseudonym(k) AS "
        f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(k))))"
    )


@contextmanager
def watching_progress(con: duckdb.DuckDBPyConnection, on_percent: Callable[[float], None] | None) -> Iterator[None]:
    """While the block runs, tell `on_percent` the percentage of the connection's query that DuckDB estimates
    done (query_progress reads atomics: it may be called from another thread while execute() runs)."""
    if on_percent is not None:
        # DuckDB estimates progress only for its progress bar, which must not print (to stdout): first that, then on
        con.execute("SET enable_progress_bar_print = false")
        con.execute("SET enable_progress_bar = true")
    with polling(con.query_progress, on_percent, "duckdb-progress"):  # -1 while DuckDB has no estimate
        yield


class DuckDBEngine(DuckDBResource, Engine):
    """Runs a table's SELECT on DuckDB (in memory unless `database` is set) into the lake."""

    database: str = Field(default=":memory:", description="DuckDB database; in memory by default.")
    memory_limit: str | None = Field(
        default=None, description="e.g. '4GB'; DuckDB spills beyond it. Default $STEDI_DUCKDB_MEMORY_LIMIT (1GB)."
    )
    threads: int | None = Field(default=None, description="Worker threads; all cores by default.")
    landing_reader: Literal["duckdb", "python"] = Field(
        default="duckdb",
        description="Landing reader: duckdb (set-based, default) or python (the reference, line by line); "
        "default $STEDI_LANDING_READER.",
    )

    @property
    def name(self) -> str:
        return "duckdb"

    @contextmanager
    def session(self, setup: Sequence[str] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.get_connection() as con:
            for statement in setup:  # lake access (may hold credentials: never logged)
                con.execute(statement)
            bound_memory(con, self.memory_limit)
            if self.threads:
                con.execute(f"SET threads = {int(self.threads)}")
            define_identity_key(con)
            yield con

    def select_into(
        self,
        sql: str,
        relations: Mapping[str, Sequence[str]],
        output_dir: str,
        *,
        ephemerals: Sequence[tuple[str, str]] = (),
        pseudonym_key: bytes | None = None,
        setup: Sequence[str] = (),
        on_percent: Callable[[float], None] | None = None,
    ) -> EngineOutput:
        """Engine.select_into as one Parquet file; `setup` lets the connection reach the lake (the stores'
        duckdb_setup); `on_percent` hears DuckDB's estimate of the query's progress while it runs."""
        with self.session(setup) as con:
            attach_parquet(con, relations)
            if pseudonym_key is not None:
                define_pseudonym(con, pseudonym_key)
            for name, body in ephemerals:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_identifier(name)} AS {body}")
            target = f"{output_dir.rstrip('/')}/{OUTPUT_FILE}"
            with watching_progress(con, on_percent):
                row = con.execute(f"COPY ({sql}) TO {sql_literal(target)} (FORMAT parquet)").fetchone()
            if row is None:
                raise RuntimeError(f"COPY to {target} returned no row count")
            return EngineOutput(rows=int(row[0]), files=[OUTPUT_FILE])

    def query(self, sql: str, relations: Mapping[str, Sequence[str]], setup: Sequence[str] = ()) -> pa.Table:
        with self.session(setup) as con:
            attach_parquet(con, relations)
            return con.execute(sql).to_arrow_table()
