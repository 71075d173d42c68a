"""Runs and consistent lakes.

A run reads, for every input table, the snapshot it committed itself or else the one that was current
when it started (`pinned`): never a snapshot another run committed meanwhile. When a run has committed
every table it selected, the tables it built and read form a consistent lake: each table's snapshot was
built from exactly the others' snapshots. `close_run` then tags that snapshot of every table `run-<id>`
(Iceberg tags, so Athena, Spark and `stedi query --as-of` can all read it). A run whose selection leaves
some table built from older inputs (only landing re-read, say) gets no tag: its lake is not consistent.
"""

from __future__ import annotations

from .lake import Lake, Snapshot, TableNotPublished, part_table
from .maintenance import RUN_TAG_PREFIX

TABLE_RUN_ID = "stedi.run-id"
ERASED_RUN = "stedi.erased-run"  # on an erasure snapshot: the run whose snapshot it replaced


def run_tag(run_id: str) -> str:
    return f"{RUN_TAG_PREFIX}{run_id}"


def _spec(name: str):
    from ..zones import table

    return table(name)


def _committed_by(tbl, run_id: str) -> int | None:
    """The id of the newest snapshot of `tbl` that run `run_id` committed (metadata only, no file listing)."""
    for snap in sorted(tbl.snapshots(), key=lambda s: s.timestamp_ms, reverse=True):
        if snap.summary and snap.summary.additional_properties.get(TABLE_RUN_ID) == run_id:
            return snap.snapshot_id
    return None


def produced_by(lake: Lake, name: str, run_id: str) -> Snapshot | None:
    """The snapshot of table `name` that run `run_id` committed, if it did."""
    spec = _spec(name)
    try:
        tbl = lake.iceberg(spec.zone, name)
    except TableNotPublished:
        return None
    snapshot_id = _committed_by(tbl, run_id)
    return None if snapshot_id is None else lake.snapshot(spec.zone, name, snapshot_id, tbl)


def pinned(lake: Lake, name: str, run_id: str, started_ms: int | None) -> Snapshot:
    """The snapshot of input table `name` that run `run_id` reads (its own commit, else current at its start)."""
    own = produced_by(lake, name, run_id)
    if own is not None:
        return own
    spec = _spec(name)
    tbl = lake.iceberg(spec.zone, name)
    snap = tbl.snapshot_as_of_timestamp(started_ms) if started_ms else tbl.current_snapshot()
    if snap is None:
        raise TableNotPublished(
            f"{spec.qualified_name} had no committed snapshot when run {run_id} started; materialize it first"
        )
    return lake.snapshot(spec.zone, name, snap.snapshot_id, tbl)


def _consistent_view(lake: Lake, run_id: str, produced: dict[str, Snapshot]) -> dict[str, Snapshot] | None:
    """Every table's snapshot in the lake run `run_id` built, or None if that lake is not consistent."""
    from ..zones import TABLES

    view = dict(produced)
    pending = list(produced.values())
    while pending:  # upstream: exactly the snapshots the run read
        snap = pending.pop()
        for name, snapshot_id in snap.inputs.items():
            if name in view:
                if view[name].snapshot != snapshot_id:
                    return None
                continue
            try:
                view[name] = lake.snapshot(_spec(name).zone, name, snapshot_id)
            except LookupError:  # expired meanwhile (retention, erasure): not a whole lake
                return None
            pending.append(view[name])
    for spec in TABLES:  # the rest: unchanged tables still built from this lake
        if spec.name in view:
            continue
        if not lake.has_current(spec.zone, spec.name):
            return None
        current = lake.current(spec.zone, spec.name)
        if any(name not in view or view[name].snapshot != sid for name, sid in current.inputs.items()):
            return None
        view[spec.name] = current
    return view


def close_run(lake: Lake, run_id: str, selected: set[str]) -> dict[str, Snapshot] | None:
    """Tag the consistent lake run `run_id` built, once it has committed every table in `selected`.

    Returns the tagged view, or None while the run is unfinished or when its lake is not consistent.
    Safe to call from several steps at once: tagging is idempotent.
    """
    from ..zones import graph_order

    tables = {}
    # cheap first: has the run committed every table it selected? Asked last table first: until the run's last
    # commit, the first no is usually there (each of a run's commits asks)
    for name in [t.name for t in reversed(graph_order()) if t.name in selected]:
        try:
            tables[name] = lake.iceberg(_spec(name).zone, name)
        except TableNotPublished:
            return None
        if _committed_by(tables[name], run_id) is None:
            return None
    produced = {
        name: lake.snapshot(_spec(name).zone, name, _committed_by(tbl, run_id), tbl) for name, tbl in tables.items()
    }
    view = _consistent_view(lake, run_id, produced)
    if view is None:
        return None
    tag = run_tag(run_id)
    for name, snap in view.items():
        zone = snap.zone
        for part_name, snapshot_id in [
            (name, snap.snapshot),
            *((part_table(name, p), i) for p, i in snap.parts.items()),
        ]:
            tbl = lake.iceberg(zone, part_name)
            ref = tbl.refs().get(tag)
            if ref is None:
                try:
                    tbl.manage_snapshots().create_tag(int(snapshot_id), tag).commit()
                except Exception:  # a concurrent last step tagged it first
                    if tag not in lake.iceberg(zone, part_name).refs():
                        raise
    return view


def complete_runs(lake: Lake, tables: list | None = None) -> list[tuple[int, str]]:
    """(time of its last commit in ms, run id) of every run whose tag every table has, newest first.

    `tables` (Iceberg tables already loaded) limits the test to those: a reader that cannot read one table's
    metadata still finds the runs complete in all the others. By default every table of the contract is read,
    and none is complete while one is unpublished.
    """
    if tables is None:
        from ..zones import TABLES

        try:
            tables = [lake.iceberg(spec.zone, spec.name) for spec in TABLES]
        except TableNotPublished:
            return []
    runs: dict[str, int] | None = None
    for tbl in tables:
        found = _tagged_runs(tbl)
        runs = found if runs is None else {r: max(t, found[r]) for r, t in runs.items() if r in found}
    return sorted(((t, r) for r, t in (runs or {}).items()), reverse=True)


def _tagged_runs(tbl) -> dict[str, int]:
    """Run id -> time of the run's commit of this table (0 if the tag is on a snapshot the run did not build)."""
    found: dict[str, int] = {}
    for name, ref in tbl.refs().items():
        if not name.startswith(RUN_TAG_PREFIX):
            continue
        snap = tbl.snapshot_by_id(ref.snapshot_id)
        run_id = name[len(RUN_TAG_PREFIX) :]
        props = snap.summary.additional_properties if snap is not None and snap.summary else {}
        # a snapshot the run built, or the erasure of one it built (the tag moved there): the run's time
        built_here = run_id in (props.get(TABLE_RUN_ID), props.get(ERASED_RUN))
        found[run_id] = snap.timestamp_ms if built_here and snap is not None else 0
    return found


def resolve_run(lake: Lake, text: str, complete: list[tuple[int, str]] | None = None) -> str:
    """A complete run named by its id or an unambiguous prefix of it (among `complete`, default complete_runs)."""
    runs = [r for _, r in (complete_runs(lake) if complete is None else complete)]
    matches = [r for r in runs if r.startswith(text.removeprefix(RUN_TAG_PREFIX))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise LookupError(
            f"no complete run {text!r} in this lake (complete runs: {', '.join(r[:8] for r in runs[:5]) or 'none'})"
        )
    raise LookupError(f"run prefix {text!r} is ambiguous: {', '.join(m[:12] for m in matches)}")


def view_of_run(lake: Lake, run_id: str) -> dict[str, Snapshot]:
    """The consistent lake a complete run tagged: table name -> its snapshot."""
    from ..zones import TABLES

    return {spec.name: snapshot_of_run(lake, spec.zone, spec.name, run_id) for spec in TABLES}


def snapshot_of_run(lake: Lake, zone: str, name: str, run_id: str, tbl=None) -> Snapshot:
    """The snapshot of one table that a complete run tagged; LookupError if that tag is gone."""
    tbl = tbl or lake.iceberg(zone, name)
    ref = tbl.refs().get(run_tag(run_id))
    if ref is None:
        raise LookupError(f"run {run_id} has no snapshot of {zone}.{name} (expired or erased)")
    return lake.snapshot(zone, name, ref.snapshot_id, tbl)


def default_view(lake: Lake) -> tuple[str | None, dict[str, Snapshot]]:
    """The lake readers get by default: the latest complete run's, else each committed table's current snapshot."""
    runs = complete_runs(lake)
    if runs:
        return runs[0][1], view_of_run(lake, runs[0][1])
    from ..zones import TABLES

    return None, {t.name: lake.current(t.zone, t.name) for t in TABLES if lake.has_current(t.zone, t.name)}


def trim_run_tags(lake: Lake, keep: int, max_age_days: float, now_ms: int) -> list[str]:
    """Remove the tags of complete runs beyond the newest `keep` or older than `max_age_days` (the latest
    complete run keeps its tag whatever its age), so retention can expire their snapshots. Returns the runs."""
    from ..zones import TABLES

    runs = complete_runs(lake)
    oldest = now_ms - max_age_days * 86_400_000
    dropped = [run for i, (at, run) in enumerate(runs) if i > 0 and (i >= keep or at < oldest)]
    for run in dropped:
        tag = run_tag(run)
        for spec in TABLES:
            for name in (spec.name, *(part_table(spec.name, p) for p in spec.parts if p != "data")):
                tbl = lake.iceberg(spec.zone, name)
                if tag in tbl.refs():
                    tbl.manage_snapshots().remove_tag(tag).commit()
    return dropped
