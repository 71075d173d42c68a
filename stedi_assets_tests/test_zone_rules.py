"""Trusted and curated rules of ZONE_RULES.md, for both policies, on one small hand-written landing.

Each customer below exercises one rule and has its own time range (times are epoch ms, kept small to
read), so a table's rows can be checked scenario by scenario. The landing is built once per module and
the whole pipeline runs once per policy.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

import pytest

from stedi_assets_tests.conftest import checks_of, read_table, run_pipeline, write_landing

KEY = "zone-rules-test-key"


def customer(email, serial, updated, consent, **extra):
    record = {
        "customerName": "N",
        "email": email,
        "phone": "555",
        "birthDay": "1990-01-01",
        "serialNumber": serial,
        "registrationDate": 1,
        "lastUpdateDate": updated,
        "shareWithResearchAsOfDate": consent,
        "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None,
        **extra,
    }
    if consent == "absent":
        del record["shareWithResearchAsOfDate"]
    return record


def accel(user, t, x=0.5, y=0.25, z=0.125):
    return {"user": user, "timestamp": t, "x": x, "y": y, "z": z}


def step(t, serial, d=10.0):
    return {"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": d}


def pseudonym(identity_key: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), identity_key.encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------ the landing
# customer/landing/<file> paths sort as: b.json < part-1.json < part-2.json < z/a.json

CUSTOMERS_PART_1 = [
    # A: consent from 1000; readings before, at and after it; an exact duplicate reading
    customer("alice@x.com", "SA", 10, 1000),
    # B: consent, then revoked by a later record without consent
    customer("bob@x.com", "SB", 10, 2000),
    customer("bob@x.com", "SB", 20, None),
    # C: no consent, null or absent
    customer("carol@x.com", "SC", 10, None),
    customer("dave@x.com", "SD", 10, "absent"),
    # D: tie on lastUpdateDate: the record without consent wins though the other is in a later file
    customer("erin@x.com", "SE", 30, None),
    # F: tie on lastUpdateDate in one file: the later line wins
    customer("grace@x.com", "SG", 50, 6000, phone="first"),
    customer("grace@x.com", "SG", 50, 6500, phone="second"),
    # G: one identity key under strict, two customers under rubric
    customer(" Heidi@X.com", "SH", 10, 7000),
    customer("heidi@x.com", "SH", 20, 7000),
    # a tab is not trimmed: "\tivan@x.com" is not "ivan@x.com"
    customer("\tivan@x.com", "SI", 10, 7500),
    # H: the same record delivered twice (again in part-2.json)
    customer("judy@x.com", "SJ", 10, 8000),
    # I: ken and leo share a serial (the duplicate-serial defect); so do mallory (no consent) and nina
    customer("ken@x.com", "SDUP", 10, 9000),
    customer("leo@x.com", "SDUP", 10, 9000),
    customer("mallory@x.com", "SM", 10, None),
    customer("nina@x.com", "SM", 10, 9000),
    # K: two customers with readings at the same time
    customer("oscar@x.com", "SO", 10, 11000),
    customer("peggy@x.com", "SP", 10, 11000),
]
CUSTOMERS_PART_2 = [customer("judy@x.com", "SJ", 10, 8000)]
# E: tie on lastUpdateDate between files: customer/landing/z/a.json sorts after customer/landing/b.json
CUSTOMERS_Z_A = [customer("frank@x.com", "SF", 40, 5000, phone="z-file"), customer("erin@x.com", "SE", 30, 4000)]
CUSTOMERS_B = [customer("frank@x.com", "SF", 40, 5500, phone="b-file")]

ACCELEROMETER = [
    accel("alice@x.com", 900),
    accel("alice@x.com", 1000),
    accel("alice@x.com", 1200),
    accel("alice@x.com", 1200),
    accel("alice@x.com", 1300),
    accel("bob@x.com", 2100),
    accel("carol@x.com", 3100),
    accel("erin@x.com", 4100),
    accel("frank@x.com", 5100),
    accel("frank@x.com", 5200),
    accel("grace@x.com", 6200),
    accel("grace@x.com", 6600),
    accel("HEIDI@x.com ", 7100),
    accel("heidi@x.com", 7200),
    accel("HEIDI@X.COM", 7300),
    accel("ivan@x.com", 7600),
    accel("judy@x.com", 8100),
    accel("ken@x.com", 9400),
    accel("leo@x.com", 9500),
    accel("ken@x.com", 9600),
    accel("leo@x.com", 9600),
    accel("mallory@x.com", 9800),
    accel("nina@x.com", 9900),
    accel("mallory@x.com", 9950),
    accel("nina@x.com", 9950),
    accel("oscar@x.com", 11000, x=1.0),
    accel("peggy@x.com", 11000, x=2.0),
]

STEP_TRAINER = [
    step(900, "SA"),
    step(1000, "SA"),
    step(1200, "SA"),
    step(1200, "SA"),
    step(1999, "SA"),
    step(2100, "SB"),
    step(3100, "SC"),
    step(4100, "SE"),
    step(5200, "SF"),
    step(6600, "SG"),
    step(7100, "SH"),
    step(7200, "SH"),
    step(8100, "SJ"),
    step(9400, "SDUP"),
    step(9500, "SDUP"),
    step(9600, "SDUP"),
    step(9700, "SDUP"),
    step(9700, "SDUP"),
    step(9800, "SM"),
    step(9900, "SM"),
    step(9950, "SM"),
    step(10000, "SNONE"),
    step(11000, "SO", d=1.0),
    step(11000, "SP", d=2.0),
]


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("zone_rules") / "landing"
    write_landing(root, "customer", CUSTOMERS_Z_A, name="z/a.json")  # written first: mtime must not matter
    write_landing(root, "customer", CUSTOMERS_PART_1, name="part-1.json")
    write_landing(root, "customer", CUSTOMERS_PART_2, name="part-2.json")
    write_landing(root, "customer", CUSTOMERS_B, name="b.json")
    write_landing(root, "accelerometer", ACCELEROMETER)
    write_landing(root, "step_trainer", STEP_TRAINER)
    return root


def _build(landing, tmp_path_factory, policy):
    lake = tmp_path_factory.mktemp(f"lake_{policy}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEDI_PSEUDONYM_KEY", KEY)
        result = run_pipeline(landing, lake, policy)
    assert result.success, f"{policy} pipeline failed"
    tables = {
        name: read_table(lake, zone, name)
        for zone, name in (
            ("trusted", "customer_trusted"),
            ("trusted", "accelerometer_trusted"),
            ("trusted", "step_trainer_trusted"),
            ("curated", "customer_curated"),
            ("curated", "machine_learning_curated"),
        )
    }
    return result, tables


@pytest.fixture(scope="module")
def strict(landing, tmp_path_factory):
    return _build(landing, tmp_path_factory, "strict")


@pytest.fixture(scope="module")
def rubric(landing, tmp_path_factory):
    return _build(landing, tmp_path_factory, "rubric")


def emails(rows) -> Counter:
    return Counter(r["email"] for r in rows)


def readings(rows, user=None) -> Counter:
    return Counter((r["user"], r["timestamp"]) for r in rows if user is None or r["user"] == user)


def steps(rows) -> Counter:
    return Counter((r["sensorReadingTime"], r["serialNumber"]) for r in rows)


# ----------------------------------------------------------------------------------------- customer_trusted


def test_strict_customer_trusted_is_one_winning_consenting_record_per_identity_key(strict):
    _, t = strict
    assert emails(t["customer_trusted"]) == Counter(
        {
            "alice@x.com": 1,
            "frank@x.com": 1,
            "grace@x.com": 1,
            "heidi@x.com": 1,
            "\tivan@x.com": 1,
            "judy@x.com": 1,
            "ken@x.com": 1,
            "leo@x.com": 1,
            "nina@x.com": 1,
            "oscar@x.com": 1,
            "peggy@x.com": 1,
        }
    )


def test_rubric_customer_trusted_is_every_landing_record_with_consent(rubric):
    _, t = rubric
    assert emails(t["customer_trusted"]) == Counter(
        {
            "alice@x.com": 1,
            "bob@x.com": 1,
            "erin@x.com": 1,
            "frank@x.com": 2,
            "grace@x.com": 2,
            " Heidi@X.com": 1,
            "heidi@x.com": 1,
            "\tivan@x.com": 1,
            "judy@x.com": 2,
            "ken@x.com": 1,
            "leo@x.com": 1,
            "nina@x.com": 1,
            "oscar@x.com": 1,
            "peggy@x.com": 1,
        }
    )
    assert all(r["shareWithResearchAsOfDate"] is not None for r in t["customer_trusted"])
    assert [r["shareWithResearchAsOfDate"] for r in t["customer_trusted"] if r["email"] == "bob@x.com"] == [2000]


@pytest.mark.parametrize("policy", ["strict", "rubric"])
def test_null_or_absent_consent_is_no_consent(policy, request):
    _, t = request.getfixturevalue(policy)
    assert not {"carol@x.com", "dave@x.com", "mallory@x.com"} & set(emails(t["customer_trusted"]))
    assert not readings(t["accelerometer_trusted"], "carol@x.com")
    assert 3100 not in {r["sensorReadingTime"] for r in t["step_trainer_trusted"]}


def test_strict_a_later_record_without_consent_revokes_it(strict):
    _, t = strict
    assert "bob@x.com" not in emails(t["customer_trusted"])
    assert not readings(t["accelerometer_trusted"], "bob@x.com")
    assert 2100 not in {r["sensorReadingTime"] for r in t["machine_learning_curated"]}


def test_strict_tie_goes_to_the_record_without_consent(strict):
    _, t = strict
    assert "erin@x.com" not in emails(t["customer_trusted"])
    assert not readings(t["accelerometer_trusted"], "erin@x.com")


def test_strict_tie_then_goes_to_the_later_file_by_relative_path(strict):
    _, t = strict
    frank = [r for r in t["customer_trusted"] if r["email"] == "frank@x.com"]
    assert [(r["phone"], r["shareWithResearchAsOfDate"]) for r in frank] == [("z-file", 5000)]
    # the winner's consent date (5000, not 5500) decides which readings are trusted
    assert readings(t["accelerometer_trusted"], "frank@x.com") == Counter(
        {("frank@x.com", 5100): 1, ("frank@x.com", 5200): 1}
    )


def test_strict_tie_then_goes_to_the_later_line(strict):
    _, t = strict
    grace = [r for r in t["customer_trusted"] if r["email"] == "grace@x.com"]
    assert [(r["phone"], r["shareWithResearchAsOfDate"]) for r in grace] == [("second", 6500)]
    assert readings(t["accelerometer_trusted"], "grace@x.com") == Counter({("grace@x.com", 6600): 1})


def test_strict_email_case_and_spaces_share_an_identity_key(strict):
    _, t = strict
    heidi = [r for r in t["customer_trusted"] if r["email"].strip().lower() == "heidi@x.com"]
    assert [(r["email"], r["lastUpdateDate"]) for r in heidi] == [("heidi@x.com", 20)]
    # readings are matched on lower(trim(user)) and keep the user as written
    assert readings(t["accelerometer_trusted"]) & Counter(
        {("HEIDI@x.com ", 7100): 1, ("heidi@x.com", 7200): 1}
    ) == Counter({("HEIDI@x.com ", 7100): 1, ("heidi@x.com", 7200): 1})


def test_rubric_email_variants_are_different_customers(rubric):
    _, t = rubric
    assert emails(t["customer_trusted"])[" Heidi@X.com"] == 1
    assert emails(t["customer_trusted"])["heidi@x.com"] == 1
    assert readings(t["accelerometer_trusted"], "HEIDI@x.com ") == Counter()  # exact match only
    assert readings(t["accelerometer_trusted"], "HEIDI@X.COM") == Counter()  # not even ignoring case
    assert readings(t["accelerometer_trusted"], "heidi@x.com") == Counter({("heidi@x.com", 7200): 1})


@pytest.mark.parametrize("policy", ["strict", "rubric"])
def test_trim_removes_spaces_only_not_tabs(policy, request):
    _, t = request.getfixturevalue(policy)
    assert "\tivan@x.com" in emails(t["customer_trusted"])
    assert not readings(t["accelerometer_trusted"], "ivan@x.com")
    assert "\tivan@x.com" not in emails(t["customer_curated"])


# ------------------------------------------------------------------------------------ accelerometer_trusted


def test_strict_accelerometer_trusted_from_consent_date_on_and_distinct(strict):
    _, t = strict
    # 900 is before alice's consent (1000); 1000 is on it; 1200 was delivered twice
    assert readings(t["accelerometer_trusted"], "alice@x.com") == Counter(
        {("alice@x.com", 1000): 1, ("alice@x.com", 1200): 1, ("alice@x.com", 1300): 1}
    )


def test_strict_accelerometer_trusted_in_full(strict):
    _, t = strict
    assert sorted(readings(t["accelerometer_trusted"]).elements()) == sorted(
        [
            ("alice@x.com", 1000),
            ("alice@x.com", 1200),
            ("alice@x.com", 1300),
            ("frank@x.com", 5100),
            ("frank@x.com", 5200),
            ("grace@x.com", 6600),
            ("HEIDI@x.com ", 7100),
            ("heidi@x.com", 7200),
            ("HEIDI@X.COM", 7300),
            ("judy@x.com", 8100),
            ("ken@x.com", 9400),
            ("leo@x.com", 9500),
            ("ken@x.com", 9600),
            ("leo@x.com", 9600),
            ("nina@x.com", 9900),
            ("nina@x.com", 9950),
            ("oscar@x.com", 11000),
            ("peggy@x.com", 11000),
        ]
    )
    assert list(t["accelerometer_trusted"][0]) == ["user", "timestamp", "x", "y", "z"]


def test_rubric_accelerometer_trusted_exact_match_no_date_filter_no_dedup(rubric):
    _, t = rubric
    assert readings(t["accelerometer_trusted"], "alice@x.com") == Counter(
        {("alice@x.com", 900): 1, ("alice@x.com", 1000): 1, ("alice@x.com", 1200): 2, ("alice@x.com", 1300): 1}
    )
    # consent revoked later or lost on a tie still counts under rubric: a consenting record exists
    assert readings(t["accelerometer_trusted"], "bob@x.com") == Counter({("bob@x.com", 2100): 1})
    assert readings(t["accelerometer_trusted"], "erin@x.com") == Counter({("erin@x.com", 4100): 1})
    assert readings(t["accelerometer_trusted"], "grace@x.com") == Counter(
        {("grace@x.com", 6200): 1, ("grace@x.com", 6600): 1}
    )
    assert list(t["accelerometer_trusted"][0]) == ["user", "timestamp", "x", "y", "z"]


def test_rubric_customer_delivered_twice_does_not_duplicate_readings(rubric):
    _, t = rubric
    assert emails(t["customer_trusted"])["judy@x.com"] == 2
    assert readings(t["accelerometer_trusted"], "judy@x.com") == Counter({("judy@x.com", 8100): 1})
    assert readings(t["accelerometer_trusted"], "frank@x.com") == Counter(
        {("frank@x.com", 5100): 1, ("frank@x.com", 5200): 1}
    )
    assert len(t["accelerometer_trusted"]) == 21


# ------------------------------------------------------------------------------------------ customer_curated


def test_strict_customer_curated_only_customers_with_trusted_readings(strict):
    _, t = strict
    expected = emails(t["customer_trusted"]) - Counter({"\tivan@x.com": 1})
    assert emails(t["customer_curated"]) == expected
    assert list(t["customer_curated"][0]) == list(t["customer_trusted"][0])  # customer columns only


def test_strict_customer_with_readings_only_before_consent_is_not_curated(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    write_landing(landing, "customer", [customer("zoe@x.com", "SZ", 10, 5000)])
    write_landing(landing, "accelerometer", [accel("zoe@x.com", 4999)])
    write_landing(landing, "step_trainer", [step(4999, "SZ")])
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", KEY)
    assert run_pipeline(landing, tmp_path / "lake", "strict").success
    assert emails(read_table(tmp_path / "lake", "trusted", "customer_trusted")) == Counter({"zoe@x.com": 1})
    assert read_table(tmp_path / "lake", "curated", "customer_curated") == []


def test_rubric_customer_curated_one_row_per_trusted_row(rubric):
    _, t = rubric
    assert emails(t["customer_curated"]) == Counter(
        {
            "alice@x.com": 1,
            "bob@x.com": 1,
            "erin@x.com": 1,
            "frank@x.com": 2,
            "grace@x.com": 2,
            "heidi@x.com": 1,
            "judy@x.com": 2,
            "ken@x.com": 1,
            "leo@x.com": 1,
            "nina@x.com": 1,
            "oscar@x.com": 1,
            "peggy@x.com": 1,
        }
    )  # alice has 5 readings and still one row
    assert list(t["customer_curated"][0]) == list(t["customer_trusted"][0])


# -------------------------------------------------------------------------------------- step_trainer_trusted


def test_rubric_step_trainer_trusted_is_a_semi_join_on_curated_serials(rubric):
    _, t = rubric
    assert steps(t["step_trainer_trusted"]) == Counter(
        {
            (900, "SA"): 1,
            (1000, "SA"): 1,
            (1200, "SA"): 2,
            (1999, "SA"): 1,  # no date filter, no dedup
            (2100, "SB"): 1,
            (4100, "SE"): 1,
            (5200, "SF"): 1,
            (6600, "SG"): 1,  # frank: once, not twice
            (7100, "SH"): 1,
            (7200, "SH"): 1,
            (8100, "SJ"): 1,
            (9400, "SDUP"): 1,
            (9500, "SDUP"): 1,
            (9600, "SDUP"): 1,
            (9700, "SDUP"): 2,
            (9800, "SM"): 1,
            (9900, "SM"): 1,
            (9950, "SM"): 1,
            (11000, "SO"): 1,
            (11000, "SP"): 1,
        }
    )
    assert list(t["step_trainer_trusted"][0]) == ["sensorReadingTime", "serialNumber", "distanceFromObject"]


def test_strict_step_trainer_trusted_attribution(strict):
    _, t = strict
    got = Counter((r["sensorReadingTime"], r["serialNumber"], r["customer_key"]) for r in t["step_trainer_trusted"])
    assert got == Counter(
        {
            # one candidate: alice; 900 is before her consent; 1200 twice in landing counts once
            (1000, "SA", "alice@x.com"): 1,
            (1200, "SA", "alice@x.com"): 1,
            (1999, "SA", "alice@x.com"): 1,
            (5200, "SF", "frank@x.com"): 1,
            (6600, "SG", "grace@x.com"): 1,
            (7100, "SH", "heidi@x.com"): 1,
            (7200, "SH", "heidi@x.com"): 1,
            (8100, "SJ", "judy@x.com"): 1,
            # SDUP: ken and leo are candidates; the one with an accelerometer reading at that time wins
            (9400, "SDUP", "ken@x.com"): 1,
            (9500, "SDUP", "leo@x.com"): 1,
            # SM: mallory (no consent, still a candidate) owns 9800, which is excluded; nina owns 9900;
            # at 9950 both have an accelerometer reading (mallory's without consent still counts): ambiguous
            (9900, "SM", "nina@x.com"): 1,
            (11000, "SO", "oscar@x.com"): 1,
            (11000, "SP", "peggy@x.com"): 1,
        }
    )
    columns = list(t["step_trainer_trusted"][0])
    assert columns[:3] == ["sensorReadingTime", "serialNumber", "distanceFromObject"]


def test_strict_ambiguous_readings_are_excluded_and_counted_as_a_warning(strict):
    result, t = strict
    times = {r["sensorReadingTime"] for r in t["step_trainer_trusted"]}
    assert not times & {9600, 9700, 9950}  # 9600, 9950: both candidates match; 9700: neither
    assert 10000 not in times  # no candidate at all
    check = checks_of(result)[("step_trainer_trusted", "ambiguous_readings")]
    assert not check.passed
    assert check.severity.value == "WARN"
    assert check.metadata["ambiguous_readings"].value == 3  # 9700 twice in landing counts once


# ---------------------------------------------------------------------------------- machine_learning_curated


def test_rubric_machine_learning_curated_joins_on_time_only(rubric):
    _, t = rubric
    rows = t["machine_learning_curated"]
    assert list(rows[0]) == ["sensorReadingTime", "serialNumber", "distanceFromObject", "timestamp", "x", "y", "z"]
    assert all(r["sensorReadingTime"] == r["timestamp"] for r in rows)
    assert Counter((r["sensorReadingTime"], r["serialNumber"]) for r in rows) == Counter(
        {
            (900, "SA"): 1,
            (1000, "SA"): 1,
            (1200, "SA"): 4,  # 2 step x 2 accelerometer duplicates
            (2100, "SB"): 1,
            (4100, "SE"): 1,
            (5200, "SF"): 1,
            (6600, "SG"): 1,
            (7200, "SH"): 1,
            (8100, "SJ"): 1,
            (9400, "SDUP"): 1,
            (9500, "SDUP"): 1,
            (9600, "SDUP"): 2,
            (9900, "SM"): 1,
            (9950, "SM"): 1,
            (11000, "SO"): 2,
            (11000, "SP"): 2,
        }
    )  # each step paired with both customers' readings
    assert {(r["serialNumber"], r["x"]) for r in rows if r["sensorReadingTime"] == 11000} == {
        ("SO", 1.0),
        ("SO", 2.0),
        ("SP", 1.0),
        ("SP", 2.0),
    }


def test_strict_machine_learning_curated_pairs_the_same_customer_only(strict):
    _, t = strict
    rows = t["machine_learning_curated"]
    assert list(rows[0]) == ["customer_id", "sensorReadingTime", "distanceFromObject", "x", "y", "z"]
    got = Counter((r["customer_id"], r["sensorReadingTime"]) for r in rows)
    assert got == Counter(
        {
            (pseudonym("alice@x.com"), 1000): 1,
            (pseudonym("alice@x.com"), 1200): 1,
            (pseudonym("frank@x.com"), 5200): 1,
            (pseudonym("grace@x.com"), 6600): 1,
            (pseudonym("heidi@x.com"), 7100): 1,
            (pseudonym("heidi@x.com"), 7200): 1,
            (pseudonym("judy@x.com"), 8100): 1,
            (pseudonym("ken@x.com"), 9400): 1,
            (pseudonym("leo@x.com"), 9500): 1,
            (pseudonym("nina@x.com"), 9900): 1,
            (pseudonym("oscar@x.com"), 11000): 1,
            (pseudonym("peggy@x.com"), 11000): 1,
        }
    )
    at_11000 = {(r["customer_id"], r["distanceFromObject"], r["x"]) for r in rows if r["sensorReadingTime"] == 11000}
    assert at_11000 == {(pseudonym("oscar@x.com"), 1.0, 1.0), (pseudonym("peggy@x.com"), 2.0, 2.0)}


def test_strict_machine_learning_curated_holds_no_personal_data(strict):
    _, t = strict
    for row in t["machine_learning_curated"]:
        assert not any("@" in str(v) for v in row.values())
        assert not {"email", "user", "serialNumber", "customerName", "phone", "birthDay"} & set(row)


def test_strict_pseudonym_is_hmac_sha256_of_the_identity_key_under_a_long_key(tmp_path, monkeypatch):
    long_key = "k" * 70 + "é"  # longer than SHA-256's 64-byte block: HMAC hashes the key first
    landing = tmp_path / "landing"
    write_landing(landing, "customer", [customer(" Zoë@X.com ", "SZ", 10, 100)])
    write_landing(landing, "accelerometer", [accel("zoë@x.com", 200)])
    write_landing(landing, "step_trainer", [step(200, "SZ")])
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", long_key)
    assert run_pipeline(landing, tmp_path / "lake", "strict").success
    rows = read_table(tmp_path / "lake", "curated", "machine_learning_curated")
    assert [r["customer_id"] for r in rows] == [pseudonym("zoë@x.com", long_key)]


# ------------------------------------------------ regressions: bugs these tests found, now fixed


@pytest.fixture(scope="module")
def nbsp(tmp_path_factory):
    """Emails that differ by a no-break space (U+00A0), which the contract's trim must keep."""
    root = tmp_path_factory.mktemp("nbsp")
    write_landing(
        root / "landing",
        "customer",
        [
            customer("amy@x.com", "S1", 1, 100),
            customer("\u00a0amy@x.com", "S2", 2, None),  # another identity key: does not revoke amy
            customer("ben@x.com", "S3", 1, 100),
        ],
    )
    write_landing(root / "landing", "accelerometer", [accel("amy@x.com", 200), accel("\u00a0ben@x.com", 200)])
    write_landing(root / "landing", "step_trainer", [step(200, "S1")])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEDI_PSEUDONYM_KEY", KEY)
        run_pipeline(root / "landing", root / "lake", "strict")
    return root / "lake"


def test_strict_identity_key_trims_u0020_only_customers(nbsp):
    assert "amy@x.com" in emails(read_table(nbsp, "trusted", "customer_trusted"))


def test_strict_identity_key_trims_u0020_only_readings(nbsp):
    assert readings(read_table(nbsp, "trusted", "accelerometer_trusted"), "\u00a0ben@x.com") == Counter()
