"""What a check sees: one snapshot of a table (staged or published), its inputs, and a DuckDB to ask.

Checks never reuse the SQL that built a table: they read the Parquet files themselves and test the
contract with their own logic (often an independent Python oracle, see register.py), so a wrong rule
cannot also vouch for itself. They always run on DuckDB, whichever engine built the table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from ..contract import TableSpec
from ..engines.duckdb_engine import attach_parquet, connect, define_pseudonym
from ..settings import DEFAULT_MAX_SHRINK
from ..storage.lake import Lake, Snapshot
from ..zones import table as table_spec
from ..zones.sql import PART_SUFFIX


@dataclass(frozen=True)
class Outcome:
    passed: bool
    severity: str = "ERROR"  # "ERROR" or "WARN": how bad a failure is
    metadata: Mapping[str, Any] = field(default_factory=dict)


def passed(**metadata: Any) -> Outcome:
    return Outcome(True, "ERROR", metadata)


def failed(severity: str = "ERROR", /, **metadata: Any) -> Outcome:
    return Outcome(False, severity, metadata)


def needs_pseudonym_key(spec: TableSpec, policy: str) -> bool:
    # Only the strict ML table's consent check needs the key (to recompute pseudonyms independently).
    return policy == "strict" and spec.name == "machine_learning_curated"


@dataclass
class Audit:
    spec: TableSpec
    policy: str
    files: Mapping[str, list[str]]  # the audited snapshot's files by part, lake-relative
    extra: Mapping[str, Any]
    lake: Lake
    inputs: Mapping[str, Snapshot] = field(default_factory=dict)
    pseudonym_key: bytes | None = None
    # The snapshot of any other table this audit reads: the run's pinned one (default: the current one).
    lookup: Callable[[str], Snapshot] | None = None
    max_shrink: float = DEFAULT_MAX_SHRINK
    allow_shrink: bool = False
    # Whether checks may start from the figures recorded on the snapshot this one replaces (CheckDef.recorded):
    # a write's audit may, as the files it kept are immutable; a checks-only audit reads everything, which is
    # how it finds a data file damaged in place.
    from_recorded: bool = False
    # While a check runs in a write's audit: what it reads through this audit (checks/memo.py), by key
    # ("<table>:<part>" -> its files, "extra:<key>" -> the value, "files:<name>" -> files it named itself).
    reads: dict[str, Any] | None = field(default=None, init=False, repr=False)
    # The outcomes this audit's checks may hand on to the next snapshot (checks/memo.py), by check.
    memo: dict[str, dict] = field(default_factory=dict, init=False, repr=False)
    _snapshots: dict[str, Snapshot] = field(default_factory=dict, init=False, repr=False)

    @functools.cached_property
    def baseline(self) -> Snapshot | None:
        """The volume check's yardstick: the published snapshot the audited one replaces (recorded in its
        summary, so a checks-only run judges the same), while retention or an erasure keeps it."""
        snapshot_id = self.extra.get("volume_baseline")
        if snapshot_id is None:
            return None
        try:
            return self.lake.snapshot(self.spec.zone, self.spec.name, snapshot_id)
        except LookupError:  # expired: nothing left to compare with
            return None

    def snapshot_of(self, name: str) -> Snapshot:
        if name in self.inputs:
            return self.inputs[name]
        if name not in self._snapshots:  # the same one for every question of this audit
            if self.lookup is not None:
                self._snapshots[name] = self.lookup(name)
            else:
                spec = table_spec(name)
                self._snapshots[name] = self.lake.current(spec.zone, spec.name)
        return self._snapshots[name]

    def _files(self, name: str, part: str = "data") -> list[str]:
        files = list(self.files[part]) if name == self.spec.name else self.snapshot_of(name).files[part]
        if self.reads is not None:
            self.reads[f"{name}:{part}"] = sorted(files)
        return files

    def extra_value(self, key: str, default: Any = None) -> Any:
        """A value the audited snapshot's builder recorded (its extra), or `default`."""
        value = self.extra.get(key, default)
        if self.reads is not None:
            self.reads[f"extra:{key}"] = value
        return value

    def uris(self, name: str, part: str = "data") -> list[str]:
        return [self.lake.uri(f) for f in self._files(name, part)]

    def rows(self, name: str, part: str = "data") -> int:
        """Row count read from the Parquet footers, not from any manifest."""
        return self.scalar(f"SELECT count(*) FROM {self._relation(name, part)}", (self._relation(name, part),))

    def schema(self, part: str = "data") -> list[list[tuple[str, str]]]:
        """(column, DuckDB type) of each data file of the audited snapshot, in file order."""
        return [
            [(row[0], row[1]) for row in self._query_uris(f"DESCRIBE SELECT * FROM read_parquet(['{u}'])")]
            for u in self.uris(self.spec.name, part)
        ]

    @staticmethod
    def _relation(name: str, part: str) -> str:
        return name if part == "data" else f"{name}{PART_SUFFIX}"

    def _connection(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A session of the process's DuckDB for this lake (engines/duckdb_engine.connect): an audit asks dozens
        of questions, and each gets a clean catalog without paying for a database (or, on S3, for httpfs)."""
        return connect(self.lake.store.duckdb_setup())

    def _query_uris(self, sql: str) -> list[tuple]:
        with self._connection() as con:
            return con.execute(sql).fetchall()

    def query(
        self,
        sql: str,
        tables: tuple[str, ...] = (),
        keyed_hash: bytes | None = None,
        files: Mapping[str, list[str]] | None = None,
        parameters: Sequence[Any] = (),
        **arrow: pa.Table,
    ) -> list[tuple]:
        """Run `sql` (with `parameters` for its `?`) over the named lake tables (`<t>_rejected` for a rejected
        part), relations over other lake-relative data `files` (name -> files) and Arrow tables; with
        `keyed_hash`, SQL can call pseudonym(x) = hex HMAC-SHA256 of x under that key."""
        relations = {name: [self.lake.uri(f) for f in paths] for name, paths in (files or {}).items()}
        if self.reads is not None:
            self.reads.update({f"files:{name}": sorted(paths) for name, paths in (files or {}).items()})
        for name in tables:
            base = name.removesuffix(PART_SUFFIX)
            relations[name] = self.uris(base, "rejected" if base != name else "data")
        with self._connection() as con:  # the session's views, key and Arrow tables go with it
            attach_parquet(con, relations)
            if keyed_hash is not None:
                define_pseudonym(con, keyed_hash)
            for name, value in arrow.items():
                con.register(name, value)
            return con.execute(sql, list(parameters)).fetchall()

    def scalar(
        self,
        sql: str,
        tables: tuple[str, ...] = (),
        keyed_hash: bytes | None = None,
        files: Mapping[str, list[str]] | None = None,
        **arrow: pa.Table,
    ) -> Any:
        return self.query(sql, tables, keyed_hash, files, **arrow)[0][0]

    @property
    def register(self):
        """The consent register of the customer_landing snapshot this audit reads (made once per snapshot)."""
        from .register import ConsentRegister

        uris = tuple(self.uris("customer_landing"))
        cached = _REGISTERS.get(uris)
        if cached is None:
            setup = self.lake.store.duckdb_setup()

            def records(fields: tuple[str, ...]) -> pa.Table:  # read when a part of the register is made
                with connect(setup) as con:
                    attach_parquet(con, {"customer_landing": list(uris)})
                    return con.execute(f"SELECT {', '.join(fields)} FROM customer_landing").to_arrow_table()

            cached = ConsentRegister(records)
            _REGISTERS.clear()  # one customer_landing at a time: a run's audits all read the same one
            _REGISTERS[uris] = cached
        return cached


# The consent register of the last customer_landing files read, by their URIs. A run audits up to five
# tables against the same customer_landing; its data files are immutable (an Iceberg data file is never
# rewritten in place, a change is a new file), so the same URIs always mean the same register.
_REGISTERS: dict[tuple[str, ...], Any] = {}
