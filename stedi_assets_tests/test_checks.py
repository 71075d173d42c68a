"""The checks bite: a published table is tampered with, the checks alone are run, and the right one fails.

Also write-audit-publish: a blocking check failing during materialization leaves the previous snapshot
current and nothing downstream runs; a WARN does not block.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.checks import CHECKS, integrity
from stedi_assets.checks.audit import failed
from stedi_assets.storage.lake import open_lake
from stedi_assets_tests.conftest import checks_of, read_table, restored_afterwards, run_pipeline, write_landing

KEY = "checks-test-key"
ASSETS = {a.key.path[-1]: a for a in TABLE_ASSETS}
ZONE = {a.key.path[-1]: a.key.path[0] for a in TABLE_ASSETS}
DOWNSTREAM_OF_ACCELEROMETER_TRUSTED = ("customer_curated", "step_trainer_trusted", "machine_learning_curated")


def customer(email, serial, consent):
    return {
        "customerName": "N",
        "email": email,
        "phone": "555",
        "birthDay": "1990-01-01",
        "serialNumber": serial,
        "registrationDate": 1,
        "lastUpdateDate": 10,
        "shareWithResearchAsOfDate": consent,
        "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None,
    }


def accel(user, t):
    return {"user": user, "timestamp": t, "x": 1.0, "y": 2.0, "z": 3.0}


def step(t, serial):
    return {"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": 7.0}


def write_base_landing(root: Path) -> None:
    write_landing(
        root, "customer", [customer("alice@x.com", "SA", 1000), customer("bob@x.com", "SB", None), "not json"]
    )
    write_landing(
        root, "accelerometer", [accel("alice@x.com", 1000), accel("alice@x.com", 1100), accel("bob@x.com", 1100)]
    )
    write_landing(root, "step_trainer", [step(1000, "SA"), step(1100, "SA"), step(1100, "SB")])


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A published strict lake over a tiny landing; tests work on copies of it."""
    root = tmp_path_factory.mktemp("checks_base")
    write_base_landing(root / "landing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEDI_PSEUDONYM_KEY", KEY)
        result = run_pipeline(root / "landing", root / "lake", "strict")
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    return root


@pytest.fixture
def lake_copy(built, tmp_path):
    """The built lake, put back as it was after the test. (Iceberg metadata holds absolute paths: a copied
    lake would still read and tamper with the original's files.)"""
    with restored_afterwards(built):
        yield built / "landing", built / "lake"


def current(lake: Path, table: str):
    return open_lake(str(lake)).current(ZONE[table], table)


def tamper(lake: Path, table: str, change, part: str = "data") -> None:
    """Rewrite the published snapshot of `table` in place with `change(arrow_table)` (the manifest stays)."""
    paths = [Path(lake) / f for f in current(lake, table).files[part]]
    data = pa.concat_tables([pq.read_table(p) for p in paths])
    changed = change(data)
    pq.write_table(changed, paths[0])
    for other in paths[1:]:
        pq.write_table(changed.slice(0, 0), other)


def add_row(**values):
    def change(table: pa.Table) -> pa.Table:
        row = {name: [values.get(name)] for name in table.column_names}
        return pa.concat_tables([table, pa.table(row, schema=table.schema)])

    return change


def run_checks(landing, lake, *tables, policy="strict"):
    return run_pipeline(
        landing, lake, policy, selection=dg.AssetSelection.checks_for_assets(*(ASSETS[t] for t in tables))
    )


def assert_fails(result, table, check, severity="ERROR", **metadata):
    evaluation = checks_of(result)[(table, check)]
    assert not evaluation.passed, f"{table}.{check} should fail: {dict(evaluation.metadata)}"
    assert evaluation.severity.value == severity
    for name, value in metadata.items():
        assert evaluation.metadata[name].value == value, (name, evaluation.metadata[name])
    return evaluation


# ---------------------------------------------------------------------------------- untampered control


def test_untampered_lake_passes_every_check_and_writes_nothing(lake_copy):
    landing, lake = lake_copy
    before = {t: current(lake, t).snapshot for t in ASSETS}
    result = run_checks(landing, lake, *ASSETS)
    evaluations = checks_of(result)
    assert len(evaluations) == sum(len(list(a.check_specs)) for a in TABLE_ASSETS)
    assert [k for k, e in evaluations.items() if not e.passed] == []
    assert not result.get_asset_materialization_events()
    assert {t: current(lake, t).snapshot for t in ASSETS} == before


# ------------------------------------------------------------------------------------------ tampering


def test_consent_catches_a_non_consenting_customer(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "customer_trusted", add_row(**customer("bob@x.com", "SB", None)))
    result = run_checks(landing, lake, "customer_trusted")
    assert_fails(result, "customer_trusted", "consent", rows_violating_consent=1, consenting_customers=1)
    assert checks_of(result)[("customer_trusted", "schema")].passed
    assert checks_of(result)[("customer_trusted", "unique_customers")].passed


def test_consent_catches_a_customer_with_a_stale_consent_date(lake_copy):
    landing, lake = lake_copy
    tamper(
        lake,
        "customer_curated",
        lambda t: t.set_column(
            t.schema.get_field_index("shareWithResearchAsOfDate"),
            "shareWithResearchAsOfDate",
            pa.array([1] * t.num_rows, pa.int64()),
        ),
    )
    result = run_checks(landing, lake, "customer_curated")
    assert_fails(result, "customer_curated", "consent", rows_violating_consent=1)


@pytest.mark.parametrize(
    "reading,why",
    [
        (accel("bob@x.com", 1100), "no consent"),
        (accel("alice@x.com", 999), "before the consent date"),
        (accel("carol@x.com", 2000), "unknown customer"),
    ],
)
def test_consent_catches_an_accelerometer_reading(lake_copy, reading, why):
    landing, lake = lake_copy
    tamper(lake, "accelerometer_trusted", add_row(**reading))
    result = run_checks(landing, lake, "accelerometer_trusted")
    assert_fails(result, "accelerometer_trusted", "consent", rows_violating_consent=1)


def test_consent_catches_a_step_reading_of_a_non_consenting_customer(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "step_trainer_trusted", add_row(**step(1100, "SB"), customer_key="bob@x.com"))
    result = run_checks(landing, lake, "step_trainer_trusted")
    assert_fails(result, "step_trainer_trusted", "consent", rows_violating_consent=1)


def test_consent_catches_an_unknown_pseudonym_in_the_ml_table(lake_copy):
    landing, lake = lake_copy
    tamper(
        lake,
        "machine_learning_curated",
        add_row(customer_id="0" * 64, sensorReadingTime=1100, distanceFromObject=1.0, x=0.0, y=0.0, z=0.0),
    )
    result = run_checks(landing, lake, "machine_learning_curated")
    assert_fails(result, "machine_learning_curated", "consent", rows_violating_consent=1)
    assert checks_of(result)[("machine_learning_curated", "no_pii")].passed


def test_no_pii_catches_a_personal_column_and_email_values(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "machine_learning_curated", lambda t: t.append_column("email", pa.array(["alice@x.com"] * t.num_rows)))
    result = run_checks(landing, lake, "machine_learning_curated")
    evaluation = assert_fails(result, "machine_learning_curated", "no_pii", personal_columns=["email"])
    assert evaluation.metadata["values_like_email"].value >= 1
    assert_fails(result, "machine_learning_curated", "schema")


def test_no_pii_catches_a_customer_id_that_is_not_a_pseudonym(lake_copy):
    landing, lake = lake_copy
    rows = len(read_table(lake, "curated", "machine_learning_curated"))
    assert rows == 2
    tamper(
        lake,
        "machine_learning_curated",
        lambda t: t.set_column(0, "customer_id", pa.array(["alice@x.com"] * t.num_rows)),
    )
    result = run_checks(landing, lake, "machine_learning_curated")
    assert_fails(
        result,
        "machine_learning_curated",
        "no_pii",
        personal_columns=[],
        values_like_email=rows,
        malformed_customer_ids=1,
    )


def test_schema_catches_an_extra_column(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "customer_curated", lambda t: t.append_column("note", pa.array(["x"] * t.num_rows)))
    result = run_checks(landing, lake, "customer_curated")
    evaluation = assert_fails(result, "customer_curated", "schema")
    assert "note" in str(evaluation.metadata["found"].value)


def test_schema_catches_a_wrong_type(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "accelerometer_trusted", lambda t: t.set_column(1, "timestamp", pc.cast(t["timestamp"], pa.float64())))
    assert_fails(run_checks(landing, lake, "accelerometer_trusted"), "accelerometer_trusted", "schema")


def test_unique_customers_catches_a_second_row_for_an_identity_key(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "customer_trusted", add_row(**customer(" ALICE@x.com", "SA", 1000)))
    result = run_checks(landing, lake, "customer_trusted")
    assert_fails(result, "customer_trusted", "unique_customers", rows=2, distinct_customers=1)


def test_distinct_rows_catches_an_exact_duplicate(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "accelerometer_trusted", lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    result = run_checks(landing, lake, "accelerometer_trusted")
    assert_fails(result, "accelerometer_trusted", "distinct_rows", rows=3, distinct_rows=2)
    assert checks_of(result)[("accelerometer_trusted", "consent")].passed


@pytest.mark.parametrize("row_hash", ["hash(_row)", "0"], ids=["own hashes", "one hash for every row"])
def test_distinct_rows_compares_rows_that_share_a_hash_whole(lake_copy, monkeypatch, row_hash):
    # Two new rows alike but for x = 0.0 and x = -0.0, which SELECT DISTINCT takes as one value; with a
    # hash shared by every row, the distinct rows among them are still told apart.
    monkeypatch.setattr(integrity, "ROW_HASH", row_hash)
    landing, lake = lake_copy
    rows = len(read_table(lake, "trusted", "accelerometer_trusted"))
    result = run_checks(landing, lake, "accelerometer_trusted")
    assert checks_of(result)[("accelerometer_trusted", "distinct_rows")].passed  # none alike yet

    def zeros(table: pa.Table) -> pa.Table:
        new = table.slice(0, 1).set_column(1, "timestamp", pa.array([999_999], pa.int64()))
        x = new.schema.get_field_index("x")
        return pa.concat_tables([table, *(new.set_column(x, "x", pa.array([v])) for v in (0.0, -0.0))])

    tamper(lake, "accelerometer_trusted", zeros)
    result = run_checks(landing, lake, "accelerometer_trusted")
    assert_fails(result, "accelerometer_trusted", "distinct_rows", rows=rows + 2, distinct_rows=rows + 1)


def test_row_count_catches_a_fan_out(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "accelerometer_trusted", lambda t: pa.concat_tables([t] * 3))
    result = run_checks(landing, lake, "accelerometer_trusted")
    assert_fails(result, "accelerometer_trusted", "row_count", rows=6, rows_of_accelerometer_landing=3)


def test_row_count_warns_about_an_empty_table_with_non_empty_inputs(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "customer_curated", lambda t: t.slice(0, 0))
    result = run_checks(landing, lake, "customer_curated")
    assert_fails(result, "customer_curated", "row_count", severity="WARN", rows=0)


def test_quarantine_complete_catches_a_lost_rejected_line(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "rejected", lambda t: t.slice(0, 0))
    result = run_checks(landing, lake, "rejected")
    assert_fails(result, "rejected", "quarantine_complete", rows=0, rejected_in_landing_snapshots=1)


def test_quarantine_complete_catches_a_line_without_reason(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "rejected", lambda t: t.set_column(4, "reason", pa.array([""] * t.num_rows)))
    result = run_checks(landing, lake, "rejected")
    assert_fails(result, "rejected", "quarantine_complete", rows_without_reason=1)


def test_reconciliation_catches_a_lost_valid_row(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "customer_landing", lambda t: t.slice(1))
    result = run_checks(landing, lake, "customer_landing")
    assert_fails(result, "customer_landing", "reconciliation", nonblank_lines=3, valid_rows=1, rejected_rows=1)


def test_reconciliation_audits_the_readers_counts_without_reading_landing_again(tmp_path):
    # the reader counted the lines it read; a checks-only audit never goes back to the landing files, which
    # may have changed, vanished or turned unreadable since (the next run's volume check reports that)
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_base_landing(landing)
    assert run_pipeline(landing, lake, selection=dg.AssetSelection.groups("landing")).success
    with open(landing / "step_trainer" / "landing" / "part-1.json", "ab") as f:
        f.write(b'{"sensorReadingTime": 1200, "serialNumber": "SA", "distanceFromObject": 1}\n')
    (landing / "customer" / "landing" / "part-1.json").unlink()
    result = run_checks(landing, lake, "step_trainer_landing", "customer_landing")
    for table, lines in (("step_trainer_landing", 3), ("customer_landing", 3)):
        check = checks_of(result)[(table, "reconciliation")]
        assert check.passed, dict(check.metadata)
        assert check.metadata["nonblank_lines"].value == lines


def test_reconciliation_catches_a_lost_rejected_row(lake_copy):
    landing, lake = lake_copy
    tamper(lake, "customer_landing", lambda t: t.slice(0, 0), part="rejected")
    result = run_checks(landing, lake, "customer_landing")
    assert_fails(result, "customer_landing", "reconciliation", nonblank_lines=3, valid_rows=2, rejected_rows=0)


# --------------------------------------------------------------------------------- write-audit-publish


def fail_consent_of(table, severity="ERROR"):
    original = CHECKS["consent"]

    def run(audit):
        if audit.spec.name == table:
            return failed(severity, rows_violating_consent=42)
        return original.run(audit)

    return dataclasses.replace(original, run=run)


def add_new_reading(landing: Path) -> None:
    with open(landing / "accelerometer" / "landing" / "part-1.json", "ab") as f:
        f.write(b'{"user": "alice@x.com", "timestamp": 1200, "x": 1, "y": 2, "z": 3}\n')


def snapshot_dirs(lake: Path, table: str) -> list[str]:
    """Every file under the table's data folder: a discarded write leaves none behind."""
    folder = lake / ZONE[table] / table / "data"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []


def test_a_failing_blocking_check_keeps_the_previous_snapshot_and_stops_downstream(lake_copy, monkeypatch):
    landing, lake = lake_copy
    before = {t: current(lake, t).snapshot for t in ASSETS}
    folders = snapshot_dirs(lake, "accelerometer_trusted")
    add_new_reading(landing)
    monkeypatch.setitem(CHECKS, "consent", fail_consent_of("accelerometer_trusted"))

    result = run_pipeline(landing, lake, "strict")

    assert not result.success
    assert_fails(result, "accelerometer_trusted", "consent", rows_violating_consent=42)
    # upstream was published with the new reading ...
    assert current(lake, "accelerometer_landing").snapshot != before["accelerometer_landing"]
    assert 1200 in {r["timestamp"] for r in read_table(lake, "landing", "accelerometer_landing")}
    # ... the audited table was not: same snapshot, old rows, and the staged snapshot is gone
    assert current(lake, "accelerometer_trusted").snapshot == before["accelerometer_trusted"]
    assert 1200 not in {r["timestamp"] for r in read_table(lake, "trusted", "accelerometer_trusted")}
    assert snapshot_dirs(lake, "accelerometer_trusted") == folders
    # ... and nothing downstream ran
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "accelerometer_landing" in materialized and "accelerometer_trusted" not in materialized
    assert not materialized & set(DOWNSTREAM_OF_ACCELEROMETER_TRUSTED)
    for table in DOWNSTREAM_OF_ACCELEROMETER_TRUSTED:
        assert current(lake, table).snapshot == before[table]


def test_a_failing_blocking_check_on_a_first_build_publishes_nothing(tmp_path, monkeypatch):
    write_base_landing(tmp_path / "landing")
    monkeypatch.setitem(CHECKS, "consent", fail_consent_of("customer_trusted"))
    result = run_pipeline(tmp_path / "landing", tmp_path / "lake", "strict")
    assert not result.success
    assert not open_lake(str(tmp_path / "lake")).has_current("trusted", "customer_trusted")
    assert snapshot_dirs(tmp_path / "lake", "customer_trusted") == []
    assert open_lake(str(tmp_path / "lake")).has_current("landing", "customer_landing")
    assert not open_lake(str(tmp_path / "lake")).has_current("curated", "machine_learning_curated")


def test_a_warning_does_not_block_publication(lake_copy, monkeypatch):
    landing, lake = lake_copy
    before = current(lake, "accelerometer_trusted").snapshot
    add_new_reading(landing)
    monkeypatch.setitem(CHECKS, "consent", fail_consent_of("accelerometer_trusted", severity="WARN"))
    result = run_pipeline(landing, lake, "strict")
    assert result.success
    assert_fails(result, "accelerometer_trusted", "consent", severity="WARN")
    assert current(lake, "accelerometer_trusted").snapshot != before
    assert 1200 in {r["timestamp"] for r in read_table(lake, "trusted", "accelerometer_trusted")}
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} >= set(
        DOWNSTREAM_OF_ACCELEROMETER_TRUSTED
    )


def test_rubric_duplicates_only_warn_and_are_published(tmp_path):
    landing = tmp_path / "landing"
    write_landing(landing, "customer", [customer("alice@x.com", "SA", 1000)] * 2)
    write_landing(landing, "accelerometer", [accel("alice@x.com", 1000)] * 2)
    write_landing(landing, "step_trainer", [step(1000, "SA")])
    result = run_pipeline(landing, tmp_path / "lake", "rubric")
    assert result.success
    assert_fails(result, "customer_trusted", "unique_customers", severity="WARN", rows=2, distinct_customers=1)
    assert_fails(result, "accelerometer_trusted", "distinct_rows", severity="WARN", rows=2, distinct_rows=1)
    assert len(read_table(tmp_path / "lake", "trusted", "accelerometer_trusted")) == 2


def test_consent_oracle_lower_cases_like_sql(tmp_path):
    """Regression: Python's str.lower() turns a final Σ into ς (SQL gives σ), which made the consent
    check reject a correct accelerometer_trusted."""
    from conftest import write_landing

    landing = tmp_path / "landing"
    write_landing(
        landing,
        "customer",
        [
            {
                "customerName": "O",
                "email": "ΟΔΥΣΣΕΥΣ@x.com",
                "serialNumber": "s",
                "registrationDate": 1,
                "lastUpdateDate": 1,
                "shareWithResearchAsOfDate": 1,
            }
        ],
    )
    write_landing(landing, "accelerometer", [{"user": "οδυσσευσ@x.com", "timestamp": 5, "x": 0, "y": 0, "z": 0}])
    write_landing(landing, "step_trainer", [{"sensorReadingTime": 5, "serialNumber": "s", "distanceFromObject": 1}])
    result = run_pipeline(landing, tmp_path / "lake")
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.check_name == "consent")


def test_the_rubric_register_holds_each_consenting_email_and_serial_once_in_python_s_order():
    from stedi_assets.checks.register import ConsentRegister

    records = pa.table(
        {
            "email": ["b@x", "a@x", "b@x", "é@x", "Z@x", "a@x", "c@x"],
            "serialNumber": ["s2", "s1", "s2", "s3", None, "s0", "s4"],
            "shareWithResearchAsOfDate": pa.array([1, 2, 3, 4, 5, 6, None], pa.int64()),
        }
    )
    asked = []

    def read(fields):
        asked.append(fields)
        return records.select(list(fields))

    table = ConsentRegister(read).rubric_table()
    columns = (records[c].to_pylist() for c in records.column_names)
    consenting = {(e, s) for e, s, d in zip(*columns, strict=True) if d is not None}
    expected = sorted(consenting, key=lambda pair: (pair[0], pair[1] is None, pair[1] or ""))  # nulls last
    assert list(zip(table["email"].to_pylist(), table["serial"].to_pylist(), strict=True)) == expected
    assert table.schema == pa.schema([("email", pa.string()), ("serial", pa.string())])
    assert asked == [("email", "serialNumber", "shareWithResearchAsOfDate")]  # not the strict part's columns


@pytest.mark.parametrize("row_hash", ["hash(_row)", "0"], ids=["own hashes", "one hash for every row"])
def test_added_rows_are_compared_with_every_kept_row_they_equal_nulls_and_all(tmp_path, monkeypatch, row_hash):
    """distinct_rows of an appended snapshot hashes only the kept rows within the added rows' range of each
    column (NULL where an added row has NULL): the same count as a whole DISTINCT, whatever the rows hold."""
    from stedi_assets.checks.audit import Audit
    from stedi_assets.zones import table

    monkeypatch.setattr(integrity, "ROW_HASH", row_hash)
    kept = pa.table(
        {
            "user": ["a", "b", None, "c", "z", "a"],
            "timestamp": pa.array([1, 2, 3, None, 9, 1], pa.int64()),
            "x": [0.5, -0.0, 1.0, 2.0, 3.0, 0.5],
        }
    )
    added = pa.table(
        {
            "user": ["a", None, "c", "d", "d"],
            "timestamp": pa.array([1, 3, None, 4, 4], pa.int64()),
            "x": [0.5, 1.0, 2.0, 0.0, 0.0],
        }
    )
    (tmp_path / "t").mkdir()
    pq.write_table(kept, tmp_path / "t" / "kept.parquet")
    pq.write_table(added, tmp_path / "t" / "added.parquet")
    audit = Audit(
        spec=table("accelerometer_trusted"),
        policy="rubric",
        files={"data": ["t/kept.parquet", "t/added.parquet"]},
        extra={},
        lake=open_lake(str(tmp_path)),
    )
    before = {"rows": 6, "distinct_rows": 5}  # ("a", 1, 0.5) twice
    rows, distinct = integrity._distinct_after_adding(audit, ["t/kept.parquet"], before)
    whole = pa.concat_tables([kept, added])
    expected = len(set(zip(*(whole[c].to_pylist() for c in whole.column_names), strict=True)))
    assert (rows, distinct) == (11, expected) == (11, 6)
