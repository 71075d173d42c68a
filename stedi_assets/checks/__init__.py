"""The checks a table can declare in its zone's schema.py, by name.

Blocking checks gate publication: a snapshot whose blocking check fails with ERROR is never
published, and nothing downstream runs. WARN results never block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import consent, counts, integrity, memo, volume
from .audit import Audit, Outcome


@dataclass(frozen=True)
class CheckDef:
    name: str
    run: Callable[[Audit], Outcome]
    blocking: bool
    reads: tuple[str, ...] = ()  # tables it reads beyond the audited table and its inputs
    # Figures that depend only on the audited snapshot's files, recorded with it (`checked` in its extra) so that
    # the next snapshot, if it keeps those files, starts from them.
    recorded: bool = False
    # It reads the lake only through its audit's files, extra values and consent register: a write's audit may
    # reuse its outcome when those are the same as when it last ran (checks/memo.py).
    reusable: bool = False

    @property
    def description(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


CHECKS: dict[str, CheckDef] = {
    c.name: c
    for c in (
        CheckDef("schema", integrity.schema, blocking=True, reusable=True),
        CheckDef("consent", consent.consent, blocking=True, reads=("customer_landing",), reusable=True),
        CheckDef("no_pii", consent.no_pii, blocking=True, reusable=True),
        CheckDef("erasure", consent.erasure, blocking=True),
        CheckDef("reconciliation", counts.reconciliation, blocking=True, reusable=True),
        CheckDef("row_count", counts.row_count, blocking=True, reusable=True),
        CheckDef("quarantine_complete", counts.quarantine_complete, blocking=True, reusable=True),
        CheckDef("volume", volume.volume, blocking=True),
        CheckDef("unique_customers", integrity.unique_customers, blocking=True, reusable=True),
        CheckDef("distinct_rows", integrity.distinct_rows, blocking=True, recorded=True),
        CheckDef(
            "ambiguous_readings",
            integrity.ambiguous_readings,
            blocking=False,
            reads=("customer_landing", "step_trainer_landing", "accelerometer_landing"),
            reusable=True,
        ),
    )
}


def run_checks(audit: Audit, names) -> dict[str, Outcome]:
    """The outcome of each named check; a write's audit reuses those that read what they read before."""
    return {
        name: memo.outcome(audit, name, CHECKS[name].run)
        if audit.from_recorded and CHECKS[name].reusable
        else CHECKS[name].run(audit)
        for name in names
    }
