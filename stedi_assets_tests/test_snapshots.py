"""Snapshots and the current-pointer: a killed write never becomes visible; rollback and retention."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.stores import LocalStore

from conftest import read_table, run_pipeline, write_landing

CUSTOMER = {"customerName": "Ann Lee", "email": "Ann.Lee@test.com", "phone": "1", "birthDay": "1990-01-01",
            "serialNumber": "s-1", "registrationDate": 1, "lastUpdateDate": 1, "shareWithResearchAsOfDate": 1}
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


def test_killed_write_leaves_previous_snapshot_current(tmp_path):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_pipeline(landing, lake, selection=LANDING_ONLY).success
    table_dir = lake / "landing" / "accelerometer_landing"
    before = open_lake(str(lake)).current("landing", "accelerometer_landing")
    assert read_table(lake, "landing", "accelerometer_landing") and before.rows["data"] == 1

    big_accelerometer_file(landing, 600_000)   # several seconds of parsing: time to kill it mid-write
    child = subprocess.Popen(
        [sys.executable, "-m", "stedi_assets.cli", "run", "--landing", str(landing), "--lake", str(lake),
         "--select", 'key:"landing/accelerometer_landing"'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    staged = None
    deadline = time.monotonic() + 60
    while staged is None and time.monotonic() < deadline and child.poll() is None:
        for snap in (table_dir / "snapshots").iterdir():
            data = snap / "data" / "part-00000.parquet"
            if snap.name != before.snapshot and data.exists() and data.stat().st_size > 0:
                staged = snap
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert staged is not None, "the child never started writing; cannot test a kill mid-write"

    lake_view = open_lake(str(lake))
    assert lake_view.current("landing", "accelerometer_landing").snapshot == before.snapshot
    assert len(read_table(lake, "landing", "accelerometer_landing")) == 1   # readers still see the old table
    assert not (staged / "_manifest.json").exists()                          # the half-write was never published
    assert [s.snapshot for s in lake_view.snapshots("landing", "accelerometer_landing")] == [before.snapshot]

    # The next successful write publishes the full table and clears the abandoned half-write away.
    assert run_pipeline(landing, lake, selection=LANDING_ONLY).success
    assert len(read_table(lake, "landing", "accelerometer_landing")) == 600_001
    assert not staged.exists()


def test_failed_build_publishes_nothing(tmp_path, monkeypatch):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    assert run_pipeline(landing, lake).success
    before = open_lake(str(lake)).current("trusted", "customer_trusted").snapshot

    def broken(*args, **kwargs):
        raise RuntimeError("engine died")
    monkeypatch.setattr("stedi_assets.engines.duckdb_engine.DuckDBEngine.select_into", broken)
    result = run_pipeline(landing, lake, selection=dg.AssetSelection.assets(["trusted", "customer_trusted"]))
    assert not result.success
    snapshots = lake / "trusted" / "customer_trusted" / "snapshots"
    assert open_lake(str(lake)).current("trusted", "customer_trusted").snapshot == before
    assert [p.name for p in snapshots.iterdir()] == [before]           # the staged folder was discarded


def test_rollback_and_retention(tmp_path):
    landing, lake = small_landing(tmp_path / "landing"), tmp_path / "lake"
    store = Lake(LocalStore(lake), retention=3)
    ids = []
    for _ in range(5):
        assert run_pipeline(landing, lake, selection=dg.AssetSelection.assets(["landing", "customer_landing"])).success
        ids.append(store.current("landing", "customer_landing").snapshot)
    kept = [s.snapshot for s in open_lake(str(lake)).snapshots("landing", "customer_landing")]
    assert kept == ids[-5:]                        # default retention is 5
    store.prune("landing", "customer_landing")      # a lake with retention 3 keeps the newest 3
    assert [s.snapshot for s in store.snapshots("landing", "customer_landing")] == ids[-3:]

    assert store.rollback("landing", "customer_landing").snapshot == ids[-2]
    assert store.current("landing", "customer_landing").snapshot == ids[-2]
    assert store.rollback("landing", "customer_landing", ids[-1]).snapshot == ids[-1]
    with pytest.raises(LookupError):
        store.rollback("landing", "customer_landing", ids[0])    # pruned
