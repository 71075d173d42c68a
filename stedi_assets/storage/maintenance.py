"""Retention and physical removal on Iceberg tables.

pyiceberg's expire_snapshots only drops snapshots from the table metadata; it deletes no file. Here
expiring also removes every file that only the expired snapshots used (data files, manifests, manifest
lists), which erasure needs (a person's rows must be gone from disk, not just unreferenced), and orphan
removal deletes staged files that no snapshot ever committed (a killed or failed write).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .lake import STAGE_PREFIX, Lake, live_data_files

RUN_TAG_PREFIX = "run-"


@dataclass(frozen=True)
class Retention:
    keep: int = 5  # newest snapshots a table keeps (the current and tagged ones always)
    max_age_days: float = 7.0  # older snapshots expire even within `keep`
    orphan_age_seconds: float = 3600  # staged files younger than this may belong to a running writer

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError("retention must keep at least one snapshot (keep >= 1)")


def live_files(tbl, snapshots) -> set[str]:
    """Every file the given snapshots use: manifest lists, manifests and live data files."""
    files: set[str] = set()
    for snap in snapshots:
        files.add(snap.manifest_list)
        files.update(manifest.manifest_path for manifest in snap.manifests(tbl.io))
        files.update(data_file.file_path for data_file in live_data_files(tbl, snap.snapshot_id))
    return files


def expire(lake: Lake, zone: str, table: str, snapshot_ids: set[int], drop_tags: bool = False) -> int:
    """Expire snapshots and delete the files only they used; returns the number of files deleted.

    Tagged snapshots are protected by Iceberg: with `drop_tags` their tags go first (erasure), else they
    are left alone.
    """
    tbl = lake.iceberg(zone, table)
    protected = {
        ref.snapshot_id
        for name, ref in tbl.refs().items()
        if name == "main" or not (drop_tags and ref.snapshot_id in snapshot_ids)
    }
    doomed = {s for s in snapshot_ids if s not in protected and tbl.snapshot_by_id(s) is not None}
    if not doomed:
        return 0
    if drop_tags:
        stale = [name for name, ref in tbl.refs().items() if name != "main" and ref.snapshot_id in doomed]
        if stale:
            with tbl.manage_snapshots() as manage:
                for name in stale:
                    manage.remove_tag(name)
    remaining = [s for s in tbl.snapshots() if s.snapshot_id not in doomed]
    gone = live_files(tbl, [tbl.snapshot_by_id(s) for s in doomed]) - live_files(tbl, remaining)
    tbl.maintenance.expire_snapshots().by_ids(sorted(doomed)).commit()
    for uri in sorted(gone):
        lake.store.delete_tree(lake.relative(uri))
    return len(gone)


def apply_retention(lake: Lake, zone: str, table: str, retention: Retention, now_ms: int | None = None) -> int:
    """Expire snapshots beyond the newest `keep` or older than `max_age_days` (never the current or a tagged
    one), then remove orphan files; returns the number of files deleted."""
    now_ms = now_ms or int(time.time() * 1000)
    tbl = lake.iceberg(zone, table)
    protected = {ref.snapshot_id for ref in tbl.refs().values()}  # main's head and run tags
    newest_first = sorted(tbl.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    oldest = now_ms - retention.max_age_days * 86_400_000
    doomed = {
        s.snapshot_id
        for i, s in enumerate(newest_first)
        if s.snapshot_id not in protected and (i >= retention.keep or s.timestamp_ms < oldest)
    }
    removed = expire(lake, zone, table, doomed)
    return removed + remove_orphans(lake, zone, table, retention.orphan_age_seconds)


def remove_orphans(lake: Lake, zone: str, table: str, min_age_seconds: float) -> int:
    """Delete data files under the table that no kept snapshot uses and that are older than `min_age_seconds`."""
    tbl = lake.iceberg(zone, table)
    used = {lake.relative(u) for u in live_files(tbl, tbl.snapshots())}
    cutoff = time.time() - min_age_seconds
    removed = 0
    for rel in lake.store.list_files(f"{zone}/{table}/data"):
        if rel in used or lake.store.modified(rel) > cutoff:
            continue
        lake.store.delete_tree(rel)
        removed += 1
    # empty staging folders left by the deleted files (local lakes have folders; object stores do not)
    for folder in lake.store.list_dirs(f"{zone}/{table}/data"):
        path = f"{zone}/{table}/data/{folder}"
        if folder.startswith(STAGE_PREFIX) and not lake.store.list_files(path) and lake.store.modified(path) <= cutoff:
            lake.store.delete_tree(path)
    return removed
