"""Landing entries that are not readable JSON-lines files, through the real pipeline (issue 10.6).

A file that cannot be read to its end (not gzip, gzip cut short, no read permission, a dangling or looping
link, removed after it was listed, an I/O error mid-read) becomes ONE quarantine row, reason
`unreadable_file: <cause>`, after the lines read before the damage; the rest of the source is published.
Entries with a landing name that are no regular file (FIFO, socket, device, link to a folder) are skipped
without being opened and counted. Reconciliation audits the reader's own counts: no file is read twice.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.stores import LocalStore
from stedi_assets_tests.conftest import REPO, checks_of, read_table, run_pipeline
from stedi_assets_tests.small_landing import accel, customer, jsonl, step, write_good_landing

LANDING_GROUP = dg.AssetSelection.groups("landing")


CUT_LINES = 2000  # enough lines that a gzip stream cut in half still yields whole lines before the cut


def cut_gzip() -> bytes:
    data = gzip.compress(jsonl([step(1000 + t) for t in range(CUT_LINES)]))
    return data[: len(data) // 2]


def corrupt_gzip() -> bytes:
    data = bytearray(gzip.compress(jsonl([accel(1000 + t) for t in range(CUT_LINES)])))
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    return bytes(data)


READERS = ["python", "duckdb"]  # STEDI_LANDING_READER: every case runs on both landing readers


class StreamFailing:
    """A file object (of more than `good` lines) whose reads fail with EIO after `good` lines: storage lost
    in the middle of a read. Read line by line (the Python reader) or in blocks (the DuckDB reader)."""

    def __init__(self, stream, good: int) -> None:
        self.stream, self.good = stream, good
        self.left: bytes | None = None  # what read() has still to give before the failure

    def __iter__(self):
        for number, line in enumerate(self.stream, 1):
            if number > self.good:
                raise OSError(errno.EIO, "Input/output error")
            yield line

    def read(self, size: int = -1) -> bytes:
        if self.left is None:
            self.left = b"".join(self.stream.readline() for _ in range(self.good))
        if not self.left:
            raise OSError(errno.EIO, "Input/output error")
        size = len(self.left) if size < 0 else size
        data, self.left = self.left[:size], self.left[size:]
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stream.close()


# (landing entry, the cause its quarantine row must give)
UNREADABLE = {
    "customer/landing/notgzip.json.gz": "not gzip data",
    "customer/landing/dangling.json": "dangling symbolic link",
    "customer/landing/loop-a.json": "symbolic link loop",
    "customer/landing/loop-b.json": "symbolic link loop",
    "customer/landing/secret.json": "permission denied",
    "customer/landing/locked": "permission denied",  # a folder that cannot be listed
    "accelerometer/landing/corrupt.json.gz": "corrupt gzip data",
    "accelerometer/landing/vanished.json": "removed after it was listed",
    "step_trainer/landing/cut.json.gz": "gzip data cut short",
    "step_trainer/landing/eio.json": "input/output error",
}
SKIPPED = ["customer/landing/device.json", "customer/landing/folder.json", "step_trainer/landing/s.json"]
SECRET_TEXT = customer("secret@x.com")  # what the unreadable files hold: it must not appear anywhere


def write_bad_entries(landing: Path) -> None:
    folder = landing / "customer" / "landing"
    (folder / "notgzip.json.gz").write_bytes(jsonl([SECRET_TEXT]))
    (folder / "dangling.json").symlink_to(landing / "nowhere.json")
    (folder / "loop-a.json").symlink_to(folder / "loop-b.json")
    (folder / "loop-b.json").symlink_to(folder / "loop-a.json")
    (folder / "secret.json").write_bytes(jsonl([SECRET_TEXT]))
    (folder / "secret.json").chmod(0)
    (folder / "locked").mkdir()
    (folder / "locked" / "hidden.json").write_bytes(jsonl([SECRET_TEXT]))
    (folder / "locked").chmod(0)
    (folder / "device.json").symlink_to("/dev/null")
    elsewhere = landing.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.json").write_bytes(jsonl([customer("linked@x.com")]))
    (folder / "folder.json").symlink_to(elsewhere, target_is_directory=True)
    real = folder / "real.json"  # a real folder with a landing name is walked like any other: any depth
    real.mkdir()
    (real / "inner.json").write_bytes(jsonl([customer("inner@x.com")]))

    accelerometer = landing / "accelerometer" / "landing"
    (accelerometer / "corrupt.json.gz").write_bytes(corrupt_gzip())
    (accelerometer / "vanished.json").write_bytes(jsonl([accel(9)]))

    steps = landing / "step_trainer" / "landing"
    (steps / "cut.json.gz").write_bytes(cut_gzip())
    (steps / "eio.json").write_bytes(jsonl([step(100 + t) for t in range(5)]))
    server = socket.socket(socket.AF_UNIX)  # a socket file stays after its server is closed
    server.bind(str(steps / "s.json"))
    server.close()


@pytest.fixture(scope="module", params=READERS)
def bad_run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_files")
    landing, lake = root / "landing", root / "lake"
    write_good_landing(landing)
    write_bad_entries(landing)
    real_open, real_os_open, real_scandir = LocalStore.open, os.open, os.scandir
    secret = str(landing / "customer" / "landing" / "secret.json")
    locked = str(landing / "customer" / "landing" / "locked")

    def store_open(self, rel):
        if rel.endswith("vanished.json"):  # removed between the listing and the read
            (self.root / rel).unlink()
        stream = real_open(self, rel)
        return StreamFailing(stream, 2) if rel.endswith("eio.json") else stream

    def os_open(path, flags, *args, **kwargs):
        # root reads whatever its mode says: deny it as the kernel does for anybody else
        if os.fspath(path) == secret and os.geteuid() == 0:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_os_open(path, flags, *args, **kwargs)

    def scandir(path="."):
        if os.fspath(path) == locked and os.geteuid() == 0:  # as os_open: a folder root may not list
            raise PermissionError(errno.EACCES, "Permission denied", locked)
        return real_scandir(path)

    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEDI_LANDING_READER", request.param)
        mp.setattr(LocalStore, "open", store_open)
        mp.setattr(os, "open", os_open)
        mp.setattr(os, "scandir", scandir)
        result = run_pipeline(landing, lake, selection=LANDING_GROUP, instance=instance)
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert open_lake(str(lake)).current("landing", "customer_landing").extra["engine"] == request.param
    return result, lake, logs


def test_the_run_succeeds_and_every_landing_table_is_published(bad_run):
    result, lake, _ = bad_run
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations()), [
        (e.asset_key.path[-1], e.check_name) for e in result.get_asset_check_evaluations() if not e.passed
    ]
    emails = sorted(r["email"] for r in read_table(lake, "landing", "customer_landing"))
    assert emails == ["a@x.com", "b@x.com", "c@x.com", "inner@x.com"]  # not the linked folder's, not secret's
    assert len(read_table(lake, "landing", "accelerometer_landing")) >= 3


def test_each_unreadable_file_is_one_quarantine_row_with_its_cause(bad_run):
    _, lake, _ = bad_run
    unreadable = [r for r in read_table(lake, "landing", "rejected") if r["reason"].startswith("unreadable_file")]
    by_file = {r["source_file"]: r for r in unreadable}
    assert len(by_file) == len(unreadable), "one row per file"
    assert set(by_file) == set(UNREADABLE)
    for path, cause in UNREADABLE.items():
        row = by_file[path]
        assert row["reason"].startswith(f"unreadable_file: {cause}"), (path, row["reason"])
        assert row["source"] == path.split("/")[0] and row["raw"] == ""
    assert SECRET_TEXT["email"] not in json.dumps(unreadable)  # the file column names the file, not its content


def test_lines_read_before_the_damage_are_kept(bad_run):
    _, lake, _ = bad_run
    steps = read_table(lake, "landing", "step_trainer_landing")
    cut = sorted(r["source_line"] for r in steps if r["source_file"] == "step_trainer/landing/cut.json.gz")
    assert 0 < len(cut) < CUT_LINES and cut == list(range(1, len(cut) + 1))
    eio = sorted(r["source_line"] for r in steps if r["source_file"] == "step_trainer/landing/eio.json")
    assert eio == [1, 2]
    rows = {r["source_file"]: r for r in read_table(lake, "landing", "rejected")}
    assert rows["step_trainer/landing/cut.json.gz"]["source_line"] == len(cut) + 1
    assert rows["step_trainer/landing/cut.json.gz"]["reason"].endswith(f"after line {len(cut)}")
    assert rows["step_trainer/landing/eio.json"]["reason"] == "unreadable_file: input/output error after line 2"


def test_entries_that_are_no_regular_file_are_skipped_counted_and_logged(bad_run):
    result, lake, logs = bad_run
    skipped = {
        t: open_lake(str(lake)).current("landing", t).extra["skipped_files"]
        for t in ("customer_landing", "step_trainer_landing")
    }
    assert sorted(skipped["customer_landing"] + skipped["step_trainer_landing"]) == SKIPPED
    metadata = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata["customer_landing"]["skipped_files"].value == 2
    assert metadata["step_trainer_landing"]["skipped_files"].value == 1
    assert metadata["customer_landing"]["unreadable_files"].value == 6
    for path in [*SKIPPED, *UNREADABLE]:
        assert any(path in message for message in logs), path


def test_reconciliation_uses_the_readers_counts(bad_run):
    result, lake, _ = bad_run
    check = checks_of(result)[("step_trainer_landing", "reconciliation")]
    figures = {k: v.value for k, v in check.metadata.items()}
    assert figures["unreadable_files"] == 2
    assert figures["valid_rows"] + figures["rejected_rows"] == figures["nonblank_lines"] + 2


@pytest.mark.parametrize("reader", READERS)
def test_a_run_and_its_checks_read_each_landing_file_once(tmp_path, monkeypatch, reader):
    """The reader counts what it reads; the reconciliation check audits those counts and never reads a landing
    file again (it once re-read every file and crashed on the ones the reader had quarantined)."""
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_good_landing(landing)
    (landing / "step_trainer" / "landing" / "more.json.gz").write_bytes(gzip.compress(jsonl([step(50)])))
    reads: list[str] = []
    real_open, real_read_bytes = LocalStore.open, LocalStore.read_bytes

    def counted(real):
        def read(self, rel):
            if self.root == landing.resolve():
                reads.append(rel)
            return real(self, rel)

        return read

    monkeypatch.setenv("STEDI_LANDING_READER", reader)
    monkeypatch.setattr(LocalStore, "open", counted(real_open))
    monkeypatch.setattr(LocalStore, "read_bytes", counted(real_read_bytes))
    result = run_pipeline(landing, lake, selection=LANDING_GROUP)
    assert result.success
    assert checks_of(result)[("step_trainer_landing", "reconciliation")].passed
    files = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file())
    assert sorted(reads) == files  # each landing file read once, by the reader


@pytest.mark.slow  # a `stedi run` subprocess per reader
@pytest.mark.parametrize("reader", READERS)
def test_a_fifo_named_like_a_landing_file_never_hangs_the_run(tmp_path, reader):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_good_landing(landing)
    for source in ("customer", "step_trainer"):
        os.mkfifo(landing / source / "landing" / "pipe.json")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("DAGSTER_HOME", None)
    env["STEDI_LANDING_READER"] = reader
    command = [sys.executable, "-m", "stedi_assets.cli", "run", "--landing", str(landing), "--lake", str(lake)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)  # a hang fails here
    assert done.returncode == 0, done.stdout + done.stderr
    assert " FAIL " not in done.stdout
    snapshot = open_lake(str(lake)).current("landing", "step_trainer_landing")
    assert snapshot.extra["skipped_files"] == ["step_trainer/landing/pipe.json"]
    assert len(read_table(lake, "landing", "step_trainer_landing")) == 3
    assert len(read_table(lake, "curated", "machine_learning_curated")) == 3


def test_forget_over_an_unreadable_customer_file_stops_in_one_line(tmp_path, capsys):
    """forget searches every customer file for the person's serials: one it cannot read blocks the erasure
    with one line naming the file (it might hold their records), never a traceback."""
    from stedi_assets.cli import main

    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_good_landing(landing)
    assert run_pipeline(landing, lake, selection=LANDING_GROUP).success
    (landing / "customer" / "landing" / "broken.json.gz").write_bytes(jsonl([SECRET_TEXT]))
    capsys.readouterr()
    code = main(["forget", "a@x.com", "--landing", str(landing), "--lake", str(lake)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert "landing file customer/landing/broken.json.gz cannot be read" in err and "repair or remove" in err
    assert SECRET_TEXT["email"] not in err
    assert sorted(r["email"] for r in read_table(lake, "landing", "customer_landing")) == [
        "a@x.com",
        "b@x.com",
        "c@x.com",
    ]
