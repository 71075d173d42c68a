"""The lake: tables as immutable snapshots behind a current-pointer (write, audit, publish).

Layout under the lake root:
    <zone>/<table>/_current.json                      the pointer: the published snapshot's manifest
    <zone>/<table>/snapshots/<id>/<part>/*.parquet    data files (part "data"; landing also "rejected")
    <zone>/<table>/snapshots/<id>/_manifest.json      written when the snapshot is published

A write goes to a fresh snapshot folder; only when the data is complete and its blocking audits passed
does the pointer move, in one atomic replace. A crash before that leaves the previous snapshot current.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Iterator

from .stores import StoreError


POINTER = "_current.json"
MANIFEST = "_manifest.json"
LOCK = "_lock.json"
DEFAULT_RETENTION = 5
LOCK_STALE_SECONDS = 6 * 3600   # a writer holding a table longer than this is presumed dead


class TableLocked(RuntimeError):
    """Another writer holds a table's lock; the message names it."""


class TableNotPublished(LookupError):
    """A table has no published snapshot yet."""


@dataclass(frozen=True)
class Snapshot:
    """One version of a table: where its files are and what it holds (the manifest)."""

    zone: str
    table: str
    snapshot: str
    created_at: str
    files: dict[str, list[str]]            # part -> data files, relative to the lake root
    rows: dict[str, int] = field(default_factory=dict)
    policy: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)   # input table -> its snapshot id
    extra: dict = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.table}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Snapshot":
        return cls(**json.loads(data))


@dataclass
class StagedSnapshot:
    """A snapshot being written: its files exist, but nothing points to it yet."""

    zone: str
    table: str
    snapshot: str
    folder: str                               # relative to the lake root
    files: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    policy: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def file(self, part: str, index: int = 0) -> str:
        """Relative path of a new data file of `part`; the caller writes it, the manifest lists it."""
        path = f"{self.part_folder(part)}/part-{index:05d}.parquet"
        self.files.setdefault(part, []).append(path)
        return path

    def part_folder(self, part: str) -> str:
        return f"{self.folder}/{part}"

    def add_files(self, part: str, names: list[str]) -> None:
        """Record data files an engine wrote into `part_folder(part)` (names relative to it)."""
        self.files.setdefault(part, []).extend(f"{self.part_folder(part)}/{n}" for n in sorted(names))

    def manifest(self) -> Snapshot:
        return Snapshot(zone=self.zone, table=self.table, snapshot=self.snapshot,
                        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        files=self.files, rows=self.rows, policy=self.policy, inputs=self.inputs,
                        extra=self.extra)


def _is_stale(holder: dict) -> bool:
    if time.time() - holder.get("since", 0) > LOCK_STALE_SECONDS:
        return True
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder.get("pid", 0)), 0)
        except ProcessLookupError:
            return True          # the writer died without releasing its lock
        except (PermissionError, ValueError):
            return False
    return False


def new_snapshot_id() -> str:
    # Sortable by time, unique across concurrent writers.
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


class Lake:
    """Snapshot bookkeeping over a store; engines read and write the data files by `uri()`."""

    def __init__(self, store, retention: int = DEFAULT_RETENTION) -> None:
        if retention < 1:
            raise ValueError("retention must keep at least the current snapshot (>= 1)")
        self.store, self.retention = store, retention

    def __repr__(self) -> str:
        return f"Lake({self.store.uri()!r})"

    def uri(self, rel: str) -> str:
        return self.store.uri(rel)

    @staticmethod
    def _table_dir(zone: str, table: str) -> str:
        return f"{zone}/{table}"

    def stage(self, zone: str, table: str) -> StagedSnapshot:
        snapshot = new_snapshot_id()
        folder = f"{self._table_dir(zone, table)}/snapshots/{snapshot}"
        self.store.make_dirs(folder)
        return StagedSnapshot(zone=zone, table=table, snapshot=snapshot, folder=folder)

    def make_dirs(self, rel: str) -> None:
        self.store.make_dirs(rel)

    @contextmanager
    def local_output(self, rel: str) -> Iterator[str]:
        """A local path to write the file `rel` at; on an object store it is uploaded afterwards."""
        direct = self.store.local_path(rel)
        if direct is not None:
            self.make_dirs_for(rel)
            yield direct
            return
        with tempfile.TemporaryDirectory(prefix="stedi-") as tmp:
            path = os.path.join(tmp, rel.rsplit("/", 1)[-1])
            yield path
            self.store.put_file(path, rel)

    def make_dirs_for(self, rel_file: str) -> None:
        self.store.make_dirs(rel_file.rsplit("/", 1)[0])

    def publish(self, staged: StagedSnapshot) -> Snapshot:
        """Make `staged` the table's current snapshot in one atomic step, then apply retention."""
        manifest = staged.manifest()
        data = manifest.to_json()
        self.store.write_atomic(f"{staged.folder}/{MANIFEST}", data)
        self.store.write_atomic(f"{self._table_dir(staged.zone, staged.table)}/{POINTER}", data)
        self.prune(staged.zone, staged.table)
        return manifest

    def discard(self, staged: StagedSnapshot) -> None:
        self.store.delete_tree(staged.folder)

    def current(self, zone: str, table: str) -> Snapshot:
        pointer = f"{self._table_dir(zone, table)}/{POINTER}"
        if not self.store.exists(pointer):
            raise TableNotPublished(f"{zone}.{table} has no published snapshot in {self.store.uri()}; "
                                    "materialize it first")
        return Snapshot.from_json(self.store.read_bytes(pointer))

    def has_current(self, zone: str, table: str) -> bool:
        return self.store.exists(f"{self._table_dir(zone, table)}/{POINTER}")

    def snapshots(self, zone: str, table: str) -> list[Snapshot]:
        """Published snapshots still kept, oldest first."""
        base = f"{self._table_dir(zone, table)}/snapshots"
        kept = []
        for snapshot in self.store.list_dirs(base):
            manifest = f"{base}/{snapshot}/{MANIFEST}"
            if self.store.exists(manifest):
                kept.append(Snapshot.from_json(self.store.read_bytes(manifest)))
        return kept

    def rollback(self, zone: str, table: str, snapshot: str | None = None) -> Snapshot:
        """Point the table back at `snapshot` (default: the one before the current)."""
        current = self.current(zone, table).snapshot
        kept = self.snapshots(zone, table)
        if snapshot is None:
            older = [s for s in kept if s.snapshot < current]
            if not older:
                raise LookupError(f"{zone}.{table} has no snapshot older than {current}")
            target = older[-1]
        else:
            matches = [s for s in kept if s.snapshot == snapshot]
            if not matches:
                raise LookupError(f"{zone}.{table} has no kept snapshot {snapshot}")
            target = matches[0]
        self.store.write_atomic(f"{self._table_dir(zone, table)}/{POINTER}", target.to_json())
        return target

    def prune(self, zone: str, table: str) -> list[str]:
        """Delete snapshots beyond the retention, and abandoned half-written ones older than the current.

        Only folders older than the current snapshot are touched, so a writer staging a newer snapshot
        at the same time is never disturbed.
        """
        current = self.current(zone, table).snapshot
        base = f"{self._table_dir(zone, table)}/snapshots"
        older = [s for s in self.store.list_dirs(base) if s < current]
        published = [s for s in older if self.store.exists(f"{base}/{s}/{MANIFEST}")]
        keep = set(published[max(0, len(published) - (self.retention - 1)):])
        doomed = [s for s in older if s not in keep]
        for snapshot in doomed:
            self.store.delete_tree(f"{base}/{snapshot}")
        return doomed

    @contextmanager
    def lock(self, zone: str, table: str, owner: str, wait_seconds: float = 300) -> Iterator[None]:
        """Hold the table's write lock (created with create-if-absent, so two writers cannot both win).

        A second writer waits up to `wait_seconds`, then fails naming the holder. A lock left by a
        dead process on this host, or older than LOCK_STALE_SECONDS, is broken.
        """
        path = f"{self._table_dir(zone, table)}/{LOCK}"
        mine = json.dumps({"owner": owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "since": time.time()}).encode()
        deadline = time.monotonic() + wait_seconds
        while not self.store.create_exclusive(path, mine):
            holder = self._lock_holder(path)
            if holder is None or _is_stale(holder):
                self.store.delete_tree(path)
                continue
            if time.monotonic() >= deadline:
                since = datetime.fromtimestamp(holder.get("since", 0), timezone.utc).isoformat(timespec="seconds")
                raise TableLocked(f"{zone}.{table} is being written by run {holder.get('owner')} "
                                  f"(host {holder.get('host')}, pid {holder.get('pid')}) since {since}; "
                                  f"if that run is gone, delete {self.store.uri(path)}")
            time.sleep(0.5)
        try:
            yield
        finally:
            holder = self._lock_holder(path)
            if holder is not None and holder.get("owner") == owner:
                self.store.delete_tree(path)

    def _lock_holder(self, path: str) -> dict | None:
        """Who holds the lock at `path`; None if nobody does any more."""
        if not self.store.exists(path):
            return None
        try:
            return json.loads(self.store.read_bytes(path))
        except ValueError:          # being written this instant: a fresh lock
            return {"since": time.time()}
        except (FileNotFoundError, StoreError):
            return None             # released between our look and our read

    def tables(self) -> list[tuple[str, str]]:
        """(zone, table) of every published table in the lake."""
        return [(zone, table) for zone in self.store.list_dirs("") for table in self.store.list_dirs(zone)
                if self.has_current(zone, table)]
