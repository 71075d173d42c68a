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
        """The SELECT without trailing comments or semicolon, ready to embed (in `COPY (...)`, a last line
        that is a comment would swallow the closing parenthesis)."""
        lines = self.text.strip().splitlines()
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()
        return "\n".join(lines).rstrip().rstrip(";")


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


# What makes a SELECT combine its rows across rows of its input: then a rule's result over grown input is not
# its result over the old input plus its result over the rows added.
_WHOLE_SET_CLAUSES = ("distinct", "group", "having", "qualify", "limit", "offset")


def linear_in(rule: SqlRule, relation: str) -> bool:
    """True if `rule`'s result over `relation` grown by some rows is exactly its result before plus its result
    over just the rows added, every other relation unchanged: rule(R + D) = rule(R) + rule(D), as bags.

    Decided from the SQL's shape, conservatively: the rule is one SELECT (no set operation) that reads
    `relation` once, in its own FROM or as an inner join of it, and has no DISTINCT, GROUP BY, HAVING,
    QUALIFY, LIMIT, OFFSET, window or aggregate function, nor a function that reads the clock or randomness.
    Each input row then yields its own output rows, whatever the other input rows are. A relation read by an
    ephemeral sub-rule, in a subquery (IN, EXISTS), or in an outer join that keeps unmatched rows of another
    relation is not linear (an added row can remove or change rows of the result): see `semi_join_on`."""
    tree = sqlglot.parse_one(rule.text, read="duckdb")
    return isinstance(tree, exp.Select) and _linear(tree, relation)


def _linear(select: exp.Select, relation: str) -> bool:
    occurrences = [t for t in select.find_all(exp.Table) if t.name == relation]
    if len(occurrences) != 1 or not _row_by_row(select):
        return False
    joins = select.args.get("joins") or []
    source = occurrences[0].parent
    if isinstance(source, exp.Join):
        if source.parent is not select or source.args.get("side") or source.args.get("kind") not in (None, "INNER"):
            return False
    elif not (isinstance(source, exp.From) and source.parent is select):
        return False
    return not any(j.args.get("side") in ("RIGHT", "FULL") for j in joins)  # they keep rows `relation` misses


def _row_by_row(select: exp.Select) -> bool:
    """No clause or function of this SELECT's own level combines its rows or reads the clock or randomness."""
    if any(select.args.get(clause) for clause in _WHOLE_SET_CLAUSES):
        return False
    whole_set = (exp.Window, exp.AggFunc, exp.Rand, exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime)
    return not any(node.find_ancestor(exp.Select) is select for node in select.find_all(*whole_set))


def semi_join_on(rule: SqlRule, relation: str) -> bool:
    """True if `rule` keeps the rows of one other table that match `relation` through `x IN (subquery)`, and
    x is a function of the output row: SELECT t.* (or columns of t, x's among them) FROM t WHERE ... AND
    x IN (SELECT ... FROM relation ...) AND ...

    Then, with every other relation unchanged, rule(R + D) = rule(R) + (rule(D) EXCEPT ALL rule(R)), as bags:
    - a row of t is kept over R + D if and only if it passes the other conditions and x is among the
      subquery's values over R or over D: the subquery is linear in `relation` (its rows over R + D are its
      rows over R and over D, and IN asks only whether x is among them), and the IN is one of the WHERE's
      AND-ed conditions (not under NOT or OR);
    - rows of t with equal output have equal x, so IN decides the same for all of them: each output value
      comes out as often as the rows passing the other conditions give it, or not at all, over R as over D.
      rule(D) EXCEPT ALL rule(R) is then exactly what is kept over R + D and not over R.
    Also conservative: one SELECT with one table in FROM and no join, its output `*`, `t.*` or plain columns,
    its own level row by row (`linear_in`'s conditions), `relation` read once, in that subquery."""
    tree = sqlglot.parse_one(rule.text, read="duckdb")
    if not isinstance(tree, exp.Select) or tree.args.get("joins") or not _row_by_row(tree):
        return False
    source = tree.args.get("from_")
    if source is None or not isinstance(source.this, exp.Table) or source.this.name == relation:
        return False
    occurrences = [t for t in tree.find_all(exp.Table) if t.name == relation]
    if len(occurrences) != 1:
        return False
    inner = occurrences[0].find_ancestor(exp.Select)
    if inner is None or not isinstance(inner.parent, exp.Subquery) or not _linear(inner, relation):
        return False
    test = inner.parent.parent
    if not isinstance(test, exp.In) or test.args.get("query") is not inner.parent:
        return False
    if not _determined_by_output(tree, test.this):
        return False
    node: exp.Expression = test
    while isinstance(node.parent, (exp.And, exp.Paren)):  # only AND-ed conditions up to the WHERE
        node = node.parent
    return isinstance(node.parent, exp.Where) and node.parent.parent is tree


def _determined_by_output(select: exp.Select, value: exp.Expression) -> bool:
    """Whether `value` (over the FROM table's columns) is the same for any two rows with the same output: the
    output is the whole row (`*` or `t.*`, without EXCLUDE or REPLACE), or holds every column `value` reads."""
    output = select.expressions
    if len(output) == 1 and output[0].is_star:
        star = output[0].find(exp.Star)
        return star is not None and not any(star.args.values())
    if not all(isinstance(e, exp.Column) and not e.is_star for e in output):
        return False
    shown = {(c.table, c.name) for c in output}
    used = list(value.find_all(exp.Column))
    return bool(used) and all((c.table, c.name) in shown for c in used)
