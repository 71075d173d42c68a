"""`stedi audit` (and `stedi report`): for each table of a view of the lake, whom it covers and whom the rules
kept out."""

from __future__ import annotations

from dataclasses import dataclass

from ..checks.audit import Audit
from ..checks.integrity import ambiguous_readings
from ..identity import identity_key
from ..storage.lake import Lake, Snapshot
from ..storage.runs import default_view
from ..zones import TABLES
from .register import ErasureRegister

# How a table names its customers, per policy (None: it holds no customer).
_COVERAGE = {
    "customer_landing": "identity_key(email)",
    "customer_trusted": "identity_key(email)",
    "customer_curated": "identity_key(email)",
    "accelerometer_landing": "identity_key(user)",
    "accelerometer_trusted": "identity_key(user)",
    "step_trainer_landing": "serialNumber",
}
_COVERAGE_BY_POLICY = {
    ("step_trainer_trusted", "strict"): "customer_key",
    ("step_trainer_trusted", "rubric"): "serialNumber",
    ("machine_learning_curated", "strict"): "customer_id",
    ("machine_learning_curated", "rubric"): "serialNumber",
}


@dataclass(frozen=True)
class Coverage:
    """Whom one table's snapshot covers, and how many the rules kept out (None: does not apply)."""

    table: str  # <zone>.<table>
    policy: str | None
    covered: int
    unit: str  # what `covered` counts: customers or devices
    no_consent: int | None = None  # customers without research consent
    before_consent: int | None = None  # accelerometer readings taken before the consent date (strict)
    ambiguous: int | None = None  # step readings no single customer can be given
    erased_at_landing: int | None = None  # landing lines dropped because their person was erased


def coverage(lake: Lake, view: dict[str, Snapshot]) -> list[Coverage]:
    """The coverage of every table of `view` (table name -> snapshot), quarantine left out, in zone order."""
    found = []
    for spec in TABLES:
        if spec.name == "rejected" or spec.name not in view:
            continue
        snap = view[spec.name]
        policy = snap.policy or "strict"
        audit = Audit(spec=spec, policy=policy, files=snap.files, extra=snap.extra, lake=lake, lookup=view.__getitem__)
        column = _COVERAGE.get(spec.name) or _COVERAGE_BY_POLICY[(spec.name, policy)]
        covered = audit.scalar(f"SELECT count(DISTINCT {column}) FROM {spec.name}", (spec.name,))
        unit = "devices" if column == "serialNumber" else "customers"
        if spec.zone == "landing":
            found.append(
                Coverage(
                    snap.qualified_name, snap.policy, covered, unit, erased_at_landing=snap.extra.get("erased_lines")
                )
            )
            continue
        consenting = (
            audit.register.consenting_keys()
            if policy == "strict"
            else {identity_key(e) for e in audit.register.rubric_emails()}
        )
        before = None
        if policy == "strict" and spec.name in ("accelerometer_trusted", "machine_learning_curated"):
            before = audit.scalar(
                """
                SELECT count(*) FROM accelerometer_landing a JOIN consent c
                  ON identity_key(a.user) = c.customer_key WHERE a.timestamp < c.since""",
                ("accelerometer_landing",),
                consent=audit.register.strict_table(),
            )
        ambiguous = None
        if spec.name == "step_trainer_trusted":
            ambiguous = ambiguous_readings(audit).metadata["ambiguous_readings"]
        found.append(
            Coverage(
                snap.qualified_name,
                snap.policy,
                covered,
                unit,
                no_consent=audit.register.winners.num_rows - len(consenting),
                before_consent=before,
                ambiguous=ambiguous,
            )
        )
    return found


def erased_people(lake: Lake) -> int:
    return len(ErasureRegister.load(lake).identities)


COLUMNS = (
    "table",
    "policy",
    "covers",
    "excluded: no consent",
    "readings before consent",
    "ambiguous readings",
    "dropped at landing: erased",
)


def audit_rows(lake: Lake) -> list[tuple]:
    """`stedi audit`'s table (COLUMNS) over the lake readers see by default; blank where a figure does not apply."""
    found = coverage(lake, default_view(lake)[1])

    def cell(value: int | None) -> int | str:
        return "" if value is None else value

    rows: list[tuple] = [
        (
            c.table,
            c.policy or "",
            f"{c.covered:,} {c.unit}",
            cell(c.no_consent),
            cell(c.before_consent),
            cell(c.ambiguous),
            cell(c.erased_at_landing),
        )
        for c in found
    ]
    erased_lines = sum(c.erased_at_landing or 0 for c in found)
    rows.append(("(erasure register)", "", f"{erased_people(lake)} people erased", "", "", "", erased_lines))
    return rows
