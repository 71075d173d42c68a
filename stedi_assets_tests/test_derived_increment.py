"""Incremental derived tables (zones/incremental.py): a derived table keeps its files when its inputs did not
change, adds only the rows of an input's new files where its rule is linear in that input, and is built again
otherwise; whichever way, every table equals a build from an empty lake over the same landing."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import checks_of, landing_records, run_pipeline, write_landing
from parity import multiset
from test_incremental import assert_same_as_a_fresh_build, consenting_customer, generated_landing

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.checks import integrity
from stedi_assets.storage.lake import open_lake
from stedi_assets.zones import TABLES, incremental, table
from stedi_assets.zones.incremental import APPENDED, KEPT, REBUILT, REUSED, fingerprint
from stedi_assets.zones.sql import SqlRule, linear_in, load_rule, semi_join_on

DERIVED = [spec for spec in TABLES if load_rule(spec.name, "strict") is not None]


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Path:
    """test_incremental's landing; the incremental lake and the fresh one make the same pseudonyms."""
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "test-pseudonym-key")
    return generated_landing(tmp_path)


def builds(lake: Path) -> dict[str, str]:
    """How each derived table's current snapshot was built (reused, appended, kept or rebuilt)."""
    opened = open_lake(str(lake))
    return {spec.name: opened.current(spec.zone, spec.name).extra["build"] for spec in DERIVED}


def data_files(lake: Path, name: str, part: str = "data") -> list[str]:
    spec = table(name)
    return open_lake(str(lake)).current(spec.zone, spec.name).files[part]


def later_readings(landing: Path, person: dict, shift: int = 7_000) -> list[dict]:
    return [
        {**r, "timestamp": r["timestamp"] + shift}
        for r in landing_records(landing, "accelerometer")
        if r.get("user") == person["email"] and isinstance(r.get("timestamp"), int)
    ]


@pytest.mark.parametrize("policy", ["rubric", "strict"])
def test_a_run_over_unchanged_landing_keeps_every_derived_table_s_files(landing, tmp_path, policy):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy=policy).success
    assert set(builds(lake).values()) == {REBUILT}
    before = {spec.name: data_files(lake, spec.name) for spec in DERIVED}
    assert run_pipeline(landing, lake, policy=policy).success
    assert builds(lake) == {spec.name: REUSED for spec in DERIVED}
    assert {spec.name: data_files(lake, spec.name) for spec in DERIVED} == before
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy=policy)


def test_new_readings_are_appended_where_the_rule_is_linear_and_the_rest_kept(landing, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    trusted_before = data_files(lake, "accelerometer_trusted")
    person = consenting_customer(landing)
    write_landing(landing, "accelerometer", later_readings(landing, person), name="later/day-2.json")
    result = run_pipeline(landing, lake, policy="rubric")
    assert result.success
    (shown,) = result.asset_materializations_for_node("accelerometer_trusted")  # what the UI shows
    assert shown.metadata["build"].value == APPENDED
    assert shown.metadata["build_reason"].value == "accelerometer_landing gained 1 file"
    assert builds(lake) == {
        "rejected": REBUILT,  # readings moved past 2^63 ms are quarantined: a UNION ALL is not linear in one
        "customer_trusted": REUSED,  # its input did not change
        "accelerometer_trusted": APPENDED,  # a filter of accelerometer_landing: the new file's readings added
        "step_trainer_trusted": REUSED,  # customer_curated kept its files
        "customer_curated": APPENDED,  # a semi-join on the readings: no row that it lacked
        "machine_learning_curated": APPENDED,  # an inner join: the new readings' pairs added
    }
    files = data_files(lake, "accelerometer_trusted")
    assert set(trusted_before) < set(files) and len(files) == len(trusted_before) + 1  # one file added
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy="rubric")


def test_a_landing_file_adds_no_empty_file_so_the_tables_on_that_part_are_reused(landing, tmp_path):
    """A new landing file without an invalid line adds no quarantine file, and one without a valid line no data
    file: the tables built on that part see the files they read, and are reused."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    person = consenting_customer(landing)
    valid = [
        {"user": person["email"], "timestamp": 1_700_000_000_000 + i, "x": 1.0, "y": 2.0, "z": 3.0} for i in range(3)
    ]
    before = {part: data_files(lake, "accelerometer_landing", part) for part in ("data", "rejected")}
    write_landing(landing, "accelerometer", valid, name="clean.json")
    assert run_pipeline(landing, lake, policy="rubric").success
    assert data_files(lake, "accelerometer_landing", "rejected") == before["rejected"]
    assert len(data_files(lake, "accelerometer_landing")) == len(before["data"]) + 1
    assert builds(lake)["rejected"] == REUSED
    assert builds(lake)["accelerometer_trusted"] == APPENDED
    before = {part: data_files(lake, "accelerometer_landing", part) for part in ("data", "rejected")}
    write_landing(landing, "accelerometer", [{"user": person["email"], "timestamp": 1.5}], name="invalid.json")
    assert run_pipeline(landing, lake, policy="rubric").success
    assert data_files(lake, "accelerometer_landing") == before["data"]
    assert len(data_files(lake, "accelerometer_landing", "rejected")) == len(before["rejected"]) + 1
    assert builds(lake)["accelerometer_trusted"] == REUSED
    assert builds(lake)["rejected"] == REBUILT
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy="rubric")


# How accelerometer_trusted is built after readings of nobody known, then customer_trusted and it after a
# consenting newcomer. The strict rules are neither linear nor semi-joins: the readings' has DISTINCT, and both
# read the latest record of each customer through a sub-rule (a window).
@pytest.mark.parametrize(
    ("policy", "unknown_build", "customers_build", "readings_build"),
    [("rubric", APPENDED, APPENDED, APPENDED), ("strict", KEPT, REBUILT, REBUILT)],
)
def test_a_new_consenting_customer_re_derives_their_readings(
    landing, tmp_path, policy, unknown_build, customers_build, readings_build
):
    """A consenting newcomer grows customer_trusted, and their readings already in the lake become trusted. The
    rubric's readings are a semi-join on customer_trusted: the newcomer's are added to the kept files. The
    strict rule (consent dates, an ephemeral sub-rule) is built again. So is everything after it."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy=policy).success
    person = consenting_customer(landing)
    newcomer = {**person, "email": "Newcomer." + person["email"], "serialNumber": "newcomer-serial"}
    write_landing(landing, "accelerometer", [{**r, "user": newcomer["email"]} for r in later_readings(landing, person)])
    trusted_before = data_files(lake, "accelerometer_trusted")
    assert run_pipeline(landing, lake, policy=policy).success  # readings of nobody known yet
    built = builds(lake)  # no trusted row: no file added, so nothing after it changes
    assert built["accelerometer_trusted"] == unknown_build
    assert data_files(lake, "accelerometer_trusted") == trusted_before
    assert built["customer_curated"] == built["machine_learning_curated"] == REUSED
    readings = sum(multiset(lake, "trusted", "accelerometer_trusted").values())
    write_landing(landing, "customer", [newcomer], name="newcomers.json")
    assert run_pipeline(landing, lake, policy=policy).success
    built = builds(lake)
    assert built["customer_trusted"] == customers_build
    assert built["accelerometer_trusted"] == readings_build
    if readings_build == APPENDED:
        assert set(trusted_before) < set(data_files(lake, "accelerometer_trusted"))
    assert sum(multiset(lake, "trusted", "accelerometer_trusted").values()) > readings
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy=policy)


def test_a_consent_revocation_re_derives_every_table_after_it(landing, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="strict").success
    person = consenting_customer(landing)
    revoked = {k: v for k, v in person.items() if k != "shareWithResearchAsOfDate"}
    revoked["lastUpdateDate"] = person["lastUpdateDate"] + 1
    write_landing(landing, "customer", [revoked], name="revocations.json")
    assert run_pipeline(landing, lake, policy="strict").success
    built = builds(lake)
    assert built["customer_trusted"] == REBUILT  # the latest record wins: not linear in the landing rows
    assert built["accelerometer_trusted"] == REBUILT
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy="strict")


def test_strict_distinct_readings_are_built_again_not_appended(landing, tmp_path):
    """A new file may repeat readings the table holds: DISTINCT makes the rule not linear."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="strict").success
    person = consenting_customer(landing)
    repeated = [r for r in landing_records(landing, "accelerometer") if r.get("user") == person["email"]]
    write_landing(landing, "accelerometer", repeated, name="repeated.json")
    assert run_pipeline(landing, lake, policy="strict").success
    assert builds(lake)["accelerometer_trusted"] in (REBUILT, KEPT)
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy="strict")


def test_a_changed_rule_builds_the_table_again(landing, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    rule = load_rule("customer_trusted", "rubric")
    changed = SqlRule(**{**rule.__dict__, "text": rule.text.strip() + " AND email IS NOT NULL\n-- reworded\n"})
    monkeypatch.setattr(
        "stedi_assets.builders.load_rule",
        lambda name, policy: changed if name == "customer_trusted" else load_rule(name, policy),
    )
    assert run_pipeline(landing, lake, policy="rubric").success
    assert builds(lake)["customer_trusted"] == KEPT  # built again: the same rows, so its files stay


def rule(sql: str) -> SqlRule:
    return SqlRule(name="t", path=Path("t.sql"), text=sql, header="", relations=())


@pytest.mark.parametrize(
    ("sql", "linear"),
    [
        ("SELECT a.x FROM r a WHERE a.y > 0", True),
        ("SELECT a.x FROM r a JOIN s ON a.k = s.k", True),
        ("SELECT a.x FROM s JOIN r a ON a.k = s.k", True),
        ("SELECT a.x FROM r a LEFT JOIN s ON a.k = s.k", True),  # r's rows are kept, one by one
        ("SELECT a.x FROM r a WHERE a.k IN (SELECT k FROM s)", True),
        ("SELECT s.x FROM s WHERE s.k IN (SELECT k FROM r)", False),  # r decides which rows of s stay
        ("SELECT s.x FROM s WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.k = s.k)", False),
        ("SELECT s.x FROM s LEFT JOIN r ON r.k = s.k", False),  # an added row of r changes a row of s
        ("SELECT a.x FROM r a RIGHT JOIN s ON a.k = s.k", False),
        ("SELECT a.x FROM r a FULL JOIN s ON a.k = s.k", False),
        ("SELECT DISTINCT a.x FROM r a", False),
        ("SELECT a.k, count(*) FROM r a GROUP BY a.k", False),
        ("SELECT count(*) FROM r", False),
        ("SELECT a.x, row_number() OVER (ORDER BY a.x) FROM r a", False),
        ("SELECT a.x FROM r a LIMIT 10", False),
        ("SELECT a.x FROM r a QUALIFY a.x > 1", False),
        ("SELECT a.x, random() FROM r a", False),
        ("SELECT x FROM r UNION ALL SELECT x FROM s", False),
        ("SELECT a.x FROM r a JOIN r b ON a.k = b.k", False),  # a self-join grows by D x D too
        ("WITH w AS (SELECT k, count(*) AS n FROM s GROUP BY k) SELECT a.x FROM r a JOIN w ON a.k = w.k", True),
        ("WITH w AS (SELECT DISTINCT k FROM r) SELECT s.x FROM s JOIN w ON s.k = w.k", False),
    ],
)
def test_linear_in_decides_from_the_sql_s_shape(sql, linear):
    assert linear_in(rule(sql), "r") is linear


@pytest.mark.parametrize(
    ("sql", "semi_join"),
    [
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT a.user FROM r a)", True),
        ("SELECT * FROM t WHERE email IN (SELECT user FROM r)", True),
        ("SELECT c.* FROM t c WHERE c.x > 1 AND (c.email IN (SELECT a.user FROM r a WHERE a.z > 0))", True),
        (
            "SELECT c.* FROM t c WHERE lower(c.email) IN (SELECT lower(a.user) FROM r a JOIN u ON a.k = u.k)",
            True,
        ),
        ("SELECT c.email, c.x FROM t c WHERE c.x > 2 AND lower(c.email) IN (SELECT a.user FROM r a)", True),
        # equal output rows could differ in what IN tests: one kept over R, the other only over D
        ("SELECT c.x FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT email, c.x FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.email AS e FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* EXCLUDE (x) FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* REPLACE (1 AS x) FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.email FROM t c WHERE 1 IN (SELECT a.user FROM r a)", False),
        # an added row of r can take rows away
        ("SELECT c.* FROM t c WHERE NOT c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* FROM t c WHERE c.email NOT IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* FROM t c WHERE c.x > 1 OR c.email IN (SELECT a.user FROM r a)", False),  # monotone, not shown
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT a.user FROM u a LEFT JOIN r b ON a.k = b.k)", False),
        # the result's rows are not rows of one table, or are not kept one by one
        ("SELECT DISTINCT c.* FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT a.user FROM r a) LIMIT 3", False),
        ("SELECT c.*, random() AS z FROM t c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* FROM t c JOIN v ON c.k = v.k WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT a.user FROM r a) UNION ALL SELECT * FROM t", False),
        # the subquery is not linear in r, or r is read elsewhere too
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT DISTINCT a.user FROM r a)", False),
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT max(a.user) FROM r a)", False),
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT a.user FROM (SELECT * FROM r) a)", False),
        ("SELECT c.* FROM t c WHERE c.email IN (SELECT a.user FROM r a) AND c.k IN (SELECT k FROM r)", False),
        ("SELECT c.* FROM r c WHERE c.email IN (SELECT a.user FROM r a)", False),
        ("SELECT c.* FROM t c WHERE EXISTS (SELECT 1 FROM r a WHERE a.user = c.email)", False),  # not recognised
    ],
)
def test_semi_join_on_decides_from_the_sql_s_shape(sql, semi_join):
    assert semi_join_on(rule(sql), "r") is semi_join


def test_a_semi_join_s_append_adds_each_row_as_often_as_a_whole_build(landing, tmp_path):
    """customer_curated (rubric) keeps the trusted customer rows with readings. A consenting newcomer whose record
    came twice has two equal rows in customer_trusted; readings of theirs, and of a customer already curated,
    arrive later: both of the newcomer's rows are added (EXCEPT ALL takes away only rows already there), none of
    the other's."""
    lake = tmp_path / "lake"
    person = consenting_customer(landing)
    newcomer = {**person, "email": "Twice." + person["email"], "serialNumber": "twice-serial"}
    write_landing(landing, "customer", [newcomer, newcomer], name="twice.json")
    assert run_pipeline(landing, lake, policy="rubric").success
    curated = multiset(lake, "curated", "customer_curated")
    readings = later_readings(landing, person)
    write_landing(landing, "accelerometer", [*readings, *({**r, "user": newcomer["email"]} for r in readings)])
    assert run_pipeline(landing, lake, policy="rubric").success
    assert builds(lake)["customer_curated"] == APPENDED
    grown = multiset(lake, "curated", "customer_curated")
    assert sum(grown.values()) == sum(curated.values()) + 2
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy="rubric")


@pytest.mark.parametrize("row_hash", ["hash(_row)", "0"], ids=["own hashes", "one hash for every row"])
def test_distinct_rows_of_an_appended_table_are_those_of_a_whole_read(landing, tmp_path, monkeypatch, row_hash):
    """The check of an appended snapshot starts from the figures recorded on the one it replaced and reads the
    added rows (and the kept rows sharing their hash): new rows repeating kept rows, or each other, count once."""
    monkeypatch.setattr(integrity, "ROW_HASH", row_hash)
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    person = consenting_customer(landing)
    kept = [r for r in landing_records(landing, "accelerometer") if r.get("user") == person["email"]]
    new = later_readings(landing, person)
    write_landing(landing, "accelerometer", [*kept[:2], new[0], *new], name="day-2.json")
    appended = checks_of(run_pipeline(landing, lake, policy="rubric"))[("accelerometer_trusted", "distinct_rows")]
    assert builds(lake)["accelerometer_trusted"] == APPENDED
    trusted = next(a for a in TABLE_ASSETS if a.key.path[-1] == "accelerometer_trusted")
    whole = checks_of(run_pipeline(landing, lake, "rubric", selection=dg.AssetSelection.checks_for_assets(trusted)))
    figures = {k: v.value for k, v in appended.metadata.items()}
    assert figures == {k: v.value for k, v in whole[("accelerometer_trusted", "distinct_rows")].metadata.items()}
    assert figures["rows"] - figures["distinct_rows"] >= 3  # two kept readings again, one new reading twice


def test_a_checks_only_run_reads_a_reused_table_whole(landing, tmp_path):
    """Recorded figures are a write's shortcut: `stedi check` reads the files, so it finds one damaged in place."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    assert run_pipeline(landing, lake).success
    assert builds(lake)["accelerometer_trusted"] == REUSED
    (path,) = [lake / f for f in data_files(lake, "accelerometer_trusted")]
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), path)  # one row twice, the manifest unchanged
    trusted = next(a for a in TABLE_ASSETS if a.key.path[-1] == "accelerometer_trusted")
    result = run_pipeline(landing, lake, selection=dg.AssetSelection.checks_for_assets(trusted))
    check = checks_of(result)[("accelerometer_trusted", "distinct_rows")]
    assert not check.passed and check.metadata["rows"].value == check.metadata["distinct_rows"].value + 1


def test_the_fingerprint_changes_with_anything_that_decides_a_rule_s_rows(monkeypatch):
    rules = [load_rule("accelerometer_trusted", "strict")]
    base = fingerprint(rules, "strict", "columns", "key-1")
    assert fingerprint(rules, "strict", "columns", "key-1") == base
    assert fingerprint(rules, "rubric", "columns", "key-1") != base
    assert fingerprint(rules, "strict", "other columns", "key-1") != base
    assert fingerprint(rules, "strict", "columns", "key-2") != base
    assert fingerprint([load_rule("accelerometer_trusted", "rubric")], "strict", "columns", "key-1") != base
    monkeypatch.setattr(incremental, "IDENTITY_KEY_SQL", "lower(x)")  # a new definition of identity_key
    assert fingerprint(rules, "strict", "columns", "key-1") != base
