"""The rules' DuckDB-dialect SQL as Spark SQL: sqlglot's transpiler plus the semantic fixes it does not make.

The SQL files are written once, in DuckDB's dialect. Spark runs them through `to_spark`, which parses
them with sqlglot (`read="duckdb"`), rewrites the constructs whose *meaning* differs between the two
engines, and prints Spark SQL (`write="spark"`). Every difference handled is listed here, and each has
a test of the SQL text in stedi_assets_tests/test_spark_translate.py (no JVM) and is run on Spark
against DuckDB in stedi_assets_tests/test_spark_parity.py.

    DuckDB                       Spark                                        by       why
    ---------------------------  -------------------------------------------  -------  ----------------------------
    user, timestamp, any name    `user`, `timestamp` (every name quoted)      sqlglot  keywords and functions
    ORDER BY x [ASC]             ORDER BY x NULLS LAST                        sqlglot  DuckDB sorts NULLs last,
                                                                                       Spark first
    'a\\b', 'it''s'              'a\\\\b', 'it\\'s'                            sqlglot  backslash escapes in Spark
    trim(x, chars)               TRIM(chars FROM x)                           sqlglot  argument order
    trim(BOTH ' ' FROM x)        TRIM(BOTH ' ' FROM x)                        as is    U+0020 on both
    sha256(b), encode(s)         SHA2(b, 256), ENCODE(s, 'utf-8')             sqlglot  names
    trim(x), ltrim(x), rtrim(x)  TRIM([LEADING|TRAILING] '<Zs>' FROM x)       here     DuckDB trims all Unicode
                                                                                       space separators (Zs),
                                                                                       Spark U+0020 only
    lower(x)                     LOWER(TRANSLATE(x, 'İΣ…', 'iσ…'))            here     Java lower-cases İ to i̇ and
                                                                                       a final Σ to ς, and knows
                                                                                       Unicode 13 only (Java 17)
    identity_key(x)              identity.IDENTITY_KEY_SQL of x, then the     here     a macro of the DuckDB
                                 lower/trim fixes above                                connections
    pseudonym(k)                 SHA2(CONCAT(UNHEX(opad), UNHEX(SHA2(CONCAT(  here     HMAC-SHA256 in plain SQL,
                                 UNHEX(ipad), ENCODE(k, 'UTF-8')), 256))),             no UDF
                                 256)
    zone.table                   `zone__table` AS `table`                     here     temp views are unqualified

Anything else the rules might use is refused (`NotPortable`) unless it is in `PORTABLE`: a construct
that both engines evaluate alike. Adding a function to the SQL therefore means adding it here, with a test.
"""

from __future__ import annotations

import hashlib

import sqlglot
from sqlglot import exp

from ..identity import IDENTITY_KEY_SQL

# Characters DuckDB's trim() removes when given no characters: Unicode category Zs (utf8proc's tables).
# Spark's TRIM(x) removes U+0020 only, so the translation names them. Verified against DuckDB by the tests.
UNICODE_SPACES = (
    "\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
)

# Where Spark's lower() (Java String.toLowerCase) and DuckDB's lower() (utf8proc, simple case mapping) differ,
# mapped to DuckDB's result. TRANSLATE runs first, so Spark never sees these characters:
#   U+0130 İ: Java gives "i̇" (two code points), DuckDB "i"; U+03A3 Σ: Java gives ς at the end of a word,
#   DuckDB always σ; and the capital letters of Unicode 14, which Java 17 (Unicode 13) leaves unchanged.
LOWER_FIXES: dict[str, str] = {
    "\u0130": "i",
    "\u03a3": "\u03c3",
    "\u2c2f": "\u2c5f",
    "\ua7c0": "\ua7c1",
    "\ua7d0": "\ua7d1",
    "\ua7d6": "\ua7d7",
    "\ua7d8": "\ua7d9",
    # Vithkuqi capitals U+10570..U+10595 (U+1057B, U+1058B, U+10593 are unassigned) -> +0x27
    **{chr(c): chr(c + 0x27) for c in range(0x10570, 0x10596) if c not in (0x1057B, 0x1058B, 0x10593)},
}

# Constructs both engines evaluate alike (checked by the parity tests); the rules may use only these.
PORTABLE: tuple[type[exp.Expression], ...] = (
    # query structure
    exp.Select,
    exp.From,
    exp.Join,
    exp.Where,
    exp.Group,
    exp.Having,
    exp.Order,
    exp.Ordered,
    exp.With,
    exp.CTE,
    exp.Union,
    exp.Except,  # EXCEPT ALL: a semi-join's append (builders.build_sql); a bag difference on both
    exp.Subquery,
    exp.Table,
    exp.TableAlias,
    exp.Alias,
    exp.Distinct,
    exp.Window,
    exp.Identifier,
    exp.Column,
    exp.Star,
    exp.Paren,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    # predicates and conditionals
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Exists,
    exp.Case,
    exp.If,
    exp.Coalesce,
    # functions (lower and trim are translated, see the table above)
    exp.RowNumber,
    exp.Count,
    exp.Sum,
    exp.Min,
    exp.Max,
    exp.Lower,
    exp.Trim,
)
# Engine-provided functions (exp.Anonymous in sqlglot's tree).
ENGINE_FUNCTIONS = ("pseudonym", "identity_key")

_PSEUDONYM_ARG = "__pseudonym_arg__"


class NotPortable(ValueError):
    """The SQL uses a construct without a tested Spark translation."""


def hmac_pads(key: bytes) -> tuple[str, str]:
    """(inner, outer) HMAC-SHA256 key pads as hex (RFC 2104), as duckdb_engine.define_pseudonym uses them."""
    block = key if len(key) <= 64 else hashlib.sha256(key).digest()
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block).hex(), bytes(b ^ 0x5C for b in block).hex()


def _substitute(template: exp.Expr, parameter: str, argument: exp.Expression) -> exp.Expression:
    """`template` with each column named `parameter` replaced by (a copy of) `argument`."""
    return template.transform(
        lambda node: argument.copy() if isinstance(node, exp.Column) and node.name == parameter else node
    )


def pseudonym_expression(argument: exp.Expression, key: bytes) -> exp.Expression:
    """hex HMAC-SHA256(key, UTF-8 of `argument`) as a Spark SQL expression (NULL for NULL)."""
    inner, outer = hmac_pads(key)
    template = sqlglot.parse_one(
        f"SHA2(CONCAT(UNHEX('{outer}'), UNHEX(SHA2(CONCAT(UNHEX('{inner}'), ENCODE({_PSEUDONYM_ARG}, 'UTF-8')),"
        " 256))), 256)",
        read="spark",
    )
    return _substitute(template, _PSEUDONYM_ARG, argument)


def _one_argument(call: exp.Anonymous) -> exp.Expression:
    if len(call.expressions) != 1:
        raise NotPortable(f"{call.sql('duckdb')}: {call.name} takes exactly one argument")
    return call.expressions[0]


def _expand_identity_key(node: exp.Expression) -> exp.Expression:
    # The macro's own body (DuckDB dialect), so that _fix_semantics then treats it like any lower/trim. The
    # argument is expanded first: transform does not walk into the node it gets back.
    if isinstance(node, exp.Anonymous) and node.name.lower() == "identity_key":
        argument = _one_argument(node).transform(_expand_identity_key)
        return _substitute(sqlglot.parse_one(IDENTITY_KEY_SQL, read="duckdb"), "x", argument)
    return node


def view_name(relation: str) -> str:
    """The Spark temp view of a relation name: `zone.table` becomes `zone__table`."""
    return relation.replace(".", "__")


def check_portable(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            if node.name.lower() not in ENGINE_FUNCTIONS:
                raise NotPortable(
                    f"{node.sql('duckdb')}: function {node.name} has no tested Spark translation "
                    "(see stedi_assets/engines/translate.py)"
                )
        elif not isinstance(node, PORTABLE):
            raise NotPortable(
                f"{node.sql('duckdb')}: {type(node).__name__} has no tested Spark translation "
                "(see stedi_assets/engines/translate.py)"
            )


def _fix_semantics(node: exp.Expression) -> exp.Expression:
    # Changed in place, so that the walk goes on into the node's arguments (lower(trim(x)) needs both).
    if isinstance(node, exp.Trim) and node.args.get("expression") is None:
        node.set("expression", exp.Literal.string(UNICODE_SPACES))
    elif isinstance(node, exp.Lower):
        node.set(
            "this",
            exp.Translate(
                this=node.this,
                from_=exp.Literal.string("".join(LOWER_FIXES)),
                to=exp.Literal.string("".join(LOWER_FIXES.values())),
            ),
        )
    return node


def _qualified_tables(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.args.get("db") is not None:
        renamed = exp.Table(this=exp.to_identifier(view_name(f"{node.args['db'].name}.{node.name}")))
        renamed.set("alias", node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name)))
        return renamed
    if isinstance(node, exp.Column) and node.args.get("db") is not None:  # zone.table.column -> table.column
        node = node.copy()
        node.set("db", None)
        return node
    return node


def to_spark(sql: str, *, pseudonym_key: bytes | None = None, portable_only: bool = True, pretty: bool = False) -> str:
    """Spark SQL for a DuckDB-dialect SELECT of the rules (see the module docstring for what changes).

    `portable_only` refuses constructs outside PORTABLE (the rules); ad-hoc queries may turn it off and
    rely on sqlglot alone.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    if portable_only:
        check_portable(tree)
    tree = tree.transform(_qualified_tables)
    tree = tree.transform(_expand_identity_key)
    tree = tree.transform(_fix_semantics)
    calls = [n for n in tree.find_all(exp.Anonymous) if n.name.lower() == "pseudonym"]
    if calls:
        if pseudonym_key is None:
            raise ValueError("the SQL calls pseudonym() but no pseudonym key was given")
        for call in calls:
            expanded = pseudonym_expression(_one_argument(call), pseudonym_key)
            if call is tree:
                tree = expanded
            else:
                call.replace(expanded)
    return tree.sql(dialect="spark", identify=True, pretty=pretty)
