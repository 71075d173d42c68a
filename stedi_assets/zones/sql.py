"""The rule of each derived table: one SELECT in `zones/<zone>/<table>[.<policy>].sql`.

A file without a policy suffix serves both policies. Files starting with `_` are ephemeral shared
sub-rules (like dbt's ephemeral models): other rules use them by name, nothing publishes them. The
tables a rule reads are found by parsing it, so the asset graph cannot drift from the SQL.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from ..contract import POLICIES, TableSpec

ZONES_DIR = Path(__file__).parent
PART_SUFFIX = "_rejected"  # `<table>_rejected` names the rejected part of a landing table


@dataclass(frozen=True)
class SqlRule:
    name: str
    path: Path
    text: str
    header: str  # the leading comment: the rule in words
    relations: tuple[str, ...]  # tables and ephemerals the SELECT reads
    functions: tuple[str, ...] = ()  # engine-provided functions it calls (e.g. pseudonym)

    @property
    def body(self) -> str:
        """The SELECT without comments or trailing semicolon, ready to embed."""
        return self.text.strip().rstrip(";")


def _find(name: str, policy: str) -> Path | None:
    for zone_dir in sorted(p for p in ZONES_DIR.iterdir() if p.is_dir()):
        for candidate in (zone_dir / f"{name}.{policy}.sql", zone_dir / f"{name}.sql"):
            if candidate.exists():
                return candidate
    return None


@functools.cache
def load_rule(name: str, policy: str) -> SqlRule | None:
    """The rule of table (or ephemeral) `name` under `policy`; None for tables built without SQL."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    path = _find(name, policy)
    if path is None:
        return None
    text = path.read_text()
    header = " ".join(line.lstrip("-").strip() for line in text.splitlines() if line.startswith("--"))
    tree = sqlglot.parse_one(text, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    relations = sorted({t.name for t in tree.find_all(exp.Table)} - ctes)
    functions = sorted({f.name.lower() for f in tree.find_all(exp.Anonymous)})
    return SqlRule(
        name=name, path=path, text=text, header=header, relations=tuple(relations), functions=tuple(functions)
    )


def ephemerals(rule: SqlRule, policy: str) -> list[SqlRule]:
    """The ephemeral sub-rules `rule` needs, dependencies first."""
    ordered: list[SqlRule] = []
    for relation in rule.relations:
        if relation.startswith("_"):
            sub = load_rule(relation, policy)
            if sub is None:
                raise FileNotFoundError(f"{rule.path.name} reads {relation}, which has no SQL file")
            ordered += [s for s in ephemerals(sub, policy) + [sub] if s not in ordered]
    return ordered


def input_tables(rule: SqlRule, policy: str) -> set[str]:
    """Published tables (not ephemerals) that `rule` reads, directly or through its ephemerals."""
    names = set()
    for r in [rule, *ephemerals(rule, policy)]:
        names |= {n.removesuffix(PART_SUFFIX) for n in r.relations if not n.startswith("_")}
    return names


def dependencies(spec: TableSpec) -> list[str]:
    """Input tables of `spec` under any policy: the asset graph is the same whatever the policy."""
    names: set[str] = set()
    for policy in POLICIES:
        rule = load_rule(spec.name, policy)
        if rule is not None:
            names |= input_tables(rule, policy)
    return sorted(names)


def rule_text(spec: TableSpec) -> str:
    """The rule in words for each policy (from the SQL files' headers), for descriptions and docs."""
    rules = {p: load_rule(spec.name, p) for p in POLICIES}
    if all(r is None for r in rules.values()):
        return ""
    if len({r.path for r in rules.values() if r}) == 1:
        return next(r for r in rules.values() if r).header
    return "\n\n".join(f"{r.header}" for p, r in rules.items() if r)
