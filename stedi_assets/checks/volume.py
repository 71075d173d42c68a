"""The volume check: a write must not silently shrink a table, nor quietly lose landing files or lines.

A missing source folder once republished empty tables with every check passing, and a truncated landing
file silently dropped its rows. The yardstick is the table's published snapshot that the audited one
replaces (`Audit.baseline`); an audited snapshot records which one that was (`volume_baseline`) and whether
its run allowed a shrink (`shrink_allowed`), so a checks-only run judges it the same way.
"""

from __future__ import annotations

from ..storage.lake import Snapshot
from .audit import Audit, Outcome, failed, passed

LISTED = 20  # file names shown in the metadata, at most


def volume(audit: Audit) -> Outcome:
    """Rows down by over max_shrink, or no landing file left: ERROR unless allow_shrink; shorter landing files: WARN.

    Against the published snapshot the audited one replaces. Landing files that got shorter (fewer bytes, or
    fewer lines ingested, than when last read) or went are named, with both figures before and now.
    """
    baseline = audit.baseline
    if baseline is None:
        return passed(note="no published snapshot to compare with")
    if baseline.policy not in (None, audit.policy) and audit.spec.zone != "landing":
        # Another policy is another rule (strict keeps fewer readings than rubric, by design): not a loss of data.
        return passed(note=f"published snapshot was built with policy {baseline.policy}: not comparable")
    rows = audit.rows(audit.spec.name)
    before = _rows(audit, baseline)
    shrink = 1 - rows / before if before else 0.0
    problems: list[str] = []
    findings: dict = {}  # findings first in the metadata: one-line reports cut long details
    if shrink > audit.max_shrink:
        problems.append(f"{shrink:.0%} fewer rows than published (at most {audit.max_shrink:.0%})")
    read_before: dict[str, int] = baseline.extra.get("landing_files") or {}
    read_now: dict[str, int] | None = audit.extra.get("landing_files")
    if read_now is not None:  # a landing table: which of the files read last time got shorter, or went
        if read_before and not read_now:
            problems.append(f"no landing file left ({len(read_before)} read before)")
        smaller = [p for p, size in read_now.items() if p in read_before and size < read_before[p]]
        if smaller or not _keeps_every_file(audit, baseline):
            lines_before, lines_now = _lines_per_file(audit, baseline.files), _lines_per_file(audit, audit.files)
        else:  # every lake file of the baseline is still here: no landing file can have fewer lines ingested
            lines_before = lines_now = {}
        shorter = sorted(
            p
            for p, size in read_now.items()
            if p in read_before and (size < read_before[p] or lines_now.get(p, 0) < lines_before.get(p, 0))
        )
        gone = sorted(set(read_before) - set(read_now))
        if shorter:
            findings["shorter_files"] = [
                f"{p}: {read_before[p]:,} -> {read_now[p]:,} bytes, "
                f"{lines_before.get(p, 0):,} -> {lines_now.get(p, 0):,} lines ingested"
                for p in shorter[:LISTED]
            ]
            findings["shorter_files_count"] = len(shorter)
        if gone:
            findings["files_gone"] = gone[:LISTED]
            findings["files_gone_count"] = len(gone)
    figures = {
        "rows": rows,
        "published_rows": before,
        "shrink": round(shrink, 4),
        "max_shrink": audit.max_shrink,
        "published_snapshot": baseline.snapshot,
    }
    if problems:
        metadata = {"problems": problems, **findings, **figures}
        if _erasure_since(audit, baseline):
            # People erased since the published snapshot: their rows are meant to go, not lost.
            return failed("WARN", **metadata, note="an erasure since the published snapshot removed rows")
        if not (audit.allow_shrink or audit.extra.get("shrink_allowed")):
            return failed(**metadata)
        return failed("WARN", **metadata, note="published anyway: allow_shrink")
    if findings:
        return failed("WARN", **findings, **figures, note="landing files got shorter or went since last read")
    return passed(**figures)


def _erasure_since(audit: Audit, baseline: Snapshot) -> bool:
    """Whether an erasure was requested (pending or done) since `baseline` was committed."""
    from ..privacy.register import ErasureRegister

    return any(e.requested_at >= baseline.created_at for e in ErasureRegister.load(audit.lake).erasures)


def _rows(audit: Audit, snapshot: Snapshot) -> int:
    """Rows of another snapshot of the audited table, from its Parquet footers."""
    files = snapshot.files.get("data", [])
    return int(audit.scalar("SELECT count(*) FROM published", files={"published": files})) if files else 0


def _keeps_every_file(audit: Audit, baseline: Snapshot) -> bool:
    """Whether the audited snapshot holds every file of `baseline`, in each part (files never change in place)."""
    return all(set(files) <= set(audit.files.get(part, [])) for part, files in baseline.files.items())


def _lines_per_file(audit: Audit, files) -> dict[str, int]:
    """Lines ingested per landing file (rows plus rejected rows), from the lineage column source_file. An
    erasure removes rows and the same lines from the file alike, so only a file that lost lines differs."""
    parts = [part for part in ("data", "rejected") if files.get(part)]
    if not parts:
        return {}
    union = " UNION ALL ".join(f"SELECT source_file FROM {part}" for part in parts)
    rows = audit.query(
        f"SELECT source_file, count(*) FROM ({union}) GROUP BY source_file",
        files={part: list(files[part]) for part in parts},
    )
    return {path: int(n) for path, n in rows}
