"""DuckDB -> Spark SQL translation (stedi_assets/engines/translate.py): one test per dialect difference.

Fast and without a JVM: these tests pin the Spark SQL text and check the DuckDB side of each fix.
test_spark_parity.py runs the same translations on Spark and compares the results with DuckDB's.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

import duckdb
import pyarrow as pa
import pytest

from stedi_assets.contract import POLICIES
from stedi_assets.engines.translate import LOWER_FIXES, UNICODE_SPACES, NotPortable, hmac_pads, to_spark, view_name
from stedi_assets.identity import IDENTITY_KEY_SQL, identity_key
from stedi_assets.zones import TABLES
from stedi_assets.zones.sql import ephemerals, load_rule


def spark(sql: str, **kwargs) -> str:
    return to_spark(sql, **kwargs)


def duck(sql: str, *params):
    return duckdb.connect().execute(sql, list(params)).fetchone()[0]


# ------------------------------------------------------------------------------------ sqlglot's part


def test_every_identifier_is_quoted_so_spark_keywords_stay_columns():
    assert (
        spark("SELECT a.user, a.timestamp FROM accelerometer_landing a")
        == "SELECT `a`.`user`, `a`.`timestamp` FROM `accelerometer_landing` AS `a`"
    )


def test_ascending_order_gets_nulls_last_as_in_duckdb():
    # DuckDB sorts NULLs last in both directions; Spark sorts them first when ascending.
    assert (
        spark("SELECT row_number() OVER (ORDER BY v) FROM t")
        == "SELECT ROW_NUMBER() OVER (ORDER BY `v` NULLS LAST) FROM `t`"
    )
    assert (
        spark("SELECT row_number() OVER (ORDER BY v DESC) FROM t")
        == "SELECT ROW_NUMBER() OVER (ORDER BY `v` DESC) FROM `t`"
    )  # Spark's DESC default is NULLS LAST


def test_string_literals_are_escaped_for_spark():
    # DuckDB: backslash is an ordinary character and '' a quote; Spark: backslash escapes.
    assert spark(r"SELECT 'a\b', 'it''s' FROM t") == r"SELECT 'a\\b', 'it\'s' FROM `t`"


def test_trim_with_characters_takes_spark_argument_order():
    assert spark("SELECT trim(x, 'ab') FROM t") == "SELECT TRIM('ab' FROM `x`) FROM `t`"


def test_standard_trim_of_spaces_is_kept_as_written():
    # U+0020 only, as the identity key needs; no Unicode-space expansion here
    assert spark("SELECT lower(trim(BOTH ' ' FROM email)) FROM t").startswith(
        "SELECT LOWER(TRANSLATE(TRIM(BOTH ' ' FROM `email`), "
    )


def test_is_not_null_and_in_subquery_pass_through():
    assert (
        spark("SELECT x FROM t WHERE y IS NOT NULL AND x IN (SELECT x FROM u)")
        == "SELECT `x` FROM `t` WHERE NOT `y` IS NULL AND `x` IN (SELECT `x` FROM `u`)"
    )


def test_except_all_stays_a_bag_difference():
    # what a semi-join's append runs (builders.build_sql); EXCEPT without ALL is a set difference on both
    assert (
        spark("SELECT * FROM (SELECT x FROM t) EXCEPT ALL SELECT * FROM u")
        == "SELECT * FROM (SELECT `x` FROM `t`) EXCEPT ALL SELECT * FROM `u`"
    )
    assert duck("SELECT count(*) FROM (SELECT a.range FROM range(3) a, range(2) b EXCEPT ALL FROM range(3))") == 3


# ------------------------------------------------------------------------------------ our fixes


def test_trim_without_characters_removes_every_unicode_space_separator():
    out = spark("SELECT trim(x), ltrim(x), rtrim(x) FROM t")
    spaces = UNICODE_SPACES
    assert out == (
        f"SELECT TRIM('{spaces}' FROM `x`), TRIM(LEADING '{spaces}' FROM `x`), "
        f"TRIM(TRAILING '{spaces}' FROM `x`) FROM `t`"
    )


def test_unicode_spaces_are_exactly_what_duckdb_trim_removes():
    con = duckdb.connect()
    chars = pa.table({"c": [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]})  # noqa: F841 (read by name in SQL)
    trimmed = {r[0] for r in con.execute("SELECT c FROM chars WHERE trim(c || 'a' || c) = 'a'").fetchall()}
    assert trimmed == set(UNICODE_SPACES)
    assert set(UNICODE_SPACES) == {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"}


def test_lower_first_maps_the_characters_where_java_and_duckdb_differ():
    out = spark("SELECT lower(x) FROM t")
    assert out == (
        f"SELECT LOWER(TRANSLATE(`x`, '{''.join(LOWER_FIXES)}', '{''.join(LOWER_FIXES.values())}')) FROM `t`"
    )
    # the replacements are DuckDB's own lower-casing, and already lower case
    for upper, lower in LOWER_FIXES.items():
        assert duck("SELECT lower(?)", upper) == lower, hex(ord(upper))
        assert duck("SELECT lower(?)", lower) == lower
    assert duck("SELECT lower('ΟΔΥΣΣΕΥΣ')") == "οδυσσευσ"  # DuckDB: no final sigma
    assert duck("SELECT lower('İ')") == "i"  # DuckDB: no combining dot


def test_nested_functions_are_all_translated():
    out = spark("SELECT lower(trim(email)) FROM t")
    assert out.startswith("SELECT LOWER(TRANSLATE(TRIM('")


def test_pseudonym_becomes_hmac_sha256_in_plain_spark_sql():
    key = b"test-key"
    inner, outer = hmac_pads(key)
    assert spark("SELECT pseudonym(k) AS id FROM t", pseudonym_key=key) == (
        f"SELECT SHA2(CONCAT(UNHEX('{outer}'), UNHEX(SHA2(CONCAT(UNHEX('{inner}'), ENCODE(`k`, 'UTF-8')), 256))), 256)"
        " AS `id` FROM `t`"
    )


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long" * 40, "clé".encode()])
def test_hmac_pads_give_rfc2104_hmac(key):
    inner, outer = hmac_pads(key)
    message = b"ann@x.com"
    by_pads = hashlib.sha256(bytes.fromhex(outer) + hashlib.sha256(bytes.fromhex(inner) + message).digest())
    assert by_pads.hexdigest() == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_pseudonym_argument_is_translated_too():
    out = spark("SELECT pseudonym(lower(trim(e))) FROM t", pseudonym_key=b"k")
    assert "ENCODE(LOWER(TRANSLATE(TRIM('" in out and "PSEUDONYM(" not in out.upper()


def test_identity_key_expands_to_the_contracts_definition_with_the_lower_fix():
    # ZONE_RULES: lower(trim(email)) with U+0020 spaces only; Spark then gets lower's Java fixes
    assert IDENTITY_KEY_SQL == "lower(trim(BOTH ' ' FROM x))"
    assert spark("SELECT identity_key(a.user) AS k FROM t a") == spark(
        "SELECT lower(trim(BOTH ' ' FROM a.user)) AS k FROM t a"
    )
    assert spark("SELECT identity_key(x) FROM t WHERE identity_key(identity_key(x)) IN (SELECT 'a')") == spark(
        "SELECT lower(trim(BOTH ' ' FROM x)) FROM t "
        "WHERE lower(trim(BOTH ' ' FROM lower(trim(BOTH ' ' FROM x)))) IN (SELECT 'a')"
    )
    assert spark("SELECT pseudonym(identity_key(e)) FROM t", pseudonym_key=b"k") == spark(
        "SELECT pseudonym(lower(trim(BOTH ' ' FROM e))) FROM t", pseudonym_key=b"k"
    )
    with pytest.raises(NotPortable, match="identity_key takes exactly one argument"):
        spark("SELECT identity_key(a, b) FROM t")


IDENTITIES = [
    "  MiXeD.Case@Example.COM ",
    "ΟΔΥΣΣΕΥΣ@X.COM",
    "İLKER@X.COM",
    "\u00a0Ann@X.com\u3000",
    "\tivan@x.com",
    " heidi@x.com  ",
    "ǅemal@x.com",
]


def test_identity_key_is_one_macro_in_every_duckdb_connection_and_matches_python(tmp_path):
    # the macro on each kind of connection the project's SQL runs on: engine sessions, private databases
    # (connect, the CLI's sandbox) and an audit's cursors
    from stedi_assets.checks.audit import Audit
    from stedi_assets.engines.duckdb_engine import DuckDBEngine, connect
    from stedi_assets.storage.lake import open_lake
    from stedi_assets.zones import table

    expected = {(e, identity_key(e)) for e in IDENTITIES} | {(None, None)}
    sql = "SELECT e, identity_key(e) FROM t"
    emails = pa.table({"e": pa.array([*IDENTITIES, None], pa.string())})
    with connect() as con:
        con.register("t", emails)
        assert set(con.execute(sql).fetchall()) == expected
    with DuckDBEngine().session() as con:
        con.register("t", emails)
        assert set(con.execute(sql).fetchall()) == expected
    audit = Audit(spec=table("customer_landing"), policy="strict", files={}, extra={}, lake=open_lake(str(tmp_path)))
    for _ in range(2):  # a fresh session per question
        assert set(audit.query(sql, t=emails)) == expected


def test_pseudonym_needs_a_key_and_one_argument():
    with pytest.raises(ValueError, match="no pseudonym key"):
        spark("SELECT pseudonym(k) FROM t")
    with pytest.raises(NotPortable, match="exactly one argument"):
        spark("SELECT pseudonym(a, b) FROM t", pseudonym_key=b"k")


def test_zone_qualified_tables_become_unqualified_temp_views():
    assert view_name("trusted.customer_trusted") == "trusted__customer_trusted"
    assert spark(
        "SELECT trusted.customer_trusted.email, c.phone FROM trusted.customer_trusted "
        "JOIN trusted.customer_trusted AS c ON c.email = trusted.customer_trusted.email"
    ) == (
        "SELECT `customer_trusted`.`email`, `c`.`phone` FROM `trusted__customer_trusted` AS `customer_trusted` "
        "JOIN `trusted__customer_trusted` AS `c` ON `c`.`email` = `customer_trusted`.`email`"
    )


# ------------------------------------------------------------------------------------ the guard


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT upper(x) FROM t",  # no tested translation
        "SELECT list_aggregate(x, 'sum') FROM t",  # DuckDB only
        "SELECT x::bigint FROM t",  # casts differ (overflow, string parsing)
        "SELECT a + b FROM t",  # bigint overflow: DuckDB errors, Spark wraps
        "SELECT a || b FROM t",
        "SELECT regexp_matches(x, 'a') FROM t",
    ],
)
def test_constructs_without_a_tested_translation_are_refused(sql):
    with pytest.raises(NotPortable, match="no tested Spark translation"):
        spark(sql)


def test_ad_hoc_queries_may_skip_the_guard():
    assert spark("SELECT upper(x) FROM t", portable_only=False) == "SELECT UPPER(`x`) FROM `t`"


def test_every_rule_translates():
    seen = set()
    for spec in TABLES:
        for policy in POLICIES:
            rule = load_rule(spec.name, policy)
            if rule is None:
                continue
            for r in [*ephemerals(rule, policy), rule]:
                if r.path in seen:
                    continue
                seen.add(r.path)
                out = spark(r.body, pseudonym_key=b"k")
                assert "PSEUDONYM(" not in out.upper()
    assert len(seen) == 12  # 11 table rules + the ephemeral _customer_latest
