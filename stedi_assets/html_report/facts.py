"""The figures `stedi report` shows, read from one view of the lake (and the latest complete run of each other
policy): rows per table, who the rules kept out and why, every check's result now, and masked samples.

Nothing here writes to the lake; the checks run read-only on the view's snapshots, as `stedi check` runs them.
Personal data never leaves this module: sample values of columns tagged pii (and raw landing lines) are
replaced by MASKED here, before anything is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..checks import CHECKS
from ..checks.audit import Audit, needs_pseudonym_key
from ..contract import POLICIES
from ..engines.duckdb_engine import attach_parquet, connect
from ..privacy.keys import MissingKey, pseudonym_key
from ..privacy.report import coverage, erased_people
from ..storage.lake import Lake, Snapshot
from ..storage.runs import complete_runs, view_of_run
from ..storage.stores import StoreError
from ..zones import TABLES
from ..zones.landing.schema import LANDING_TABLES
from ..zones.sql import dependencies

SAMPLE_ROWS = 5


class Masked:
    """What a sample holds instead of a personal value (a marker no data value can be mistaken for)."""

    def __repr__(self) -> str:
        return "MASKED"


MASKED = Masked()

# The funnel of each kind of record, landing to curated: the tables it passes through, in order.
FUNNELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("customers", ("customer_landing", "customer_trusted", "customer_curated")),
    ("accelerometer readings", ("accelerometer_landing", "accelerometer_trusted", "machine_learning_curated")),
    ("step-trainer readings", ("step_trainer_landing", "step_trainer_trusted", "machine_learning_curated")),
)


@dataclass(frozen=True)
class View:
    """One consistent lake: a complete run's snapshots (run_id), or each table's current one (run_id None)."""

    run_id: str | None
    policy: str  # strict, rubric, mixed, or any (landing only)
    snapshots: Mapping[str, Snapshot]

    @property
    def label(self) -> str:
        return f"{self.policy}, run {self.run_id[:8]}" if self.run_id else f"{self.policy}, current snapshots"

    def rows(self, table: str) -> int | None:
        snap = self.snapshots.get(table)
        return None if snap is None else snap.rows.get("data", 0)


def policy_of(snapshots: Mapping[str, Snapshot]) -> str:
    policies = {s.policy for s in snapshots.values() if s.policy}
    if len(policies) > 1:
        return "mixed"
    return policies.pop() if policies else "any"


def views(lake: Lake, run_id: str | None, snapshots: Mapping[str, Snapshot]) -> list[View]:
    """The view asked for, then the latest complete run of each policy it does not show."""
    found = [View(run_id, policy_of(snapshots), snapshots)]
    for _, run in complete_runs(lake):  # newest first
        if {v.policy for v in found} >= set(POLICIES):
            break
        if run == run_id:
            continue
        other = view_of_run(lake, run)
        policy = policy_of(other)
        if policy in POLICIES and policy not in {v.policy for v in found}:
            found.append(View(run, policy, other))
    return found


@dataclass(frozen=True)
class Exclusion:
    """How many records of a landing population a rule kept out of trusted and curated."""

    reason: str  # no_consent, before_consent, ambiguous_serial, erased, rejected
    label: str
    count: int
    population: int  # the landing population it is counted in
    unit: str


def _landing(view: View) -> list[Snapshot]:
    return [view.snapshots[t.name] for t in LANDING_TABLES if t.name in view.snapshots]


def exclusions(lake: Lake, view: View) -> list[Exclusion]:
    """Who each rule kept out in `view`, as counted by `stedi audit` (privacy/report.py); a reason whose
    tables the view lacks, or that its policy does not apply (before consent: strict only), is left out."""
    by_table = {c.table.split(".", 1)[1]: c for c in coverage(lake, dict(view.snapshots))}
    found = []
    if "customer_trusted" in by_table and "customer_landing" in by_table:
        found.append(
            Exclusion(
                "no_consent",
                "no research consent",
                by_table["customer_trusted"].no_consent or 0,
                by_table["customer_landing"].covered,
                "customers",
            )
        )
    accelerometer = by_table.get("accelerometer_trusted")
    if accelerometer is not None and accelerometer.before_consent is not None:
        found.append(
            Exclusion(
                "before_consent",
                "reading taken before the consent date",
                accelerometer.before_consent,
                view.rows("accelerometer_landing") or 0,
                "accelerometer readings",
            )
        )
    steps = by_table.get("step_trainer_trusted")
    if steps is not None and steps.ambiguous is not None:
        found.append(
            Exclusion(
                "ambiguous_serial",
                "device serial shared by several customers",
                steps.ambiguous,
                view.rows("step_trainer_landing") or 0,
                "step-trainer readings",
            )
        )
    landing = _landing(view)
    if landing:
        lines = sum(s.rows.get("data", 0) + s.rows.get("rejected", 0) for s in landing)  # non-blank lines
        erased = sum(s.extra.get("erased_lines", 0) for s in landing)  # quarantined with reason `erased`
        invalid = sum(s.rows.get("rejected", 0) for s in landing) - erased
        found.append(Exclusion("erased", "person erased", erased, lines, "landing lines"))
        found.append(Exclusion("rejected", "invalid landing line", invalid, lines, "landing lines"))
    return found


@dataclass(frozen=True)
class Rejection:
    source: str
    reason: str  # the quarantine's reason with the values it quotes replaced by "…"
    count: int


# Quarantine reasons quote the offending number or position ("timestamp is 1.5, not a whole number", "line 1
# column 87"); the chart groups by the kind of reason.
_QUOTED = re.compile(r"\b(is|byte|line|column|char) -?\d[\w.+-]*")


def reason_kind(reason: str) -> str:
    return _QUOTED.sub(r"\1 …", reason)


def rejections(lake: Lake, view: View) -> list[Rejection]:
    """The view's quarantine counted by source and kind of reason, largest first."""
    snap = view.snapshots.get("rejected")
    if snap is None:
        return []
    with connect(lake.store.duckdb_setup()) as con:
        attach_parquet(con, {"rejected": [lake.uri(f) for f in snap.files["data"]]})
        grouped = con.execute("SELECT source, reason, count(*) FROM rejected GROUP BY ALL").fetchall()
    counts: dict[tuple[str, str], int] = {}
    for source, reason, count in grouped:
        key = (source, reason_kind(reason or "(no reason)"))
        counts[key] = counts.get(key, 0) + count
    return [Rejection(s, r, n) for (s, r), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


# A check's status -> how a tally says it.
STATUSES = {"PASS": "passed", "FAIL": "failed", "WARN": "warned", "NOT RUN": "not run"}


@dataclass(frozen=True)
class CheckResult:
    table: str  # <zone>.<table>
    check: str
    blocking: bool
    status: str  # one of STATUSES
    detail: str


def tally(checks: list[CheckResult]) -> dict[str, int]:
    return {status: sum(c.status == status for c in checks) for status in STATUSES}


# Our own errors say what is missing without quoting data; any other error (a KeyError's key could be a
# value from the data) is named by its type only.
_EXPLAINED = (MissingKey, StoreError, LookupError)


def _not_run(err: Exception) -> str:
    if isinstance(err, _EXPLAINED) and not isinstance(err, KeyError):
        return str(err).splitlines()[0]
    return f"could not run ({type(err).__name__})"


def check_results(lake: Lake, view: View) -> list[CheckResult]:
    """Every check of every table in the view, run now on its snapshots (read-only)."""
    results = []
    for spec in TABLES:
        snap = view.snapshots.get(spec.name)
        if snap is None:
            continue
        policy = snap.policy or "strict"  # landing tables have none: their columns are the same in both
        try:
            key = pseudonym_key(lake, create=False) if needs_pseudonym_key(spec, policy) else None
            audit = Audit(
                spec=spec,
                policy=policy,
                files=snap.files,
                extra=snap.extra,
                lake=lake,
                inputs={name: view.snapshots[name] for name in dependencies(spec)},
                pseudonym_key=key,
                lookup=view.snapshots.__getitem__,
            )
        except Exception as err:  # e.g. no pseudonym key: none of the table's checks can run; say so for each
            results += [
                CheckResult(snap.qualified_name, n, CHECKS[n].blocking, "NOT RUN", _not_run(err)) for n in spec.checks
            ]
            continue
        for name in spec.checks:
            results.append(_run_check(audit, snap.qualified_name, name))
    return results


def _run_check(audit: Audit, table: str, name: str) -> CheckResult:
    check = CHECKS[name]
    try:
        outcome = check.run(audit)
    except Exception as err:  # one check that cannot run must not hide the others
        return CheckResult(table, name, check.blocking, "NOT RUN", _not_run(err))
    status = "PASS" if outcome.passed else ("FAIL" if outcome.severity == "ERROR" else "WARN")
    detail = ", ".join(f"{k}={v}" for k, v in outcome.metadata.items() if k != "expected")
    return CheckResult(table, name, check.blocking, status, detail)


@dataclass(frozen=True)
class Sample:
    table: str  # <zone>.<table>
    columns: list[str]
    masked: frozenset[str]  # columns whose values are shown as MASKED
    rows: list[list]
    total: int


def samples(lake: Lake, view: View, limit: int = SAMPLE_ROWS) -> list[Sample]:
    """The first `limit` rows of every table of the view, personal values masked."""
    found = []
    for spec in TABLES:
        snap = view.snapshots.get(spec.name)
        if snap is None:
            continue
        with connect(lake.store.duckdb_setup()) as con:
            attach_parquet(con, {"t": [lake.uri(f) for f in snap.files["data"]]})
            cursor = con.execute(f"SELECT * FROM t LIMIT {int(limit)}")
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
        masked = frozenset(c for c in columns if c in spec.pii_columns)
        shown = [
            [MASKED if c in masked and v is not None else v for c, v in zip(columns, row, strict=True)] for row in rows
        ]
        found.append(Sample(snap.qualified_name, columns, masked, shown, snap.rows.get("data", 0)))
    return found


@dataclass(frozen=True)
class Facts:
    lake: str
    views: list[View]  # the view asked for first
    exclusions: dict[str, list[Exclusion]]  # view label -> its exclusions
    erased_people: int
    rejections: list[Rejection]
    checks: list[CheckResult]
    samples: list[Sample]


def gather(lake: Lake, run_id: str | None, snapshots: Mapping[str, Snapshot]) -> Facts:
    found = views(lake, run_id, snapshots)
    main = found[0]
    return Facts(
        lake=lake.root,
        views=found,
        exclusions={v.label: exclusions(lake, v) for v in found},
        erased_people=erased_people(lake),
        rejections=rejections(lake, main),
        checks=check_results(lake, main),
        samples=samples(lake, main),
    )
