"""Counting checks: nothing lost at landing, and row counts that only a fan-out bug could break."""

from __future__ import annotations

from ..zones.landing.reader import BOM, open_landing_file
from ..zones.landing.schema import LANDING_TABLES
from .audit import Audit, Outcome, failed, passed


def count_nonblank_lines(store, path: str) -> int:
    """Non-blank physical lines of a landing file, counted without the reader's code path."""
    with open_landing_file(store, path) as stream:
        data = stream.read()
    lines = data.split(b"\n")
    if lines and lines[0].startswith(BOM):
        lines[0] = lines[0][len(BOM) :]
    return sum(1 for line in lines if line.strip())


def reconciliation(audit: Audit) -> Outcome:
    """valid + rejected = non-blank landing lines, for exactly the files the snapshot read."""
    files: dict[str, int] = audit.extra.get("landing_files", {})
    changed = [p for p, size in files.items() if not audit.landing.exists(p) or audit.landing.size(p) != size]
    if changed:
        return failed(changed_files=changed[:20], note="landing files changed since this snapshot was read")
    lines = sum(count_nonblank_lines(audit.landing, p) for p in files)
    valid, rejected = audit.rows(audit.spec.name), audit.rows(audit.spec.name, "rejected")
    metadata = {"nonblank_lines": lines, "valid_rows": valid, "rejected_rows": rejected, "files": len(files)}
    return passed(**metadata) if valid + rejected == lines else failed(**metadata)


def row_count(audit: Audit) -> Outcome:
    """Never more rows than the table it narrows (ERROR); empty while its inputs are not (WARN)."""
    name = audit.spec.name
    rows = audit.rows(name)
    metadata: dict = {"rows": rows}
    if audit.spec.at_most:
        bound = audit.rows(audit.spec.at_most)
        metadata[f"rows_of_{audit.spec.at_most}"] = bound
        if rows > bound:
            return failed(**metadata)
    if audit.spec.zone == "landing":
        inputs_nonempty = sum(audit.extra.get("landing_files", {}).values()) > 0
    else:
        inputs_nonempty = all(audit.rows(n) > 0 for n in audit.inputs)
    if rows == 0 and inputs_nonempty:
        return failed("WARN", **metadata, note="empty although its inputs have rows")
    return passed(**metadata)


def quarantine_complete(audit: Audit) -> Outcome:
    """The quarantine holds exactly the rejected lines of the landing snapshots, each with a reason."""
    expected = sum(audit.rows(t.name, "rejected") for t in LANDING_TABLES)
    name = audit.spec.name
    rows = audit.rows(name)
    no_reason = audit.scalar(f"SELECT count(*) FROM {name} WHERE reason IS NULL OR reason = ''", (name,))
    metadata = {"rows": rows, "rejected_in_landing_snapshots": expected, "rows_without_reason": int(no_reason)}
    return passed(**metadata) if rows == expected and no_reason == 0 else failed(**metadata)
