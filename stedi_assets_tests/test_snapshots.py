"""Iceberg snapshots: a killed or failed write never becomes visible; rollback; retention by count and age; orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from conftest import read_table, run_pipeline, write_landing

from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.maintenance import Retention, apply_retention

CUSTOMER = {
    "customerName": "Ann Lee",
    "email": "Ann.Lee@test.com",
    "phone": "1",
    "birthDay": "1990-01-01",
    "serialNumber": "s-1",
    "registrationDate": 1,
    "lastUpdateDate": 1,
    "shareWithResearchAsOfDate": 1,
}
LANDING_ONLY = dg.AssetSelection.groups("landing")


def small_landing(root: Path) -> Path:
    write_landing(root, "customer", [CUSTOMER])
    write_landing(root, "accelerometer", [{"user": "Ann.Lee@test.com", "timestamp": 10, "x": 1, "y": 0, "z": 0}])
    write_landing(root, "step_trainer", [{"sensorReadingTime": 10, "serialNumber": "s-1", "distanceFromObject": 5}])
    return root


def big_accelerometer_file(root: Path, lines: int) -> None:
    row = '{"user":"Ann.Lee@test.com","timestamp":%d,"x":1.0,"y":0.0,"z":-1.0}\n'
    path = root / "accelerometer" / "landing" / "part-2.json"
    path.write_text("".join(row % (1000 + i) for i in range(lines)))


def data_files(lake: Path, zone: str, table: str) -> set[str]:
    """Every Parquet file under the table's data folder, committed or not."""
    folder = lake / zone / table / "data"
    return {str(p.relative_to(lake)) for p in folder.rglob("*.parquet")} if folder.is_dir() else set()


@pytest.mark.slow
def test_killed_write_leaves_previous_snapshot_current(tmp_path):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_pipeline(landing, lake, selection=LANDING_ONLY).success
    before = open_lake(str(lake)).current("landing", "accelerometer_landing")
    assert read_table(lake, "landing", "accelerometer_landing") and before.rows["data"] == 1
    committed = data_files(lake, "landing", "accelerometer_landing")

    big_accelerometer_file(landing, 600_000)  # several seconds of parsing: time to kill it mid-write
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stedi_assets.cli",
            "run",
            "--landing",
            str(landing),
            "--lake",
            str(lake),
            "--select",
            'key:"landing/accelerometer_landing"',
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    staged = None
    deadline = time.monotonic() + 60
    while staged is None and time.monotonic() < deadline and child.poll() is None:
        for rel in data_files(lake, "landing", "accelerometer_landing") - committed:
            if (lake / rel).stat().st_size > 0:
                staged = lake / rel
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert staged is not None, "the child never started writing; cannot test a kill mid-write"

    lake_view = open_lake(str(lake))
    assert lake_view.current("landing", "accelerometer_landing").snapshot == before.snapshot
    assert len(read_table(lake, "landing", "accelerometer_landing")) == 1  # readers still see the old table
    assert [s.snapshot for s in lake_view.snapshots("landing", "accelerometer_landing")] == [before.snapshot]
    assert staged.exists()  # an orphan: no snapshot uses it

    # The next write commits the full table; orphan removal (past its age) clears the half-write away.
    assert run_pipeline(landing, lake, selection=LANDING_ONLY).success
    assert len(read_table(lake, "landing", "accelerometer_landing")) == 600_001
    apply_retention(lake_view, "landing", "accelerometer_landing", Retention(orphan_age_seconds=0))
    assert not staged.exists()
    assert len(read_table(lake, "landing", "accelerometer_landing")) == 600_001


def test_failed_build_commits_nothing(tmp_path, monkeypatch):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    before = open_lake(str(lake)).current("trusted", "customer_trusted").snapshot
    files = data_files(lake, "trusted", "customer_trusted")

    def broken(*args, **kwargs):
        raise RuntimeError("engine died")

    monkeypatch.setattr("stedi_assets.engines.duckdb_engine.DuckDBEngine.select_into", broken)
    (customers,) = (landing / "customer").rglob("*.json")
    with customers.open("ab") as out:  # new landing rows: customer_trusted's rule must run again
        out.write(customers.read_bytes().splitlines(keepends=True)[0])
    selection = dg.AssetSelection.assets(["landing", "customer_landing"], ["trusted", "customer_trusted"])
    result = run_pipeline(landing, lake, selection=selection)
    assert not result.success
    assert open_lake(str(lake)).current("trusted", "customer_trusted").snapshot == before
    assert data_files(lake, "trusted", "customer_trusted") == files  # the staged files were discarded


def test_rollback_and_retention_by_count(tmp_path):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    customer_landing = dg.AssetSelection.assets(["landing", "customer_landing"])
    ids = []
    (customers,) = (landing / "customer").rglob("*.json")
    for _ in range(7):
        with customers.open("ab") as out:  # a changed file: each run reads it again into a new data file
            out.write(b"\n")
        assert run_pipeline(landing, lake, selection=customer_landing).success
        ids.append(open_lake(str(lake)).current("landing", "customer_landing").snapshot)
    store = open_lake(str(lake))
    kept = [s.snapshot for s in store.snapshots("landing", "customer_landing")]
    assert kept == ids[-5:]  # default retention: the newest 5 snapshots
    assert len(data_files(lake, "landing", "customer_landing")) == 5  # expired snapshots' files are deleted
    apply_retention(store, "landing", "customer_landing", Retention(keep=3))
    assert [s.snapshot for s in store.snapshots("landing", "customer_landing")] == ids[-3:]

    assert store.rollback("landing", "customer_landing").snapshot == ids[-2]
    assert store.current("landing", "customer_landing").snapshot == ids[-2]
    rejected = store.current("landing", "customer_landing").parts["rejected"]
    assert store.current("landing", "customer_landing_rejected").snapshot == rejected  # its part went back too
    assert store.rollback("landing", "customer_landing", ids[-1]).snapshot == ids[-1]
    with pytest.raises(LookupError):
        store.rollback("landing", "customer_landing", ids[0])  # expired


def test_retention_by_age_keeps_the_current_snapshot(tmp_path):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    for _ in range(3):
        assert run_pipeline(landing, lake, selection=LANDING_ONLY).success
    store = open_lake(str(lake))
    current = store.current("landing", "customer_landing").snapshot
    in_two_days = int(time.time() * 1000) + 2 * 86_400_000
    apply_retention(store, "landing", "customer_landing", Retention(keep=5, max_age_days=1), now_ms=in_two_days)
    assert [s.snapshot for s in store.snapshots("landing", "customer_landing")] == [current]
    assert len(read_table(lake, "landing", "customer_landing")) == 1
