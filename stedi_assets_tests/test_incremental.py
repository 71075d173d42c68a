"""Incremental landing (zones/landing/increment.py): a run reads only new and changed landing files, and the lake
it leaves is the one a run from an empty lake over the same landing builds, table by table, row by row."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
from pathlib import Path

import pytest
from conftest import landing_records, run_pipeline, write_landing
from parity import assert_same_rows, multiset

from stedi_assets.cli import main
from stedi_assets.generator import DEFECTS, generate_landing
from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.stores import LocalStore
from stedi_assets.zones import TABLES
from stedi_assets.zones.landing.schema import SOURCE_OF
from stedi_assets_tests.small_landing import accel, jsonl
from stedi_assets_tests.test_bad_files import write_bad_entries

LANDING = [spec for spec in TABLES if spec.name in SOURCE_OF]


def landing_read(lake: Path) -> dict[str, dict]:
    """Per landing table, what the current snapshot's run read (`landing_read` of its extra)."""
    opened = open_lake(str(lake))
    return {spec.name: opened.current(spec.zone, spec.name).extra["landing_read"] for spec in LANDING}


def files_read(lake: Path) -> dict[str, list[str]]:
    return {name: read["files"] for name, read in landing_read(lake).items()}


# what reconciliation and the volume checks audit, and what the landing assets report
FIGURES = (
    "landing_files",
    "ignored_files",
    "skipped_files",
    "unreadable_files",
    "nonblank_lines",
    "blank_lines",
    "erased_lines",
    "fast_lines",
)


def figures(lake: Path) -> dict[str, dict]:
    """Per landing table, the figures its current snapshot records, and its row counts."""
    opened = open_lake(str(lake))
    snapshots = {spec.name: opened.current(spec.zone, spec.name) for spec in LANDING}
    return {name: {"rows": s.rows, **{k: s.extra[k] for k in FIGURES}} for name, s in snapshots.items()}


def assert_same_as_a_fresh_build(landing: Path, lake: Path, tmp_path: Path, policy: str = "strict") -> None:
    """Every table and quarantine part of `lake`, and every landing table's figures, equal a build from an empty
    lake over `landing`."""
    fresh = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
    assert run_pipeline(landing, fresh, policy=policy).success
    assert figures(lake) == figures(fresh)
    for spec in TABLES:
        for part in spec.parts:
            assert_same_rows(
                multiset(fresh, spec.zone, spec.name, part),
                multiset(lake, spec.zone, spec.name, part),
                f"{spec.qualified_name} {part}",
                names=("from empty", "incremental"),
            )


@pytest.fixture(autouse=True)
def one_pseudonym_key(monkeypatch):
    """The incremental lake and the fresh one must make the same pseudonyms."""
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "test-pseudonym-key")


@pytest.fixture
def landing(tmp_path) -> Path:
    return generated_landing(tmp_path)


def generated_landing(tmp_path: Path) -> Path:
    """16 generated customers' landing with every defect kind."""
    root = tmp_path / "landing"
    generate_landing(root, customers=16, seed=11, defects=DEFECTS)
    return root


def consenting_customer(landing: Path) -> dict:
    """A customer record whose e-mail has accelerometer readings and who shares for research."""
    users = {r.get("user") for r in landing_records(landing, "accelerometer")}
    return next(
        r
        for r in landing_records(landing, "customer")
        if r.get("email") in users
        and isinstance(r.get("shareWithResearchAsOfDate"), int)
        and isinstance(r.get("lastUpdateDate"), int)
    )


def test_a_run_over_unchanged_landing_reads_no_file_and_changes_no_table(landing, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    first = files_read(lake)
    assert all(first.values()) and first["customer_landing"]  # the first run read every file
    assert run_pipeline(landing, lake).success
    assert files_read(lake) == {spec.name: [] for spec in LANDING}
    kept = landing_read(lake)
    assert all(read["kept_files"] == len(first[name]) for name, read in kept.items())
    assert_same_as_a_fresh_build(landing, lake, tmp_path)


def test_a_new_file_is_the_only_file_read_and_its_rows_are_appended(landing, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    person = consenting_customer(landing)
    later = [
        {**r, "timestamp": r["timestamp"] + 7_000}
        for r in landing_records(landing, "accelerometer")
        if r.get("user") == person["email"] and isinstance(r.get("timestamp"), int)
    ]
    write_landing(landing, "accelerometer", [*later, "not json", ""], name="later/day-2.json")
    assert run_pipeline(landing, lake).success
    read = landing_read(lake)
    assert read["accelerometer_landing"]["files"] == ["accelerometer/landing/later/day-2.json"]
    assert read["accelerometer_landing"]["new"] == ["accelerometer/landing/later/day-2.json"]
    assert read["customer_landing"]["files"] == [] and read["step_trainer_landing"]["files"] == []
    assert_same_as_a_fresh_build(landing, lake, tmp_path)


def test_a_consent_change_in_a_new_customer_file_re_derives_every_reading_it_affects(landing, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    before = sum(multiset(lake, "trusted", "accelerometer_trusted").values())
    person = consenting_customer(landing)
    revoked = {k: v for k, v in person.items() if k != "shareWithResearchAsOfDate"}
    revoked["lastUpdateDate"] = person["lastUpdateDate"] + 1  # a later record without consent revokes it
    write_landing(landing, "customer", [revoked], name="revocations.json")
    assert run_pipeline(landing, lake).success
    assert files_read(lake)["customer_landing"] == ["customer/landing/revocations.json"]
    assert files_read(lake)["accelerometer_landing"] == []  # not re-read, yet its trusted rows are re-derived
    assert sum(multiset(lake, "trusted", "accelerometer_trusted").values()) < before
    assert_same_as_a_fresh_build(landing, lake, tmp_path)


def test_a_changed_file_is_read_again_and_a_vanished_one_retracted(landing, tmp_path, capsys):
    lake = tmp_path / "lake"
    extra = write_landing(landing, "step_trainer", ['{"sensorReadingTime": 1}'], name="extra.json")
    assert run_pipeline(landing, lake).success
    changed = sorted((landing / "accelerometer" / "landing").rglob("*.json"))[0]
    with changed.open("ab") as out:
        out.write(b'{"user": "late@x.com"}\n')
    extra.unlink()
    assert run_pipeline(landing, lake).success
    read = landing_read(lake)
    relative = str(changed.relative_to(landing))
    assert relative in read["accelerometer_landing"]["changed"]
    assert read["step_trainer_landing"]["vanished"] == ["step_trainer/landing/extra.json"]
    rejected = multiset(lake, "landing", "step_trainer_landing", "rejected")
    assert not any(dict(row)["source_file"] == "step_trainer/landing/extra.json" for row in rejected)
    assert_same_as_a_fresh_build(landing, lake, tmp_path)
    # the reconciliation check (every landing line is a row or a rejected line) passes on the kept figures
    assert main(["check", "--lake", str(lake)]) == 0
    assert ", 0 failed" in capsys.readouterr().out


def test_an_erasure_since_the_last_run_makes_the_next_run_read_everything_again(landing, tmp_path, capsys):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    person = consenting_customer(landing)
    assert main(["forget", person["email"], "--landing", str(landing), "--lake", str(lake)]) == 0
    capsys.readouterr()
    assert run_pipeline(landing, lake).success
    assert all(files_read(lake).values())  # the register changed: every line is judged again
    assert_same_as_a_fresh_build(landing, lake, tmp_path)


def test_a_policy_switch_keeps_the_landing_files_and_builds_the_other_tables(landing, tmp_path):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="strict").success
    assert run_pipeline(landing, lake, policy="rubric").success
    assert files_read(lake) == {spec.name: [] for spec in LANDING}  # landing rows do not depend on the policy
    assert_same_as_a_fresh_build(landing, lake, tmp_path, policy="rubric")


def test_a_copied_landing_tree_is_read_again(landing, tmp_path):
    """Another landing root: nothing recorded for the old one is kept (its paths may name other files)."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    moved = tmp_path / "moved"
    shutil.copytree(landing, moved)
    assert run_pipeline(moved, lake).success
    assert all(files_read(lake).values())
    assert_same_as_a_fresh_build(moved, lake, tmp_path)


@pytest.fixture
def denied_by_mode(landing, monkeypatch):
    """Root reads and lists whatever the mode says: deny it, below the landing root, as the kernel does for
    anybody else (as test_bad_files does), here by the mode, so that a chmod repairs it."""
    if os.geteuid() != 0:
        return
    real_open, real_scandir = os.open, os.scandir

    def denied(path) -> bool:
        if isinstance(path, int):  # an open folder's descriptor (shutil.rmtree): opened by a path checked here
            return False
        try:
            return os.fspath(path).startswith(str(landing)) and os.stat(path).st_mode & 0o444 == 0
        except OSError:  # not there (any more): the real call says so
            return False

    def os_open(path, flags, *args, **kwargs):
        if denied(path):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    def scandir(path="."):
        if denied(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "scandir", scandir)


def test_broken_entries_no_longer_make_every_run_read_their_source_again(landing, tmp_path, denied_by_mode):
    """A file that fails for a cause its fingerprint covers (not gzip, corrupt or cut short gzip, no permission)
    is kept with the files read with it; entries the listing cannot examine (dangling or looping links, a folder
    that cannot be listed) are reported again on each run, apart from them. Repairing a broken file (new
    content, or a chmod: its ctime) makes the next run read it again."""
    write_bad_entries(landing)
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    assert run_pipeline(landing, lake).success
    assert files_read(lake) == {spec.name: [] for spec in LANDING}
    unexamined = ["customer/landing/dangling.json", "customer/landing/locked"]
    unexamined += ["customer/landing/loop-a.json", "customer/landing/loop-b.json"]
    assert landing_read(lake)["customer_landing"]["unexamined"] == unexamined
    assert_same_as_a_fresh_build(landing, lake, tmp_path)

    corrupt = "accelerometer/landing/corrupt.json.gz"
    (landing / corrupt).write_bytes(gzip.compress(jsonl([accel(77)])))
    (landing / "customer" / "landing" / "secret.json").chmod(0o644)  # its mtime stays, its ctime changes
    assert run_pipeline(landing, lake).success
    read = landing_read(lake)
    assert read["accelerometer_landing"]["changed"] == [corrupt] and corrupt in read["accelerometer_landing"]["files"]
    assert read["customer_landing"]["changed"] == ["customer/landing/secret.json"]
    assert read["step_trainer_landing"]["files"] == []
    assert_same_as_a_fresh_build(landing, lake, tmp_path)


def test_a_file_a_transient_error_stopped_is_read_again(landing, tmp_path):
    """An I/O error is no property of a file that its fingerprint could tell, unlike broken gzip data: the next
    run reads the file that met it again (with the files read with it), and keeps the broken one."""
    lake = tmp_path / "lake"
    failing = sorted((landing / "step_trainer" / "landing").glob("*.json"))[0]
    (landing / "customer" / "landing" / "notgzip.json.gz").write_bytes(b"plain text\n")
    real_open = LocalStore.open

    def store_open(self, rel):
        if self.root / rel == failing:
            raise OSError(errno.EIO, "Input/output error")
        return real_open(self, rel)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LocalStore, "open", store_open)
        assert run_pipeline(landing, lake).success
    assert run_pipeline(landing, lake).success
    read = files_read(lake)
    assert read["customer_landing"] == [] and read["accelerometer_landing"] == []
    assert str(failing.relative_to(landing)) in read["step_trainer_landing"]
    assert_same_as_a_fresh_build(landing, lake, tmp_path)
