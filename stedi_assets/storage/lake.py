"""The lake: every table an Apache Iceberg table, written with pyiceberg (write, audit, commit).

Layout under the lake root is Iceberg's: `<zone>/<table>/metadata/` and `<zone>/<table>/data/`. A write
stages Parquet files in `<zone>/<table>/data/stage-<uuid>/`, which no snapshot references yet (Iceberg's
"uncommitted data files" form of write-audit-publish); checks audit those files; only then one catalog
commit, an overwrite of the table's files, makes them current. A failed check or a crash commits nothing,
and the files left behind are orphans that retention removes.

A landing table keeps its rejected lines in a sibling Iceberg table `<table>_rejected`, committed just
before the table itself; the table's snapshot summary names the sibling's snapshot, so a reader always
pairs the two parts of one write.

Every commit's snapshot summary carries `stedi.run-id`, `stedi.policy`, `stedi.engine`, `stedi.inputs`
(the snapshot id of every input table it was built from) and `stedi.extra` (what the builder recorded).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa

from .catalog import CatalogChoice, load_catalog

RUN_ID, POLICY, ENGINE, INPUTS, EXTRA, PARTS = (
    "stedi.run-id",
    "stedi.policy",
    "stedi.engine",
    "stedi.inputs",
    "stedi.extra",
    "stedi.parts",
)
PART_SUFFIX = "_rejected"
STAGE_PREFIX = "stage-"

# Manifests keep column bounds (min/max) for pruning; for personal data, raw landing text and pseudonyms they
# would be copies of a person's values outside the data files, which erasure could not reach. Counts only, there.
NO_BOUNDS = ("raw", "customer_id")


class TableNotPublished(LookupError):
    """A table has no committed snapshot yet."""


class CommitConflict(RuntimeError):
    """Another writer committed the table since this one read it; the message names that run."""


def part_table(table: str, part: str) -> str:
    return table if part == "data" else f"{table}{PART_SUFFIX if part == 'rejected' else '_' + part}"


@dataclass(frozen=True)
class Snapshot:
    """One committed version of a table: its files (lake-relative) and what its commit recorded."""

    zone: str
    table: str
    snapshot: str
    created_at: str
    files: dict[str, list[str]]
    rows: dict[str, int] = field(default_factory=dict)
    policy: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # input table -> its snapshot id
    extra: dict = field(default_factory=dict)
    run_id: str | None = None
    engine: str | None = None
    parts: dict[str, str] = field(default_factory=dict)  # side part -> its table's snapshot id
    timestamp_ms: int = 0

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.table}"


@dataclass
class StagedWrite:
    """The data files of a table's next snapshot, and what its commit will record: files written under this
    write's folder, and for a landing table also files of the replaced snapshot that it keeps."""

    zone: str
    table: str
    token: str
    schemas: dict[str, pa.Schema]  # part -> the contract's columns for this write
    base: dict[str, str | None]  # part -> the snapshot this write replaces (read at stage)
    files: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    policy: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def part_folder(self, part: str) -> str:
        return f"{self.zone}/{part_table(self.table, part)}/data/{STAGE_PREFIX}{self.token}"

    def file(self, part: str, index: int = 0) -> str:
        """Lake-relative path of a new data file of `part`; the caller writes it, the commit adds it."""
        path = f"{self.part_folder(part)}/part-{index:05d}.parquet"
        self.files.setdefault(part, []).append(path)
        return path

    def add_files(self, part: str, names: list[str]) -> list[str]:
        """Record data files an engine wrote into `part_folder(part)` (names relative to it); their lake paths."""
        paths = [f"{self.part_folder(part)}/{n}" for n in sorted(names)]
        self.files.setdefault(part, []).extend(paths)
        return paths


class Lake:
    """The lake's Iceberg tables in one catalog; engines read and write the data files by `uri()`."""

    def __init__(self, store, catalog: CatalogChoice) -> None:
        self.store, self.choice = store, catalog
        self.root = store.uri()

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    @property
    def catalog(self):
        return load_catalog(self.choice)

    # -- paths -------------------------------------------------------------------------------------
    def uri(self, rel: str) -> str:
        return rel if rel.startswith(("/", "s3://", "file://")) else self.store.uri(rel)

    def relative(self, uri: str) -> str:
        uri = uri.removeprefix("file://") if not self.root.startswith("file://") else uri
        return uri[len(self.root) + 1 :] if uri.startswith(self.root + "/") else uri

    def make_dirs(self, rel: str) -> None:
        self.store.make_dirs(rel)

    @contextmanager
    def local_output(self, rel: str) -> Iterator[str]:
        """A local path to write the file `rel` at; on an object store it is uploaded afterwards."""
        import os
        import tempfile

        direct = self.store.local_path(rel)
        if direct is not None:
            self.store.make_dirs(rel.rsplit("/", 1)[0])
            yield direct
            return
        with tempfile.TemporaryDirectory(prefix="stedi-") as tmp:
            path = os.path.join(tmp, rel.rsplit("/", 1)[-1])
            yield path
            self.store.put_file(path, rel)

    # -- tables ------------------------------------------------------------------------------------
    def identifier(self, zone: str, table: str) -> tuple[str, str]:
        return (self.choice.namespace(zone), table)

    def iceberg(self, zone: str, table: str):
        """The pyiceberg Table, freshly loaded; TableNotPublished if the catalog has none."""
        import os

        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            if self.choice.embedded_file and not os.path.exists(self.choice.embedded_file):
                raise NoSuchTableError(table)  # a lake nothing was committed to yet: do not create it on a read
            return self.catalog.load_table(self.identifier(zone, table))
        except (NoSuchTableError, NoSuchNamespaceError):
            raise TableNotPublished(
                f"{zone}.{table} has no committed snapshot in {self.root}; materialize it first"
            ) from None

    def _ensure_table(self, zone: str, table: str, schema: pa.Schema, pii: set[str]):
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
        from pyiceberg.schema import assign_fresh_schema_ids

        try:
            return self.iceberg(zone, table)
        except TableNotPublished:
            pass
        namespace = self.choice.namespace(zone)
        self.store.ensure_root()
        try:
            self.catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
        except Exception:  # two first writers at once: the other one created it
            if (namespace,) not in self.catalog.list_namespaces():
                raise
        iceberg_schema = assign_fresh_schema_ids(_iceberg_schema(schema))  # the ids create_table assigns
        properties = {
            "format-version": "2",
            # engines write Parquet without field ids: columns map by name
            "schema.name-mapping.default": iceberg_schema.name_mapping.model_dump_json(),
            "write.metadata.delete-after-commit.enabled": "true",
            "write.metadata.previous-versions-max": "20",
            **{
                f"write.metadata.metrics.column.{c}": "counts"
                for c in sorted(pii | set(NO_BOUNDS))
                if c in schema.names
            },
        }
        try:
            return self.catalog.create_table(
                self.identifier(zone, table),
                schema=iceberg_schema,
                location=self.uri(f"{zone}/{table}"),
                properties=properties,
            )
        except TableAlreadyExistsError:  # another writer created it first: fine, it is the same table
            return self.iceberg(zone, table)

    def has_current(self, zone: str, table: str) -> bool:
        try:
            return self.iceberg(zone, table).current_snapshot() is not None
        except TableNotPublished:
            return False

    def has_tables(self) -> bool:
        """Whether any table of the contract has a committed snapshot (stops at the first: each test loads one)."""
        from ..zones import TABLES

        return any(self.has_current(t.zone, t.name) for t in TABLES)

    def tables(self) -> list[tuple[str, str]]:
        """(zone, table) of every table of the contract that has a committed snapshot."""
        from ..zones import TABLES

        return [(t.zone, t.name) for t in TABLES if self.has_current(t.zone, t.name)]

    # -- reading -----------------------------------------------------------------------------------
    def _data_files(self, tbl, snapshot_id: int) -> list[str]:
        return sorted(self.relative(f.file_path) for f in live_data_files(tbl, snapshot_id))

    def snapshot(self, zone: str, table: str, snapshot_id: str | int | None = None, tbl=None) -> Snapshot:
        """A committed snapshot of the table (default: the current one) with its side parts."""
        tbl = tbl or self.iceberg(zone, table)
        snap = tbl.current_snapshot() if snapshot_id is None else tbl.snapshot_by_id(int(snapshot_id))
        if snap is None:
            if snapshot_id is None:
                raise TableNotPublished(
                    f"{zone}.{table} has no committed snapshot in {self.root}; materialize it first"
                )
            raise LookupError(f"{zone}.{table} has no snapshot {snapshot_id} (expired or never made)")
        summary = snap.summary.additional_properties if snap.summary else {}
        parts = json.loads(summary.get(PARTS, "{}"))
        files = {"data": self._data_files(tbl, snap.snapshot_id)}
        rows = {"data": int(summary.get("total-records", 0))}
        for part, part_id in parts.items():
            side = self.iceberg(zone, part_table(table, part))
            files[part] = self._data_files(side, int(part_id))
            side_snap = side.snapshot_by_id(int(part_id))
            rows[part] = int(side_snap.summary.additional_properties.get("total-records", 0)) if side_snap else 0
        return Snapshot(
            zone=zone,
            table=table,
            snapshot=str(snap.snapshot_id),
            created_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, timezone.utc).isoformat(timespec="seconds"),
            files=files,
            rows=rows,
            policy=summary.get(POLICY) or None,
            inputs=json.loads(summary.get(INPUTS, "{}")),
            extra=json.loads(summary.get(EXTRA, "{}")),
            run_id=summary.get(RUN_ID),
            engine=summary.get(ENGINE) or None,
            parts=parts,
            timestamp_ms=snap.timestamp_ms,
        )

    def current(self, zone: str, table: str) -> Snapshot:
        return self.snapshot(zone, table)

    def snapshots(self, zone: str, table: str) -> list[Snapshot]:
        """Every snapshot the table still keeps, oldest first."""
        tbl = self.iceberg(zone, table)
        return [
            self.snapshot(zone, table, s.snapshot_id, tbl)
            for s in sorted(tbl.snapshots(), key=lambda s: s.timestamp_ms)
        ]

    def tags(self, zone: str, table: str) -> dict[str, str]:
        """Tag name -> snapshot id."""
        from pyiceberg.table.refs import SnapshotRefType

        return {
            name: str(ref.snapshot_id)
            for name, ref in self.iceberg(zone, table).refs().items()
            if ref.snapshot_ref_type == SnapshotRefType.TAG
        }

    # -- writing -----------------------------------------------------------------------------------
    def stage(self, zone: str, table: str, schemas: dict[str, pa.Schema]) -> StagedWrite:
        """Start a write: remember what each part's table holds now (the commit must replace exactly that)."""
        base: dict[str, str | None] = {}
        for part in schemas:
            try:
                current = self.iceberg(zone, part_table(table, part)).current_snapshot()
            except TableNotPublished:
                current = None
            base[part] = str(current.snapshot_id) if current else None
        staged = StagedWrite(zone=zone, table=table, token=uuid.uuid4().hex, schemas=schemas, base=base)
        for part in schemas:
            self.store.make_dirs(staged.part_folder(part))
        return staged

    def discard(self, staged: StagedWrite) -> None:
        for part in staged.schemas:
            self.store.delete_tree(staged.part_folder(part))

    def commit(self, staged: StagedWrite, run_id: str, engine: str | None, pii: set[str]) -> Snapshot:
        """Make the staged files the table's current data in one catalog commit per part (side parts first)."""
        committed: dict[str, str] = {}
        for part in sorted(staged.schemas, key=lambda p: p == "data"):
            properties = {RUN_ID: run_id, POLICY: staged.policy or "", ENGINE: engine or ""}
            if part == "data":
                properties |= {
                    INPUTS: json.dumps(staged.inputs, sort_keys=True),
                    EXTRA: json.dumps(staged.extra, sort_keys=True),
                    PARTS: json.dumps(committed, sort_keys=True),
                }
            name = part_table(staged.table, part)
            tbl = self._ensure_table(staged.zone, name, staged.schemas[part], pii)
            committed[part] = self._overwrite(
                tbl,
                staged.zone,
                name,
                staged.base.get(part),
                staged.schemas[part],
                staged.files.get(part, []),
                properties,
            )
        return self.snapshot(staged.zone, staged.table, committed["data"])

    def _overwrite(
        self,
        tbl,
        zone: str,
        name: str,
        base: str | None,
        schema: pa.Schema,
        files: list[str],
        properties: dict[str, str],
    ) -> str:
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.io.pyarrow import parquet_files_to_data_files

        current = tbl.current_snapshot()
        if (str(current.snapshot_id) if current else None) != base:
            raise self._conflict(zone, name, tbl)
        # the snapshot's files become exactly `files`: live ones it names stay (incremental builds)
        live = live_data_files(tbl, current.snapshot_id) if current is not None else []
        staying = {self.relative(f.file_path) for f in live} & set(files)
        try:
            with tbl.transaction() as tx:
                _align_schema(tx, schema)
                if current is not None and staying == set(files) and len(staying) == len(live):
                    # the same files (a table reused): a snapshot that records this run and rewrites no manifest
                    with tx.update_snapshot(snapshot_properties=properties).fast_append():
                        pass
                else:
                    with replace_files(tx, properties) as overwrite:
                        for data_file in live:
                            if self.relative(data_file.file_path) not in staying:
                                overwrite.delete_data_file(data_file)
                        for data_file in parquet_files_to_data_files(
                            tbl.io, tx.table_metadata, iter(self.uri(f) for f in files if f not in staying)
                        ):
                            overwrite.append_data_file(data_file)
        except CommitFailedException:
            raise self._conflict(zone, name, self.iceberg(zone, name)) from None
        return str(tbl.current_snapshot().snapshot_id)

    def _conflict(self, zone: str, name: str, tbl) -> CommitConflict:
        latest = tbl.refresh().current_snapshot() if hasattr(tbl, "refresh") else tbl.current_snapshot()
        other = latest.summary.additional_properties.get(RUN_ID, "?") if latest and latest.summary else "?"
        return CommitConflict(
            f"{zone}.{name} was committed by run {other} while this run was writing it; "
            "nothing was committed by this run for it: run again"
        )

    def rollback(self, zone: str, table: str, snapshot: str | None = None) -> Snapshot:
        """Make an older snapshot current again (default: the one before the current in the table's history)."""
        tbl = self.iceberg(zone, table)
        current = self.snapshot(zone, table, tbl=tbl)
        if snapshot is None:
            history = [str(e.snapshot_id) for e in tbl.history()]
            earlier = [s for s in history[:-1] if s != current.snapshot and tbl.snapshot_by_id(int(s))]
            if not earlier:
                raise LookupError(f"{zone}.{table} has no snapshot older than {current.snapshot}")
            snapshot = earlier[-1]
        target = self.snapshot(zone, table, snapshot, tbl)
        for part, part_id in target.parts.items():  # the side parts go back with it
            self.iceberg(zone, part_table(table, part)).manage_snapshots().set_current_snapshot(int(part_id)).commit()
        tbl.manage_snapshots().set_current_snapshot(int(target.snapshot)).commit()
        return target


def replace_files(tx, properties: dict[str, str]):
    """pyiceberg's overwrite (delete some data files, add others) in one snapshot, minus the delete-only
    manifests it would carry over from the parent snapshot.

    pyiceberg 0.11.1 keeps every earlier snapshot's manifest of DELETED entries in each new overwrite's manifest
    list (iceberg-go had the same bug, apache/iceberg-go#1153), so the current snapshot of a table rewritten N
    times would list N+1 manifests that every reader (pyiceberg, DuckDB, Athena) opens. They hold no live file;
    Iceberg's Java writer drops them too. This subclasses a private pyiceberg class: re-check on upgrade. Its
    operation is the one pyiceberg's overwrite() picks (an append for a table's first snapshot), without the
    template overwrite() makes to pick it (each recomputes the transaction's metadata).
    """
    from pyiceberg.table.snapshots import Operation
    from pyiceberg.table.update.snapshot import _OverwriteFiles

    class ReplaceFiles(_OverwriteFiles):
        def _existing_manifests(self):
            return [m for m in super()._existing_manifests() if m.has_added_files() or m.has_existing_files()]

    update = tx.update_snapshot(snapshot_properties=properties)
    return ReplaceFiles(
        operation=Operation.OVERWRITE if tx._table.current_snapshot() is not None else Operation.APPEND,
        transaction=tx,
        io=update._io,
        branch=update._branch,
        snapshot_properties=properties,
    )


def live_data_files(tbl, snapshot_id: int) -> list:
    """The data files of a snapshot, read from its manifests (a scan would prune files with no rows).

    A snapshot never changes, so its list is read once per process (keyed by the table's uuid).
    """
    key = (str(tbl.metadata.table_uuid), snapshot_id)
    if key not in _FILES_OF_SNAPSHOT:
        snap = tbl.snapshot_by_id(snapshot_id)
        if len(_FILES_OF_SNAPSHOT) > 4096:
            _FILES_OF_SNAPSHOT.clear()
        _FILES_OF_SNAPSHOT[key] = [
            entry.data_file
            for manifest in snap.manifests(tbl.io)
            for entry in manifest.fetch_manifest_entry(tbl.io, discard_deleted=True)
        ]
    return _FILES_OF_SNAPSHOT[key]


_FILES_OF_SNAPSHOT: dict[tuple[str, int], list] = {}


def _align_schema(tx, schema: pa.Schema) -> None:
    """Give the table exactly the write's columns (a policy switch changes them); history keeps the old schema."""
    current = tx.table_metadata.schema()
    wanted = schema.names
    if [f.name for f in current.fields] == wanted:
        return
    with tx.update_schema(allow_incompatible_changes=True) as update:
        update.union_by_name(_iceberg_schema(schema))
        for column in [f.name for f in current.fields if f.name not in wanted]:
            update.delete_column(column)
        update.move_first(wanted[0])
        for before, column in zip(wanted, wanted[1:], strict=False):
            update.move_after(column, before)
    tx.set_properties(**{"schema.name-mapping.default": tx.table_metadata.schema().name_mapping.model_dump_json()})


def _iceberg_schema(schema: pa.Schema):
    from pyiceberg.catalog import Catalog

    return Catalog._convert_schema_if_needed(schema)


def open_lake(root: str, catalog: str | None = None, deployment: str | None = None) -> Lake:
    """The lake at `root` (folder or s3://bucket/prefix) with its catalog (STEDI_CATALOG, see catalog.py)."""
    from .. import settings
    from .catalog import choose
    from .stores import open_store

    store = open_store(root)
    return Lake(store, choose(store.uri(), catalog, deployment or settings.deployment()))
