"""Acceptance: the Udacity landing data gives the counts of ZONE_RULES.md under both policies,
through the same `stedi` commands a user runs, with every ERROR check passing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stedi_assets.cli import main

EXPECTED = {
    "rubric": {
        "landing.customer_landing": 956,
        "landing.accelerometer_landing": 81273,
        "landing.step_trainer_landing": 28680,
        "trusted.customer_trusted": 482,
        "trusted.accelerometer_trusted": 40981,
        "trusted.step_trainer_trusted": 14460,
        "curated.customer_curated": 482,
        "curated.machine_learning_curated": 43681,
        "landing.rejected": 0,
    },
    "strict": {
        "landing.customer_landing": 956,
        "landing.accelerometer_landing": 81273,
        "landing.step_trainer_landing": 28680,
        "trusted.customer_trusted": 482,
        "trusted.accelerometer_trusted": 32025,
        "trusted.step_trainer_trusted": 11297,
        "curated.customer_curated": 464,
        "curated.machine_learning_curated": 32025,
        "landing.rejected": 0,
    },
}


def query(lake, sql: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["query", "--lake", str(lake), "--format", "json", sql]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module", params=["rubric", "strict"])
def built_lake(request, udacity_landing, tmp_path_factory):
    policy = request.param
    lake = tmp_path_factory.mktemp(f"lake-{policy}")
    code = main(["run", "--landing", str(udacity_landing), "--lake", str(lake), "--policy", policy])
    return policy, lake, code


def test_run_exits_zero_and_every_check_passes(built_lake, capsys):
    policy, lake, code = built_lake
    assert code == 0
    assert main(["check", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert " FAIL " not in out
    assert "49 checks: 49 passed, 0 failed" in out


def test_counts_match_zone_rules(built_lake, capsys):
    policy, lake, _ = built_lake
    for table, expected in EXPECTED[policy].items():
        (row,) = query(lake, f"SELECT count(*) AS n FROM {table}", capsys)
        assert row["n"] == expected, f"{policy} {table}"


def test_machine_learning_table_columns(built_lake, capsys):
    policy, lake, _ = built_lake
    (row,) = query(lake, "SELECT * FROM curated.machine_learning_curated LIMIT 1", capsys)
    if policy == "rubric":
        assert list(row) == ["sensorReadingTime", "serialNumber", "distanceFromObject", "timestamp", "x", "y", "z"]
    else:
        assert list(row) == ["customer_id", "sensorReadingTime", "distanceFromObject", "x", "y", "z"]
        assert len(row["customer_id"]) == 64


def test_strict_has_no_reading_before_consent(built_lake, capsys):
    policy, lake, _ = built_lake
    if policy != "strict":
        pytest.skip("the rubric policy has no consent-date rule")
    (row,) = query(
        lake,
        """
        SELECT count(*) AS early FROM trusted.accelerometer_trusted a
        JOIN trusted.customer_trusted c ON lower(trim(a.user)) = lower(trim(c.email))
        WHERE a.timestamp < c.shareWithResearchAsOfDate""",
        capsys,
    )
    assert row["early"] == 0


def test_benchmark_duckdb_peer_gives_the_rubric_counts(udacity_landing, tmp_path):
    """benchmarks/vs_spark.py compares `stedi run` with hand-written peers; their SQL must build the same tables."""
    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    done = subprocess.run(
        [sys.executable, "-m", "peers.rubric_duckdb", str(udacity_landing), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(benchmarks)},
        capture_output=True,
        text=True,
        check=True,
    )
    counts = json.loads(done.stdout)
    expected = {name.split(".", 1)[1]: n for name, n in EXPECTED["rubric"].items() if name != "landing.rejected"}
    assert counts == expected
