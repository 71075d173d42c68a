"""`stedi audit`: for each table of the lake readers see (the latest complete run), whom it covers and whom
the rules kept out."""

from __future__ import annotations

from ..checks.audit import Audit
from ..checks.integrity import ambiguous_readings
from ..storage.lake import Lake
from ..storage.runs import default_view
from ..zones import TABLES
from .register import ErasureRegister

# How a table names its customers, per policy (None: it holds no customer).
_COVERAGE = {
    "customer_landing": "lower(trim(BOTH ' ' FROM email))",
    "customer_trusted": "lower(trim(BOTH ' ' FROM email))",
    "customer_curated": "lower(trim(BOTH ' ' FROM email))",
    "accelerometer_landing": "lower(trim(BOTH ' ' FROM user))",
    "accelerometer_trusted": "lower(trim(BOTH ' ' FROM user))",
    "step_trainer_landing": "serialNumber",
}
_COVERAGE_BY_POLICY = {
    ("step_trainer_trusted", "strict"): "customer_key",
    ("step_trainer_trusted", "rubric"): "serialNumber",
    ("machine_learning_curated", "strict"): "customer_id",
    ("machine_learning_curated", "rubric"): "serialNumber",
}


def audit_rows(lake: Lake) -> list[tuple]:
    register = ErasureRegister.load(lake)
    erased_at_landing = 0
    rows = []
    _, view = default_view(lake)
    for spec in TABLES:
        if spec.name == "rejected" or spec.name not in view:
            continue
        snap = view[spec.name]
        policy = snap.policy or "strict"
        audit = Audit(spec=spec, policy=policy, files=snap.files, extra=snap.extra, lake=lake, lookup=view.__getitem__)
        column = _COVERAGE.get(spec.name) or _COVERAGE_BY_POLICY[(spec.name, policy)]
        covered = audit.scalar(f"SELECT count(DISTINCT {column}) FROM {spec.name}", (spec.name,))
        # table cells: a count, or blank where it does not apply
        no_consent: int | str = ""
        before: int | str = ""
        ambiguous: int | str = ""
        if spec.zone != "landing":
            consenting = (
                audit.register.consenting()
                if policy == "strict"
                else {e.strip(" ").lower() for e in audit.register.rubric_emails}
            )
            no_consent = len(audit.register.winners) - len(consenting)
            if policy == "strict" and spec.name in ("accelerometer_trusted", "machine_learning_curated"):
                before = audit.scalar(
                    """
                    SELECT count(*) FROM accelerometer_landing a JOIN consent c
                      ON lower(trim(BOTH ' ' FROM a.user)) = c.customer_key WHERE a.timestamp < c.since""",
                    ("accelerometer_landing",),
                    consent=audit.register.strict_table(),
                )
            if spec.name == "step_trainer_trusted":
                ambiguous = ambiguous_readings(audit).metadata["ambiguous_readings"]
        else:
            erased_at_landing += snap.extra.get("erased_lines", 0)
        audit.close()
        unit = "devices" if column == "serialNumber" else "customers"
        rows.append(
            (
                snap.qualified_name,
                snap.policy or "",
                f"{covered:,} {unit}",
                no_consent,
                before,
                ambiguous,
                snap.extra.get("erased_lines", "") if spec.zone == "landing" else "",
            )
        )
    rows.append(("(erasure register)", "", f"{len(register.identities)} people erased", "", "", "", erased_at_landing))
    return rows


COLUMNS = (
    "table",
    "policy",
    "covers",
    "excluded: no consent",
    "readings before consent",
    "ambiguous readings",
    "dropped at landing: erased",
)
