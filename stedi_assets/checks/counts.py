"""Counting checks: nothing lost at landing, and row counts that only a fan-out bug could break."""

from __future__ import annotations

from ..zones.landing.schema import LANDING_TABLES
from .audit import Audit, Outcome, failed, passed


def reconciliation(audit: Audit) -> Outcome:
    """valid + rejected = the non-blank lines the reader read, plus one row per file it could not read."""
    lines = audit.extra_value("nonblank_lines")
    if lines is None:
        return failed("WARN", note="this snapshot records no reader counts (an older version wrote it)")
    # the landing files are read once, by the reader: it counted their lines as it read them
    unreadable = len(audit.extra_value("unreadable_files", []))
    valid, rejected = audit.rows(audit.spec.name), audit.rows(audit.spec.name, "rejected")
    metadata = {
        "nonblank_lines": lines,
        "unreadable_files": unreadable,
        "valid_rows": valid,
        "rejected_rows": rejected,
        "files": len(audit.extra_value("landing_files", {})),
    }
    return passed(**metadata) if valid + rejected == lines + unreadable else failed(**metadata)


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
        inputs_nonempty = sum(audit.extra_value("landing_files", {}).values()) > 0
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
