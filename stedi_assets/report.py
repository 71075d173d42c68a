"""Plain-text reports for the CLI: row counts per zone and check results."""

from __future__ import annotations

from collections.abc import Sequence

from .storage.lake import Lake, TableNotPublished
from .storage.runs import pinned, produced_by
from .zones import TABLES


def print_table(columns: Sequence[str], rows: Sequence[Sequence], max_cell: int | None = None) -> bool:
    """Print aligned columns under their headers; cells longer than `max_cell` characters are cut
    with "…" (a quarantined line would make every row hundreds of characters wide). Returns whether
    any cell was cut."""
    if not all(str(c).strip() for c in columns):
        raise ValueError(f"every column needs a header: {list(columns)}")
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    limit = max_cell or max((len(v) for row in cells for v in row), default=0)
    cut = any(len(v) > limit for row in cells for v in row)
    cells = [[v if len(v) <= limit else v[: limit - 1] + "…" for v in row] for row in cells]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(
            "  ".join(
                v.rjust(w) if v.replace(",", "").lstrip("-").isdigit() else v.ljust(w)
                for v, w in zip(row, widths, strict=False)
            ).rstrip()
        )
    return cut


def print_zones(lake: Lake, result) -> None:
    """Rows per table as this run left them: what it committed, else the snapshot it read (or current)."""
    rows = []
    for spec in TABLES:
        snap = produced_by(lake, spec.name, result.run_id)
        status = "updated" if snap is not None else "unchanged"
        if snap is None:
            try:
                snap = pinned(lake, spec.name, result.run_id, None)
            except TableNotPublished:
                rows.append((spec.zone, spec.name, "-", "-", "", "not committed"))
                continue
        rows.append(
            (
                spec.zone,
                spec.name,
                f"{snap.rows.get('data', 0):,}",
                f"{snap.rows['rejected']:,}" if "rejected" in snap.rows else "",
                snap.policy or "",
                status,
            )
        )
    print_table(("zone", "table", "rows", "rejected", "policy", "this run"), rows)
    print()


def print_checks(result) -> int:
    """Print every check evaluation; return how many failed with ERROR severity."""
    rows, failed = [], 0
    for e in sorted(result.get_asset_check_evaluations(), key=lambda e: (e.asset_key.path, e.check_name)):
        severity = e.severity.value if e.severity else "ERROR"
        status = "PASS" if e.passed else ("FAIL" if severity == "ERROR" else "WARN")
        failed += status == "FAIL"
        detail = ", ".join(f"{k}={v.value}" for k, v in e.metadata.items() if k != "expected")
        rows.append((".".join(e.asset_key.path), e.check_name, status, detail[:100]))
    print_table(("table", "check", "result", "detail"), rows)
    print(
        f"\n{len(rows)} checks: {sum(r[2] == 'PASS' for r in rows)} passed, {failed} failed, "
        f"{sum(r[2] == 'WARN' for r in rows)} warned"
    )
    return failed


def root_cause(error) -> str:
    """`Type: message` of the exception at the bottom of a Dagster error chain (Dagster wraps every
    step's exception in DagsterExecutionStepExecutionError, whose own text says nothing)."""
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    text = lines[-1] if lines else error.cls_name
    kind, sep, rest = text.partition(": ")
    return f"{kind.rsplit('.', 1)[-1]}: {rest}" if sep and " " not in kind else text


def print_failures(result) -> None:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            print(f"step {event.step_key} failed: {root_cause(error) if error else 'failed'}")
