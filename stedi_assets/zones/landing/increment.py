"""Incremental landing: a run reads only the landing files that no earlier read of them still stands for.

Landing only grows, so re-reading every file on every run is wasted work. A landing table's snapshot records,
in its extra `landing_groups`, one entry per read that made its rows (a *group*): the files that read took
(path -> fingerprint: size, mtime, ctime and inode locally, size and ETag on S3, see the stores), the lake
files holding their typed rows and quarantine rows, the reader's figures for them, and why any of them could
not be read to its end.

A run keeps a group, without opening any of its files, when
- every file of it is still listed with the same fingerprint,
- each of its files that could not be read failed for a cause its fingerprint covers (`covered`): what a
  transient error stopped, or an entry the listing could not even examine, may be readable now, and
- its lake files are all still in the snapshot this write replaces (an erasure or a rollback may have
  rewritten them).
Every other file is read now, into one new group: new files, changed files, and the unchanged files of a group
that is not kept (a group's lake files are replaced whole, so repairing a broken file re-reads the files read
with it once; splitting them apart when it broke would have cost that read at once, repaired or not). Entries
the listing could not examine (a dangling link, an unlistable folder) have no fingerprint: they make a group of
their own, never kept and re-made on each run (one quarantine row each, no data), so that they never stop the
readable files' group from being kept. A vanished file's rows leave with its group. The figures reconciliation
audits are the sum of the kept groups' and the new reads': what a full read gives.

Nothing is kept when anything that decides what a line becomes has changed since: the register of erased
people, the table's columns, the landing root, or this format (`index_key`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from .reader import Listing, SourceStats

INDEX_FORMAT = 2  # 2: ctime in local fingerprints, groups record their failures
# the SourceStats figures a group records (the listing's ignored and skipped entries are the run's own)
GROUP_FIGURES = ("files", "unreadable_files", "lines", "rows", "rejected", "blank_lines", "erased", "fast_lines")
# Causes of an unreadable file (reader.unreadable_cause) that the same fingerprint always meets again: the
# content's (size, mtime and ETag change with it) and, locally, the file's permission (chmod, chown and ACLs
# change its ctime). On S3 no read is refused on a listed object: a 403 on GET stops the run (StoreError, see
# S3Store.open), so access there is never a recorded cause. Others (an I/O error, removed after the listing)
# are read again on the next run.
COVERED = ("not gzip data", "corrupt gzip data", "gzip data cut short", "permission denied")


@dataclass
class Group:
    """What one read of some landing files made."""

    files: dict[str, str]  # landing path -> its fingerprint before the read
    lake_files: dict[str, list[str]]  # table part ("data", "rejected") -> lake-relative Parquet files
    figures: dict = field(default_factory=dict)  # GROUP_FIGURES of SourceStats
    failures: dict[str, str] = field(default_factory=dict)  # entry that could not be read to its end -> why

    @classmethod
    def of_read(cls, fingerprints: dict[str, str], lake_files: dict[str, list[str]], stats: SourceStats) -> Group:
        return cls(dict(fingerprints), lake_files, figures_of(stats))

    def steady(self) -> bool:
        """Whether a read of the same files would fail the same way: each unreadable entry is a fingerprinted
        file of the group that failed for a cause its fingerprint covers."""
        return all(
            path in self.files and covered(self.failures.get(path, "")) for path in self.figures["unreadable_files"]
        )


@dataclass
class Plan:
    """What a run keeps and what it reads."""

    kept: list[Group]
    read: Listing  # the files to read now
    unexamined: dict[str, str]  # the entries the listing could not examine -> why: a group of their own
    fingerprints: dict[str, str]  # of the files to read, taken before reading
    new: list[str] = field(default_factory=list)  # paths no kept or dropped group had
    changed: list[str] = field(default_factory=list)  # paths whose fingerprint changed
    vanished: list[str] = field(default_factory=list)  # paths of dropped groups that are not listed any more


def index_key(landing_root: str, schemas: dict[str, pa.Schema], erased_people: list[str]) -> str:
    """Groups recorded under another key are never kept: their lines would be judged differently now."""
    what = [INDEX_FORMAT, landing_root, {p: str(s) for p, s in sorted(schemas.items())}, sorted(erased_people)]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def covered(cause: str) -> bool:
    """Whether an unreadable file's cause (its quarantine reason after "unreadable_file: ") is in COVERED."""
    return cause.split(" after line ", 1)[0] in COVERED


def _fingerprint(store, path: str) -> str:
    try:
        return store.fingerprint(path)
    except OSError:  # gone or not examinable now: read it, and the reader says what became of it
        return ""


def plan(store, listing: Listing, previous_extra: dict | None, live: set[str], key: str) -> Plan:
    """Split `listing` into groups of `previous_extra` (the replaced snapshot's extra) to keep and files to read;
    `live` is the replaced snapshot's lake files (every part)."""
    listed = set(listing.files)
    recorded = []
    if previous_extra and previous_extra.get("landing_index_key") == key:
        recorded = [Group(**g) for g in previous_extra.get("landing_groups", [])]
    now = {path: _fingerprint(store, path) for path in listing.files}
    kept: list[Group] = []
    dropped: list[Group] = []
    for group in recorded:
        same = all(path in listed and now[path] == fp != "" for path, fp in group.files.items())
        whole = all(f in live for files in group.lake_files.values() for f in files)
        (kept if same and whole and group.steady() else dropped).append(group)
    taken = {path for group in kept for path in group.files}
    before = {path: fp for group in dropped for path, fp in group.files.items()}
    to_read = [path for path in listing.files if path not in taken]
    return Plan(
        kept=kept,
        read=Listing(files=to_read),
        unexamined=dict(listing.unreadable),
        fingerprints={path: now[path] for path in to_read},
        new=[p for p in to_read if p not in before],
        changed=[p for p in to_read if p in before and before[p] != now[p]],
        vanished=sorted(p for p in before if p not in listed),
    )


def total(groups: list[Group], listing: Listing) -> SourceStats:
    """The figures of a full read of `listing`: the groups' figures added up."""
    stats = SourceStats(ignored_files=list(listing.ignored), skipped_files=list(listing.skipped))
    for group in groups:
        stats.add(stats_of(group.figures))
    stats.unreadable_files.sort()  # in path order, as one read of them all lists them
    return stats


def figures_of(stats: SourceStats) -> dict:
    """The GROUP_FIGURES of a read."""
    return {k: getattr(stats, k) for k in GROUP_FIGURES}


def stats_of(figures: dict) -> SourceStats:
    """The read whose GROUP_FIGURES are `figures` (figures_of's inverse; other keys are not figures)."""
    return SourceStats(**{k: figures[k] for k in GROUP_FIGURES if k in figures})


def record(groups: list[Group], key: str) -> dict:
    """The extra that lets the next run keep these groups."""
    return {"landing_index_key": key, "landing_groups": [asdict(g) for g in groups]}
