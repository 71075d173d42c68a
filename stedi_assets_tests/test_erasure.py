"""Erasure on the Iceberg lake: resumable after a kill, final (no rollback or time travel brings the person
back), exact (identity-key equality, never a substring), and careful with what it prints."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import read_table, restored_afterwards, run_pipeline, write_landing
from erasure_helpers import belongs_to, files_naming

from stedi_assets.cli import main
from stedi_assets.generator import BASE_TIME_MS, DEFECTS, generate_landing
from stedi_assets.identity import identity_key
from stedi_assets.privacy.forget import STOP_AFTER
from stedi_assets.storage.lake import open_lake, part_table
from stedi_assets.zones import TABLES

REGISTER = Path("_private") / "erasures"  # one file per erasure


def serials_of(lake: Path, key: str) -> set[str]:
    return {
        r["serialNumber"] for r in read_table(lake, "landing", "customer_landing") if identity_key(r["email"]) == key
    }


def chosen_person(lake: Path) -> tuple[str, set[str]]:
    """A curated customer with step readings: (identity key, serials)."""
    curated = sorted(read_table(lake, "curated", "customer_curated"), key=lambda r: r["email"])
    devices = {r["serialNumber"] for r in read_table(lake, "trusted", "step_trainer_trusted")}
    email = next(r["email"] for r in curated if r["serialNumber"] in devices)
    return identity_key(email), serials_of(lake, identity_key(email))


def erasures(lake: Path) -> list[dict]:
    """The register's erasures, as their files hold them, oldest first."""
    found = [json.loads(p.read_text()) for p in (lake / REGISTER).glob("*.json")]
    return sorted(found, key=lambda e: (e["requested_at"], e["id"]))


def register_text(lake: Path) -> str:
    return "".join(p.read_text() for p in sorted((lake / REGISTER).glob("*.json")))


def snapshot_rows(lake: Path):
    """(table label, row) for every row of every kept snapshot of every table part: what any rollback or
    time travel could ever show."""
    handle = open_lake(str(lake))
    for spec in TABLES:
        for part in spec.parts:
            name = part_table(spec.name, part)
            for snap in handle.snapshots(spec.zone, name):
                for f in snap.files["data"]:
                    for row in pq.read_table(lake / f).to_pylist():
                        yield f"{spec.zone}.{name}@{snap.snapshot}", row


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- a lake with two runs over generated data with every defect (built once, restored after each test) --


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("erasure")
    generate_landing(root / "landing", customers=150, seed=3, defects=DEFECTS)
    for _ in range(2):
        assert run_pipeline(root / "landing", root / "lake").success
    return root


@pytest.mark.parametrize("stop_after, resume", [("1", "run"), ("0", "forget"), ("5", "forget another")])
def test_a_killed_forget_is_finished_by_the_next_command(two_runs, capsys, stop_after, resume):
    with restored_afterwards(two_runs) as root:
        landing, lake = root / "landing", root / "lake"
        key, serials = chosen_person(lake)
        needles = [key, *serials]
        child = subprocess.run(
            [sys.executable, "-m", "stedi_assets.cli", "forget", key, "--landing", str(landing), "--lake", str(lake)],
            env={**os.environ, STOP_AFTER: stop_after},
            capture_output=True,
            timeout=600,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
        assert [e["state"] for e in erasures(lake)] == ["pending"]  # recorded before anything was deleted
        assert key not in register_text(lake).lower()
        assert files_naming(landing, needles) == []  # landing goes first
        assert files_naming(lake, needles)  # killed part-way: the lake is not clean yet
        assert cli(capsys, "check", "--lake", str(lake))[0] == 1  # and the checks say so

        if resume == "run":
            code, out, _ = cli(capsys, "run", "--landing", str(landing), "--lake", str(lake))
            assert "finished 1 pending erasure(s) first" in out
        elif resume == "forget":
            code, out, _ = cli(capsys, "forget", "--landing", str(landing), "--lake", str(lake))
            assert "finished a pending erasure: 1 people" in out
        else:
            other, _ = min(
                (r["email"], 0)
                for r in read_table(lake, "trusted", "customer_trusted")
                if identity_key(r["email"]) != key
            )
            code, out, _ = cli(capsys, "forget", other, "--landing", str(landing), "--lake", str(lake))
            assert "finished a pending erasure" in out and "erased 1 people" in out
        assert code == 0
        assert {e["state"] for e in erasures(lake)} == {"done"}
        assert files_naming(lake, needles) == []  # every file: Parquet, Avro manifests, metadata, catalog
        assert files_naming(landing, needles) == []
        assert not [t for t, row in snapshot_rows(lake) if belongs_to(row, key, serials)]
        assert cli(capsys, "check", "--lake", str(lake))[0] == 0


# -- rollback and time travel --------------------------------------------------------------------------


def person_lines(email: str, serial: str, start: int) -> dict[str, list]:
    """A consenting customer with readings that reach the ML table, and an invalid line naming them."""
    customer = {
        "customerName": "Pat Example",
        "email": email,
        "phone": "8015550000",
        "birthDay": "1980-01-01",
        "serialNumber": serial,
        "registrationDate": start,
        "lastUpdateDate": start,
        "shareWithResearchAsOfDate": start,
        "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None,
    }
    times = [start + 1000 * i for i in range(1, 6)]
    return {
        "customer": [customer, f'{{"email": "{email}", "serialNumber": '],
        "accelerometer": [{"user": email, "timestamp": t, "x": 1.0, "y": 0.0, "z": -1.0} for t in times],
        "step_trainer": [{"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": 200.0} for t in times],
    }


def deliver(landing: Path, name: str, *people: dict[str, list]) -> None:
    for source in ("customer", "accelerometer", "step_trainer"):
        write_landing(landing, source, [line for p in people for line in p[source]], name=f"{name}.json")


def runs_of(lake: Path) -> list[str]:
    from stedi_assets.storage.runs import complete_runs

    return [run for _, run in complete_runs(open_lake(str(lake)))]


def count(capsys, lake: Path, sql: str, *as_of: str) -> tuple[int, int | None, str]:
    code, out, err = cli(capsys, "query", "--lake", str(lake), "--format", "json", *as_of, sql)
    return code, (json.loads(out)[0]["n"] if code == 0 else None), err


PAT_EMAIL, PAT_SERIAL = "Pat.Erased@example.org", "5e7a0000-0000-4000-8000-00000000e5ed"
QUINN_EMAIL, QUINN_SERIAL = "Quinn.Kept@example.org", "5e7a0000-0000-4000-8000-0000000000cc"


@pytest.fixture(scope="module")
def erased_after_three_runs(tmp_path_factory) -> tuple[Path, dict]:
    """run 1 without Pat, runs 2 and 3 with Pat and Quinn, then Pat erased."""
    root = tmp_path_factory.mktemp("history")
    landing, lake = root / "landing", root / "lake"
    generate_landing(landing, customers=40, seed=5)
    assert run_pipeline(landing, lake).success
    start = BASE_TIME_MS + 10 * 86_400_000
    deliver(landing, "late", person_lines(PAT_EMAIL, PAT_SERIAL, start), person_lines(QUINN_EMAIL, QUINN_SERIAL, start))
    for _ in range(2):
        assert run_pipeline(landing, lake).success
    runs = runs_of(lake)
    assert len(runs) == 3
    assert main(["forget", PAT_EMAIL.lower(), "--landing", str(landing), "--lake", str(lake)]) == 0
    return root, {"third": runs[0], "second": runs[1], "first": runs[2]}


PAT = "SELECT count(*) AS n FROM {t} WHERE lower(trim(email)) = 'pat.erased@example.org'"
QUINN = "SELECT count(*) AS n FROM {t} WHERE lower(trim(email)) = 'quinn.kept@example.org'"


def test_no_kept_snapshot_and_no_file_holds_an_erased_person(erased_after_three_runs):
    root, _ = erased_after_three_runs
    assert files_naming(root, [PAT_EMAIL, PAT_SERIAL]) == []
    assert files_naming(root, [QUINN_EMAIL, QUINN_SERIAL])
    assert not [t for t, row in snapshot_rows(root / "lake") if belongs_to(row, PAT_EMAIL.lower(), {PAT_SERIAL})]


def test_time_travel_to_a_run_that_held_an_erased_person_fails_in_one_line(erased_after_three_runs, capsys):
    root, runs = erased_after_three_runs
    lake = root / "lake"
    code, _, err = count(capsys, lake, PAT.format(t="landing.customer_landing"), "--as-of", runs["second"])
    assert code == 2 and err.count("\n") == 1 and "no complete run" in err
    code, out, err = cli(capsys, "rollback", "--lake", str(lake), "--run", runs["second"])
    assert code == 2 and err.count("\n") == 1 and "no complete run" in err
    for run in ("first", "third"):  # never held Pat / now holds the lake minus Pat
        assert count(capsys, lake, PAT.format(t="trusted.customer_trusted"), "--as-of", runs[run])[:2] == (0, 0)
    assert count(capsys, lake, QUINN.format(t="curated.customer_curated"), "--as-of", runs["third"])[:2] == (0, 1)


def test_rolling_back_any_table_never_brings_an_erased_person_back(erased_after_three_runs, capsys):
    root, runs = erased_after_three_runs
    with restored_afterwards(root):
        lake = root / "lake"
        assert cli(capsys, "rollback", "--lake", str(lake), "--run", runs["third"])[0] == 0
        for spec in TABLES:
            for _ in range(3):  # back through every snapshot the table keeps (or until there is none)
                code, _, err = cli(capsys, "rollback", "--lake", str(lake), spec.qualified_name)
                assert code == 0 or (code == 2 and err.count("\n") == 1), err
                if "email" in [c.name for c in spec.columns]:
                    assert count(capsys, lake, PAT.format(t=spec.qualified_name), "--as-of", "current")[:2] == (0, 0)
        assert not [t for t, row in snapshot_rows(lake) if belongs_to(row, PAT_EMAIL.lower(), {PAT_SERIAL})]


def test_the_latest_run_stays_the_default_view_after_an_erasure(erased_after_three_runs, capsys):
    root, runs = erased_after_three_runs
    lake = root / "lake"
    assert runs_of(lake)[0] == runs["third"], "the first run (without Quinn) became the default view"
    assert count(capsys, lake, QUINN.format(t="curated.customer_curated"))[:2] == (0, 1)


# -- exactness and what `forget` prints (issue 10) -------------------------------------------------------

CASE, SHOWCASE = "case@p.com", "showcase@p.com"


def small_people_landing(root: Path) -> Path:
    """Two people whose e-mails contain one another, readings, and quarantined lines of all kinds."""

    def customer(email, serial):
        return {
            "customerName": "A B",
            "email": email,
            "phone": "1",
            "birthDay": "1990-01-01",
            "serialNumber": serial,
            "registrationDate": 1,
            "lastUpdateDate": 1,
            "shareWithResearchAsOfDate": 1,
        }

    write_landing(
        root, "customer", [customer(CASE, "S-CASE"), customer(SHOWCASE, "S-SHOW"), customer(" Case@P.COM", "S-CASE")]
    )
    reading = '{"user":"%s","timestamp":%d,"x":1,"y":0,"z":0}'
    write_landing(
        root,
        "accelerometer",
        [
            reading % (CASE, 10),
            reading % ("CASE@P.COM ", 11),
            reading % (SHOWCASE, 10),
            reading % (SHOWCASE, 11),
            '{"user": "case@p.com", "timestamp": "late", "x": 1, "y": 0, "z": 0}',  # invalid, names case
            '{"user": "xcase@p.com", "timestamp": "late", "x": 1, "y": 0, "z": 0}',  # invalid, names xcase
            '{"comment": "write to case@p.com", "note": 1}',  # a substring: not a name
            '{"user": "showcase@p.com", "note": "case"',  # truncated, names showcase
            (reading % (CASE, 12)) + "\r" + (reading % (SHOWCASE, 12)),  # CR-only: ONE line, names case
        ],
    )
    step = '{"sensorReadingTime":%d,"serialNumber":"%s","distanceFromObject":1.0}'
    write_landing(
        root,
        "step_trainer",
        [
            step % (10, "S-CASE"),
            step % (11, "S-CASE"),
            step % (10, "S-SHOW"),
            step % (11, "S-SHOW"),
            '{"serialNumber": "S-CASE", "sensorReadingTime": "x"}',
            '{"serialNumber": "S-CASE-2", "sensorReadingTime": "x"}',
        ],
    )
    return root


def landing_lines(landing: Path, source: str) -> list[bytes]:
    return (landing / source / "landing" / "part-1.json").read_bytes().split(b"\n")[:-1]


def test_forget_matches_people_by_identity_key_equality_only(tmp_path, capsys):
    landing, lake = small_people_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    before = {s: landing_lines(landing, s) for s in ("customer", "accelerometer", "step_trainer")}
    quarantined = len(read_table(lake, "landing", "rejected"))

    code, out, err = cli(capsys, "forget", "CASE@P.COM", "--landing", str(landing), "--lake", str(lake))
    assert code == 0, err
    assert "case@p.com" not in (out + err).lower() and "S-CASE" not in out + err

    assert landing_lines(landing, "customer") == [before["customer"][1]]  # showcase's record only
    assert landing_lines(landing, "accelerometer") == [before["accelerometer"][i] for i in (2, 3, 5, 6, 7)]
    assert landing_lines(landing, "step_trainer") == [before["step_trainer"][i] for i in (2, 3, 5)]
    assert len(read_table(lake, "landing", "rejected")) == quarantined - 3  # case's 3 invalid lines
    assert sorted(r["user"] for r in read_table(lake, "landing", "accelerometer_landing")) == [SHOWCASE] * 2
    assert [r["email"] for r in read_table(lake, "trusted", "customer_trusted")] == [SHOWCASE]
    assert {r["serialNumber"] for r in read_table(lake, "landing", "step_trainer_landing")} == {"S-SHOW"}
    assert cli(capsys, "check", "--lake", str(lake))[0] == 0  # reconciliation: the reader's lines, as forget saw them


@pytest.mark.parametrize("argument", ["a", "1", "John Smith", "+1 801 555 1212", "@p.com", "case@", "a@b c@d"])
def test_forget_refuses_an_argument_that_is_not_an_email_address(tmp_path, capsys, argument):
    landing, lake = small_people_landing(tmp_path / "landing"), tmp_path / "lake"
    landing_before = {p: p.read_bytes() for p in landing.rglob("*") if p.is_file()}
    code, out, err = cli(capsys, "forget", argument, "--landing", str(landing), "--lake", str(lake))
    assert (code, out) == (2, "")  # one line that never echoes what may be a name or a phone number
    assert err == "stedi: error: argument 1 is not an e-mail address: name each person by e-mail (user@domain)\n"
    assert {p: p.read_bytes() for p in landing.rglob("*") if p.is_file()} == landing_before
    assert not lake.exists()

    listing = tmp_path / "people.txt"
    listing.write_text(f"# to erase\n{CASE}\n{argument}\n")
    code, _, err = cli(capsys, "forget", "--file", str(listing), "--landing", str(landing), "--lake", str(lake))
    assert (code, err) == (2, "stedi: error: line 3 of --file is not an e-mail address (one e-mail per line)\n")


def fingerprint(*roots: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dry_run_counts_what_would_go_per_table_and_landing_file_and_changes_nothing(tmp_path, capsys):
    landing, lake = small_people_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    assert run_pipeline(landing, lake).success
    before = fingerprint(landing, lake)

    code, out, err = cli(capsys, "forget", "--dry-run", CASE, "--landing", str(landing), "--lake", str(lake))
    assert code == 0, err
    assert fingerprint(landing, lake) == before  # nothing written, not even a key
    assert "case@p.com" not in out.lower() and "S-CASE" not in out and "showcase" not in out
    files = {line.split()[2]: int(line.split()[3]) for line in out.splitlines() if line.startswith("  landing file ")}
    assert files == {
        "customer/landing/part-1.json": 2,
        "accelerometer/landing/part-1.json": 4,
        "step_trainer/landing/part-1.json": 3,
    }
    tables = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines() if "rows in the current" in line}
    expected = {
        "landing.customer_landing": 2,
        "landing.accelerometer_landing": 2,
        "landing.step_trainer_landing": 2,
        "landing.accelerometer_landing/rejected": 2,
        "landing.step_trainer_landing/rejected": 1,
        "landing.rejected": 3,
        "trusted.customer_trusted": 1,
        "trusted.accelerometer_trusted": 2,
        "trusted.step_trainer_trusted": 2,
        "curated.customer_curated": 1,
        "curated.machine_learning_curated": 2,
    }
    would = {t: int(line.split()[0]) for t, line in tables.items()}
    assert {t: n for t, n in would.items() if n} == expected
    assert all(line.endswith("1 older snapshots to expire") for t, line in tables.items() if would[t])

    code, out, _ = cli(capsys, "forget", CASE, "--landing", str(landing), "--lake", str(lake))
    assert code == 0
    removed = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if "rows removed" in line}
    assert {t: n for t, n in removed.items() if n} == expected  # the dry run told the truth


# -- on S3 (moto or Ceph RADOS Gateway), with a SQL catalog ----------------------------------------------


def s3_keys(bucket: str, prefix: str) -> list[str]:
    import boto3

    pages = boto3.session.Session().client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_a_killed_forget_on_s3_is_finished_and_leaves_no_trace(s3_env, tmp_path, monkeypatch, capsys):
    import boto3
    from conftest import new_bucket, only_on

    only_on(s3_env, "ceph", "the catalog is SQLite here, so only the S3 server differs, and Ceph is the real one")

    from stedi_assets.storage.catalog import reset_catalogs

    bucket = new_bucket()
    boto3.session.Session().client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("STEDI_CATALOG", f"sqlite:///{tmp_path / 'catalog.db'}")
    reset_catalogs()
    local = tmp_path / "landing"
    generate_landing(local, customers=12, seed=7, defects=DEFECTS)
    start = BASE_TIME_MS + 10 * 86_400_000
    deliver(local, "late", person_lines(PAT_EMAIL, PAT_SERIAL, start), person_lines(QUINN_EMAIL, QUINN_SERIAL, start))
    landing, lake = f"s3://{bucket}/landing", f"s3://{bucket}/lake"
    assert main(["land", str(local), "--landing", landing]) == 0
    for _ in range(2):
        assert main(["run", "--landing", landing, "--lake", lake]) == 0

    child = subprocess.run(
        [sys.executable, "-m", "stedi_assets.cli", "forget", PAT_EMAIL, "--landing", landing, "--lake", lake],
        env={**os.environ, STOP_AFTER: "2"},
        capture_output=True,
        timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    code, out, _ = cli(capsys, "forget", "--landing", landing, "--lake", lake)
    assert code == 0 and "finished a pending erasure: 1 people" in out

    s3 = boto3.session.Session().client("s3")
    download = tmp_path / "download"
    for key in s3_keys(bucket, ""):
        target = download / key
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    assert files_naming(download, [PAT_EMAIL, PAT_SERIAL]) == []  # lake, manifests, landing: every object
    assert files_naming(download, [QUINN_EMAIL, QUINN_SERIAL])  # everybody else is still there
    assert cli(capsys, "check", "--lake", lake)[0] == 0


# -- pseudonym keys -----------------------------------------------------------------------------------------


def test_forget_refuses_a_lake_whose_current_ml_table_was_built_with_another_key(tmp_path, capsys, monkeypatch):
    landing, lake = small_people_landing(tmp_path / "landing"), tmp_path / "lake"
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "key-of-the-last-run")
    assert run_pipeline(landing, lake).success
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "a-rotated-key")
    before = fingerprint(landing, lake)
    code, out, err = cli(capsys, "forget", CASE, "--landing", str(landing), "--lake", str(lake))
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "curated.machine_learning_curated was built with another pseudonym key: re-run the pipeline" in err
    assert fingerprint(landing, lake) == before  # refused before anything was recorded or deleted


def test_a_pending_erasure_finishes_over_a_table_rebuilt_meanwhile_under_a_new_key(tmp_path, capsys, monkeypatch):
    landing, lake = small_people_landing(tmp_path / "landing"), tmp_path / "lake"
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "old-key")
    assert run_pipeline(landing, lake).success
    child = subprocess.run(
        [sys.executable, "-m", "stedi_assets.cli", "forget", CASE, "--landing", str(landing), "--lake", str(lake)],
        env={**os.environ, STOP_AFTER: "0"},
        capture_output=True,
        timeout=600,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    # a run started from Dagster itself (no `stedi run`, so nothing finishes the erasure) under a new key:
    # landing drops the pending person, so the new ML snapshot cannot hold them, and its pseudonyms are
    # under a key the register has none for
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "new-key")
    assert run_pipeline(landing, lake).success
    code, out, err = cli(capsys, "forget", "--landing", str(landing), "--lake", str(lake))
    assert code == 0, err
    assert "finished a pending erasure" in out
    (kept,) = open_lake(str(lake)).snapshots("curated", "machine_learning_curated")  # the old-key one held them
    assert kept.extra["pseudonym_key_id"] != erasures(lake)[0]["pseudonyms"].popitem()[0]
    assert not [t for t, row in snapshot_rows(lake) if belongs_to(row, CASE, {"S-CASE"})]
    assert [json.loads(line)["email"] for line in landing_lines(landing, "customer")] == [SHOWCASE]
    assert cli(capsys, "check", "--lake", str(lake))[0] == 0


def test_a_register_of_the_previous_version_keeps_its_people_erased(tmp_path, monkeypatch):
    from stedi_assets.privacy.register import ErasureRegister, Subjects

    monkeypatch.setenv("STEDI_ERASURE_KEY", "register-key")
    lake = open_lake(str(tmp_path / "lake"))
    old = Subjects(b"register-key")
    (tmp_path / "lake" / "_private").mkdir(parents=True)
    (tmp_path / "lake" / "_private" / "erasure_register.json").write_text(
        json.dumps({"version": 1, "identities": [old.digest(CASE)], "serials": [old.digest("S-CASE")]})
    )
    register = ErasureRegister.load(lake)
    assert not register.pending()
    assert register.landing_filter("customer")(("n", " CASE@p.com", None, None, "S-X", 1, 1, None, None, None))
    assert register.landing_filter("step_trainer")((1, "S-CASE", 1.0))
    assert not register.landing_filter("step_trainer")((1, "S-SHOW", 1.0))
    register.save(lake, register.record({SHOWCASE}, set(), {}))
    again = ErasureRegister.load(lake)
    assert again.identities == {old.digest(CASE), old.digest(SHOWCASE)} and len(again.pending()) == 1
