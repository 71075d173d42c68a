"""Right to erasure on the Iceberg lake: remove people from the landing files and every table, expire
every snapshot that still holds them, delete the files only those snapshots used, and remember them
(as keyed hashes only) so that data re-delivered for them is dropped at landing.

A person is named by e-mail; their identity key is lower(trim(email)) and their device serials are
those of their customer records. Their step readings go with them: every reading of their serials.

The erasure is recorded in the register as pending before anything is deleted, with all it needs to
finish without the e-mail (hashes, pseudonyms). Every step is idempotent and decided from the lake
itself, so a killed `stedi forget` is finished by the next `forget` or `run`:
1. landing files: rewritten without their lines (atomic replace; gzip and BOM kept);
2. each table, upstream first: the current snapshot's data files that hold a row of theirs are rewritten
   without those rows and ONE Iceberg overwrite per table part replaces exactly those files. Its summary
   names the snapshot it replaces (`stedi.erasure-replaces`), carries the inputs and side parts remapped
   to their erased snapshots, so the erased lake is consistent; the run tags of the replaced snapshot
   move to the new one (the latest run's lake, minus the person, stays readable);
3. every other snapshot of the table that still holds them (or was built with a pseudonym key they
   cannot be matched under) is expired with its tags, and the files only those snapshots used are
   deleted: no rollback or `--as-of` can bring them back.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import signal
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

from ..engines.duckdb_engine import connect, private
from ..identity import identity_key, pseudonym
from ..storage.lake import (
    ENGINE,
    EXTRA,
    INPUTS,
    PARTS,
    POLICY,
    RUN_ID,
    STAGE_PREFIX,
    CommitConflict,
    Lake,
    live_data_files,
    part_table,
    replace_files,
)
from ..storage.maintenance import expire
from ..storage.stores import StoreError
from ..zones import TABLES
from ..zones import table as table_spec
from ..zones.incremental import ERASED
from ..zones.landing.reader import BOM, landing_files, open_landing_file, parse_line, physical_lines
from ..zones.landing.schema import SOURCE_OF
from .keys import key_id, pseudonym_key
from .register import Erasure, ErasureRegister, Subjects

REPLACES = "stedi.erasure-replaces"  # snapshot summary: the snapshots an erasure commit stands for
ERASED_RUN = "stedi.erased-run"  # and the run that built the snapshot it replaced
RUN_PREFIX = "erasure-"
# Test hook: SIGKILL this process after N tables were committed (0: right after the landing files).
STOP_AFTER = "STEDI_TEST_FORGET_STOP_AFTER"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class ErasureBlocked(RuntimeError):
    """The erasure cannot finish now (the message says what to do first); it stays pending."""


class ErasureInterrupted(RuntimeError):
    """Storage failed part-way (a full disk, a store that refuses writes); the message says, in one line,
    whether the erasure was recorded (then it stays pending and the next `forget` or `run` finishes it)."""


# What a full disk or a failing store raises: OS and pyarrow I/O, DuckDB's own I/O errors (not OSErrors),
# and the lake's one-line store and catalog failures.
STORAGE_ERRORS = (OSError, duckdb.IOException, StoreError)


def _why(err: Exception) -> str:
    # the first line only: I/O errors name a file and the OS's reason, never a row
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def is_email(text: str) -> bool:
    return bool(EMAIL.fullmatch(text.strip(" ")))


@dataclass
class ForgetReport:
    people: int = 0
    serials: int = 0
    landing_lines_removed: int = 0
    landing_files_rewritten: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)  # "zone.table[/part]" -> rows (current)
    snapshots_expired: dict[str, int] = field(default_factory=dict)  # "zone.table[/part]" -> snapshots
    snapshots_dropped: list[str] = field(default_factory=list)  # built with another pseudonym key
    files_deleted: int = 0


@dataclass
class Survey:
    """What an erasure would remove (counts only): `--dry-run`."""

    people: int
    serials: int
    landing_lines: dict[str, int]  # landing file -> lines
    rows: dict[str, int]  # "zone.table[/part]" -> rows of the current snapshot
    older_snapshots: dict[str, int]  # "zone.table[/part]" -> other snapshots holding them
    pending: int  # erasures already pending (finished first by a real run)


# -- entry points ------------------------------------------------------------------------------------


def forget(lake: Lake, landing_store, emails: list[str], dry_run: bool = False) -> ForgetReport | Survey:
    """Erase the people with these e-mails (pending erasures are finished first); or, with `dry_run`,
    only count what would be erased."""
    if not emails or not all(is_email(e) for e in emails):
        raise ValueError("name each person by e-mail address (user@domain)")
    keys = {identity_key(e) for e in emails}
    if not dry_run:
        finish_pending(lake, landing_store)
    try:
        pseudonyms = _pseudonyms(lake, keys)
        serials = _serials_of(lake, landing_store, keys)
        register = ErasureRegister.load(lake, for_update=not dry_run)
        if dry_run:
            # a throwaway key when none exists yet: the dry run must not create one
            probe = ErasureRegister(key=register.key or secrets.token_bytes(32))
            erasure = probe.record(keys, serials, pseudonyms)
            return _Eraser(lake, landing_store, probe, erasure).survey(len(register.pending()))
        erasure = register.record(keys, serials, pseudonyms)
        register.save(lake, erasure)  # first: from now on their data is dropped at landing, whatever follows
    except STORAGE_ERRORS as err:
        raise ErasureInterrupted(
            f"the erasure could not start ({_why(err)}): nothing was erased; free space (or repair the "
            "store), then run the same `stedi forget` again"
        ) from None
    return _Eraser(lake, landing_store, register, erasure).run()


def finish_pending(lake: Lake, landing_store) -> list[ForgetReport]:
    """Finish every erasure the register holds as pending (a `forget` that was killed or failed)."""
    register = ErasureRegister.load(lake)
    return [_Eraser(lake, landing_store, register, erasure).run() for erasure in register.pending()]


def finish_pending_erasures(lake: Lake, landing_uri: str) -> None:
    """For `stedi run`: finish pending erasures before anything else. One that cannot finish yet is
    reported in one line and the run goes on: landing drops the people of a pending erasure already,
    and the next `forget` or `run` finishes it."""
    import sys

    from ..storage.stores import open_store

    if not ErasureRegister.load(lake).pending():
        return
    try:
        reports = finish_pending(lake, open_store(landing_uri))
    except (ErasureBlocked, ErasureInterrupted) as err:
        print(f"stedi: warning: a pending erasure cannot finish yet: {err}", file=sys.stderr)
        return
    print(f"finished {len(reports)} pending erasure(s) first")


# -- finding the people ------------------------------------------------------------------------------


def _pseudonyms(lake: Lake, keys: set[str]) -> dict[str, list[str]]:
    """{pseudonym key id: their customer_id values} under the current key, if any table holds pseudonyms.

    A current snapshot built with another key cannot be matched: the pipeline must rebuild it first."""
    built_with = {spec.name: _key_ids(lake, spec) for spec in TABLES}
    if not any(ids for ids, _ in built_with.values()):
        return {}
    key = pseudonym_key(lake)
    current_id = key_id(key)
    for name, (_, current) in built_with.items():
        if current and current != current_id:
            raise ErasureBlocked(
                f"{table_spec(name).qualified_name} was built with another pseudonym key: "
                "re-run the pipeline, then forget again"
            )
    return {current_id: sorted(pseudonym(key, k) for k in keys)}


def _key_ids(lake: Lake, spec) -> tuple[set[str], str | None]:
    """(pseudonym key ids of every kept snapshot, that of the current one) of a table."""
    try:
        tbl = lake.iceberg(spec.zone, spec.name)
    except LookupError:
        return set(), None
    ids = {s.snapshot_id: _extra(s).get("pseudonym_key_id") for s in tbl.snapshots()}
    current = tbl.current_snapshot()
    return {i for i in ids.values() if i}, ids.get(current.snapshot_id) if current else None


def _serials_of(lake: Lake, landing_store, keys: set[str]) -> set[str]:
    """Serials of their customer records: in the landing files and in every kept customer_landing snapshot."""
    import pyarrow as pa

    found = set()
    for path in landing_files(landing_store, "customer").files:
        for _, _, content in _file_lines(landing_store, path):
            values, _ = parse_line("customer", content) if content.strip() else (None, None)
            if values is not None and identity_key(values[1]) in keys:
                found.add(values[4])
    try:
        tbl = lake.iceberg("landing", "customer_landing")
    except LookupError:
        return found
    uris = sorted(
        {lake.uri(lake.relative(f.file_path)) for s in tbl.snapshots() for f in live_data_files(tbl, s.snapshot_id)}
    )
    if uris:
        with connect(lake.store.duckdb_setup()) as con:
            con.register("wanted", pa.table({"k": sorted(keys)}))
            found |= {
                s
                for (s,) in con.execute(
                    "SELECT DISTINCT serialNumber FROM read_parquet($files) "
                    "WHERE identity_key(email) IN (SELECT k FROM wanted)",
                    {"files": uris},
                ).fetchall()
            }
    return found


# -- landing files -----------------------------------------------------------------------------------


def _file_lines(store, path: str):
    """(raw line with its terminator, line number, content) with the landing reader's own splitter:
    `physical_lines` over the same stream, so a CR-only line is one line here as it is there."""
    last: list[bytes] = []

    def raw_lines(stream):
        for raw in stream:
            last[:] = [raw]
            yield raw

    try:
        with open_landing_file(store, path) as stream:
            for number, content in physical_lines(raw_lines(stream)):
                yield last[0], number, content
    except (OSError, EOFError, zlib.error) as err:  # a file that cannot be read cannot be searched for them
        raise ErasureBlocked(
            f"landing file {path} cannot be read ({type(err).__name__}): repair or remove "
            "it, then run `stedi forget` again"
        ) from None


def _is_theirs(subjects: Subjects, source: str, content: bytes) -> bool:
    """A landing line is theirs if it is a valid record of theirs, or an invalid line naming them."""
    if not content.strip():
        return False
    values, _ = parse_line(source, content)
    if values is not None:
        return subjects.owns_record(source, values)
    # the reader quarantines exactly this text as `raw`: one decision for the file and the table
    return subjects.named_in_raw(content.decode("utf-8", "backslashreplace"))


def _without_their_lines(store, path: str, source: str, subjects: Subjects) -> tuple[bytes, int]:
    """(the file's bytes without their lines, lines removed); a removed first line hands its BOM on."""
    kept: list[bytes] = []
    removed, bom = 0, False
    for raw, number, content in _file_lines(store, path):
        if _is_theirs(subjects, source, content):
            removed += 1
            bom = bom or (number == 1 and raw.startswith(BOM))
        else:
            kept.append(BOM + raw if bom and not kept and not raw.startswith(BOM) else raw)
    return b"".join(kept), removed


# -- the erasure -------------------------------------------------------------------------------------


def _as_erased(extra_json: str) -> str:
    """The extra of an erasure's snapshot: a derived table's rows, once a person's are taken out (or its inputs
    erased), are not the rule's result over the erased inputs, so the next run builds it again
    (zones/incremental.py); figures recorded by checks are of rows no longer all there."""
    extra = json.loads(extra_json)
    if "fingerprint" in extra:
        del extra["fingerprint"]
        extra["build"] = ERASED
    extra.pop("checked", None)
    return json.dumps(extra, sort_keys=True)


def _summary(snapshot) -> dict[str, str]:
    return dict(snapshot.summary.additional_properties) if snapshot is not None and snapshot.summary else {}


def _extra(snapshot) -> dict:
    return json.loads(_summary(snapshot).get(EXTRA, "{}"))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _replaced(snapshot) -> list[str]:
    return json.loads(_summary(snapshot).get(REPLACES, "[]"))


class _Eraser:
    """One erasure, from its register entry: landing files, then every table, then done."""

    def __init__(self, lake: Lake, landing_store, register: ErasureRegister, erasure: Erasure) -> None:
        self.lake, self.landing, self.register, self.erasure = lake, landing_store, register, erasure
        self.subjects = erasure.subjects(register.key)
        self.report = ForgetReport(people=len(erasure.identities), serials=len(erasure.serials))
        self._counts: dict[tuple[str, str | None], int] = {}
        self._committed = 0
        self.con: duckdb.DuckDBPyConnection | None = None  # open only inside _matching()

    # -- matching rows in data files, through one DuckDB connection
    @contextmanager
    def _matching(self) -> Iterator[None]:
        """A DuckDB connection that can compare the lake's rows with their hashes (see Subjects.bind). A private
        database: Subjects.bind registers a Python function, which DuckDB keeps database-wide."""
        with private(self.lake.store.duckdb_setup()) as con:
            self.subjects.bind(con)
            self.con = con
            try:
                yield
            finally:
                self.con = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise RuntimeError("the eraser reads data files only inside _matching()")
        return self.con

    def _predicate(self, uri: str, key: str | None) -> str | None:
        columns = [
            row[0]
            for row in self._connection().execute("DESCRIBE SELECT * FROM read_parquet($f)", {"f": uri}).fetchall()
        ]
        return self.subjects.predicate(columns, key)

    def count(self, rel: str, key: str | None) -> int:
        """Rows of theirs in one data file (a file never changes: counted once)."""
        if (rel, key) not in self._counts:
            uri = self.lake.uri(rel)
            predicate = self._predicate(uri, key)
            rows = 0
            if predicate is not None:
                row = (
                    self._connection()
                    .execute(f"SELECT count(*) FROM read_parquet($f) WHERE {predicate}", {"f": uri})
                    .fetchone()
                )
                if row is None:
                    raise RuntimeError(f"counting the rows of {rel} returned no result")
                rows = row[0]
            self._counts[(rel, key)] = rows
        return self._counts[(rel, key)]

    def _rewrite(self, rel: str, folder: str, key: str | None) -> str:
        """A copy of a data file without their rows, in `folder`; an empty file if nothing is left, so a
        snapshot never loses its schema."""
        uri = self.lake.uri(rel)
        target = f"{folder}/{uuid.uuid4().hex}.parquet"
        with self.lake.local_output(target) as out:
            self._connection().execute(
                f"COPY (SELECT * FROM read_parquet({_sql_string(uri)}) "
                f"WHERE NOT {self._predicate(uri, key)}) TO {_sql_string(out)} (FORMAT parquet)"
            )
        return target

    def holds(self, tbl, snapshot_id: int, key: str | None) -> bool:
        return any(self.count(self.lake.relative(f.file_path), key) for f in live_data_files(tbl, snapshot_id))

    # -- the steps
    def run(self) -> ForgetReport:
        try:
            with self._matching():
                self._clean_landing()
                self._stop_point(0)
                for spec in self._graph_order():
                    self._erase_table(spec)
            self.register.finish(self.erasure.id)
            self.register.save(self.lake, self.erasure)
        except STORAGE_ERRORS as err:  # every step is idempotent: the next command starts it again
            raise ErasureInterrupted(
                f"the erasure stopped ({_why(err)}); it stays pending: free space (or repair the store), "
                "then `stedi forget` or `stedi run` finishes it"
            ) from None
        return self.report

    def _stop_point(self, committed: int) -> None:
        wanted = os.environ.get(STOP_AFTER)
        if wanted is not None and wanted.strip() == str(committed):
            os.kill(os.getpid(), signal.SIGKILL)  # a kill at a point tests can name

    def _clean_landing(self) -> None:
        sizes = self.erasure.landing_sizes.setdefault(self.landing.uri(), {})
        for source in SOURCE_OF.values():
            for path in landing_files(self.landing, source).files:
                data, removed = _without_their_lines(self.landing, path, source, self.subjects)
                if not removed:
                    continue
                if path.endswith(".gz"):
                    data = gzip.compress(data, mtime=0)  # deterministic: a resumed rewrite has this size too
                sizes[path] = len(data)
                self.register.save(self.lake, self.erasure)  # the new size first: the landing snapshots get it
                self.landing.write_atomic(path, data)
                self.report.landing_lines_removed += removed
                self.report.landing_files_rewritten += 1

    def _graph_order(self) -> list:
        """Tables with a current snapshot, each after the tables its current snapshot was built from (so a
        table's inputs are already erased when its own snapshot is made to name them)."""
        present = [t for t in TABLES if self.lake.has_current(t.zone, t.name)]
        inputs = {t.name: set(self._parts_and_inputs(t)[1]) & {p.name for p in present} for t in present}
        ordered: list = []
        while len(ordered) < len(present):
            done = {t.name for t in ordered}
            ready = [t for t in present if t.name not in done and inputs[t.name] <= done]
            ordered.extend(ready or [t for t in present if t.name not in done])  # no cycle exists; never hang
        return ordered

    def _parts_and_inputs(self, spec) -> tuple[dict[str, str], dict[str, str]]:
        """(side part -> snapshot id, input table -> snapshot id) that a table's current snapshot names."""
        summary = _summary(self.lake.iceberg(spec.zone, spec.name).current_snapshot())
        return json.loads(summary.get(PARTS, "{}")), json.loads(summary.get(INPUTS, "{}"))

    def _erase_table(self, spec) -> None:
        """Erase one table: its side parts' current snapshots, then its own (one overwrite each, when
        anything changes), then move the run tags and expire every other snapshot that still holds them."""
        zone, name = spec.zone, spec.name
        main = self.lake.iceberg(zone, name)
        key = _extra(main.current_snapshot()).get("pseudonym_key_id")
        if not self.subjects.matchable(key) and not self._built_from_clean_inputs(main.current_snapshot()):
            raise ErasureBlocked(
                f"{spec.qualified_name} was built with another pseudonym key: re-run the pipeline, then forget again"
            )
        parts, _ = self._parts_and_inputs(spec)
        theirs = self._rows_of_theirs(zone, name, key, parts)  # before any part is cleaned
        side_ids = {part: self._clean_part(zone, name, part, part_id) for part, part_id in parts.items()}
        changed = any(side_ids[p] != parts[p] for p in parts)
        changed = (
            self._clean_current(zone, name, key, lambda summary: self._main_fields(summary, side_ids, theirs))
            or changed
        )
        if changed:
            self._committed += 1
            self._stop_point(self._committed)
        for part in [None, *parts]:
            self._move_tags(zone, name if part is None else part_table(name, part))
        self._expire_holding(spec, parts)

    def _built_from_clean_inputs(self, snapshot) -> bool:
        """Whether a snapshot whose pseudonyms cannot be matched was built only from kept input snapshots
        without a row of theirs (a run after the key changed, over landing that already drops them): its
        rows come from those, so it holds none of theirs either."""
        inputs = json.loads(_summary(snapshot).get(INPUTS, "{}"))
        for name, snapshot_id in inputs.items():
            spec = table_spec(name)
            tbl = self.lake.iceberg(spec.zone, name)
            built = tbl.snapshot_by_id(int(snapshot_id))
            key = _extra(built).get("pseudonym_key_id")
            if built is None or not self.subjects.matchable(key) or self.holds(tbl, built.snapshot_id, key):
                return False
        return bool(inputs)

    def _clean_part(self, zone: str, name: str, part: str, named: str) -> str:
        """Erase from a side part's current snapshot; the id the main snapshot must now name."""
        side_name = part_table(name, part)
        current = self.lake.iceberg(zone, side_name).current_snapshot()
        if str(current.snapshot_id) != named and named not in _replaced(current):
            raise ErasureBlocked(
                f"{zone}.{name} and {zone}.{side_name} disagree (a write was interrupted): "
                "re-run the pipeline, then forget again"
            )
        self._clean_current(zone, side_name, None)
        return str(self.lake.iceberg(zone, side_name).current_snapshot().snapshot_id)

    def _rows_of_theirs(self, zone: str, name: str, key: str | None, parts: dict[str, str]) -> int:
        """Rows of theirs in the table's current snapshot and in the side-part snapshots it names."""
        main = self.lake.iceberg(zone, name)
        files = [(f, key) for f in live_data_files(main, main.current_snapshot().snapshot_id)]
        for part, part_id in parts.items():  # side parts are cleaned with key None (see _clean_part)
            files += [(f, None) for f in live_data_files(self.lake.iceberg(zone, part_table(name, part)), int(part_id))]
        return sum(self.count(self.lake.relative(f.file_path), k) for f, k in files)

    def _main_fields(self, summary: dict[str, str], side_ids: dict[str, str], theirs: int) -> dict[str, str]:
        """The main snapshot's inputs, extra and parts, pointing at the erased snapshots; a landing
        snapshot's reader counts lose the `theirs` lines its rows no longer hold (reconciliation)."""
        inputs = {n: self._erased_id(n, s) for n, s in json.loads(summary.get(INPUTS, "{}")).items()}
        extra = json.loads(summary.get(EXTRA, "{}"))
        rewritten = self.erasure.landing_sizes.get(extra.get("landing_root", ""), {})
        if "landing_files" in extra:
            extra["landing_files"] = {p: rewritten.get(p, size) for p, size in extra["landing_files"].items()}
        if "nonblank_lines" in extra:
            extra["nonblank_lines"] -= theirs
        return {
            INPUTS: json.dumps(inputs, sort_keys=True),
            EXTRA: json.dumps(extra, sort_keys=True),
            PARTS: json.dumps(side_ids, sort_keys=True),
        }

    def _erased_id(self, name: str, snapshot_id: str) -> str:
        """The snapshot of input `name` that replaces `snapshot_id` after erasure (itself if none does)."""
        spec = table_spec(name)
        current = self.lake.iceberg(spec.zone, name).current_snapshot()
        return str(current.snapshot_id) if current is not None and snapshot_id in _replaced(current) else snapshot_id

    def _clean_current(self, zone: str, name: str, key: str | None, fields=None) -> bool:
        """Replace the current snapshot's files that hold their rows by copies without them, in one
        overwrite commit (also made when only the summary `fields` change). True if it committed."""
        tbl = self.lake.iceberg(zone, name)
        current = tbl.current_snapshot()
        summary = _summary(current)
        doomed = [
            f for f in live_data_files(tbl, current.snapshot_id) if self.count(self.lake.relative(f.file_path), key)
        ]
        updated = fields(summary) if fields else {}
        if not doomed and all(summary.get(k, "") == v for k, v in updated.items()):
            return False
        if EXTRA in updated:
            updated[EXTRA] = _as_erased(updated[EXTRA])
        erased = sum(self.count(self.lake.relative(f.file_path), key) for f in doomed)
        folder = f"{zone}/{name}/data/{STAGE_PREFIX}{RUN_PREFIX}{self.erasure.id}-{uuid.uuid4().hex[:8]}"
        added = [self._rewrite(self.lake.relative(f.file_path), folder, key) for f in doomed]
        properties = {
            RUN_ID: f"{RUN_PREFIX}{self.erasure.id}",
            POLICY: summary.get(POLICY, ""),
            ENGINE: summary.get(ENGINE, ""),
            **updated,
            REPLACES: json.dumps([str(current.snapshot_id), *_replaced(current)][:50]),
            ERASED_RUN: summary.get(ERASED_RUN) or summary.get(RUN_ID, ""),
        }
        self._commit(tbl, zone, name, doomed, added, properties)
        if erased:
            label = self._label(zone, name)
            self.report.rows_removed[label] = self.report.rows_removed.get(label, 0) + erased
        return True

    def _commit(self, tbl, zone: str, name: str, doomed: list, added: list[str], properties: dict) -> None:
        """One Iceberg overwrite replacing exactly `doomed` by `added`; the catalog refuses it (CAS) if
        anyone committed the table since it was loaded."""
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.io.pyarrow import parquet_files_to_data_files

        try:
            with tbl.transaction() as tx:
                with replace_files(tx, properties) as overwrite:
                    for data_file in doomed:
                        overwrite.delete_data_file(data_file)
                    for data_file in parquet_files_to_data_files(
                        tbl.io, tx.table_metadata, iter(self.lake.uri(f) for f in added)
                    ):
                        overwrite.append_data_file(data_file)
        except CommitFailedException:
            other = _summary(self.lake.iceberg(zone, name).current_snapshot()).get(RUN_ID, "?")
            raise CommitConflict(
                f"{zone}.{name} was committed by run {other} during the erasure; the erasure "
                "stays pending: run `stedi forget` again"
            ) from None

    def _move_tags(self, zone: str, name: str) -> None:
        """Tags of the snapshots an erasure commit replaced now name it: the run's lake minus the person."""
        from pyiceberg.table.refs import SnapshotRefType

        tbl = self.lake.iceberg(zone, name)
        current = tbl.current_snapshot()
        replaced = set(_replaced(current))
        stale = [
            n
            for n, ref in tbl.refs().items()
            if ref.snapshot_ref_type == SnapshotRefType.TAG and str(ref.snapshot_id) in replaced
        ]
        if stale:
            with tbl.manage_snapshots() as manage:
                for tag in stale:
                    manage.remove_tag(tag)
                    manage.create_tag(current.snapshot_id, tag)

    def _expire_holding(self, spec, parts: dict) -> None:
        """Expire every non-current snapshot that holds them (side parts' too), with its tags and the files
        only it used. A main snapshot goes with a side part that goes; one built with a pseudonym key they
        cannot be matched under goes too."""
        zone, name = spec.zone, spec.name
        side_doomed = {}
        for part in parts:
            side = self.lake.iceberg(zone, part_table(name, part))
            current = side.current_snapshot().snapshot_id
            replaced = set(_replaced(side.current_snapshot()))
            side_doomed[part] = {
                s.snapshot_id
                for s in side.snapshots()
                if s.snapshot_id != current
                and (str(s.snapshot_id) in replaced or self.holds(side, s.snapshot_id, None))
            }
        main = self.lake.iceberg(zone, name)
        current = main.current_snapshot().snapshot_id
        replaced = set(_replaced(main.current_snapshot()))
        doomed = set()
        for snap in main.snapshots():
            if snap.snapshot_id == current:
                continue
            if str(snap.snapshot_id) in replaced:  # the erasure commit stands for it (its tags moved)
                doomed.add(snap.snapshot_id)
                continue
            key = _extra(snap).get("pseudonym_key_id")
            if not self.subjects.matchable(key):
                doomed.add(snap.snapshot_id)
                self.report.snapshots_dropped.append(f"{spec.qualified_name}@{snap.snapshot_id}")
                continue
            side_ids = json.loads(_summary(snap).get(PARTS, "{}"))
            if self.holds(main, snap.snapshot_id, key) or any(
                int(i) in side_doomed.get(p, ())
                or self.lake.iceberg(zone, part_table(name, p)).snapshot_by_id(int(i)) is None
                for p, i in side_ids.items()
            ):
                doomed.add(snap.snapshot_id)
        self._expire(zone, name, doomed)
        for part, ids in side_doomed.items():
            self._expire(zone, part_table(name, part), ids)

    def _expire(self, zone: str, name: str, ids: set[int]) -> None:
        if not ids:
            return
        self.report.files_deleted += expire(self.lake, zone, name, ids, drop_tags=True)
        label = self._label(zone, name)
        self.report.snapshots_expired[label] = self.report.snapshots_expired.get(label, 0) + len(ids)

    @staticmethod
    def _label(zone: str, name: str) -> str:
        for spec in TABLES:
            for part in spec.parts:
                if spec.zone == zone and part_table(spec.name, part) == name:
                    return spec.qualified_name + ("" if part == "data" else f"/{part}")
        return f"{zone}.{name}"

    # -- the dry run
    def survey(self, pending: int) -> Survey:
        """Count, without changing anything, what `run` would erase."""
        landing = {}
        for source in SOURCE_OF.values():
            for path in landing_files(self.landing, source).files:
                _, removed = _without_their_lines(self.landing, path, source, self.subjects)
                if removed:
                    landing[path] = removed
        rows, older = {}, {}
        with self._matching():
            for spec in self._graph_order():
                parts, _ = self._parts_and_inputs(spec)
                for name in [spec.name, *(part_table(spec.name, p) for p in parts)]:
                    label = self._label(spec.zone, name)
                    rows[label], older[label] = self._survey_table(spec.zone, name)
        return Survey(
            people=len(self.erasure.identities),
            serials=len(self.erasure.serials),
            landing_lines=landing,
            rows=rows,
            older_snapshots=older,
            pending=pending,
        )

    def _survey_table(self, zone: str, name: str) -> tuple[int, int]:
        """(rows of theirs in the current snapshot, other snapshots that hold them or cannot be matched)."""
        tbl = self.lake.iceberg(zone, name)
        current = tbl.current_snapshot()
        key = _extra(current).get("pseudonym_key_id")
        rows = sum(self.count(self.lake.relative(f.file_path), key) for f in live_data_files(tbl, current.snapshot_id))
        older = [s for s in tbl.snapshots() if s.snapshot_id != current.snapshot_id]
        return rows, sum(
            1
            for s in older
            if not self.subjects.matchable(_extra(s).get("pseudonym_key_id"))
            or self.holds(tbl, s.snapshot_id, _extra(s).get("pseudonym_key_id"))
        )
