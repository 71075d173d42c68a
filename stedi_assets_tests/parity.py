"""Comparing lakes built by different engines, as a user of the Iceberg tables would see them.

Rows are read through Iceberg (pyiceberg's scan of the table's current snapshot, the way Athena or any
Iceberg reader plans it), not from files listed by hand, and compared as multisets of (column, value)
rows: names, order and values of every column, floats bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from stedi_assets.storage.lake import ENGINE, INPUTS, RUN_ID, open_lake, part_table


def iceberg_rows(lake, zone: str, table: str, part: str = "data") -> list[dict]:
    """The rows of the table's current snapshot, read by pyiceberg."""
    return open_lake(str(lake)).iceberg(zone, part_table(table, part)).scan().to_arrow().to_pylist()


def exact(value):
    return ("double", value.hex()) if isinstance(value, float) else value


def multiset_of(rows) -> Counter:
    return Counter(tuple((k, exact(v)) for k, v in row.items()) for row in rows)


def multiset(lake, zone: str, table: str, part: str = "data") -> Counter:
    return multiset_of(iceberg_rows(lake, zone, table, part))


def assert_same_rows(expected: Counter, actual: Counter, what: str, names=("DuckDB", "Spark")) -> None:
    if expected != actual:
        missing, extra = list((expected - actual).elements())[:3], list((actual - expected).elements())[:3]
        pytest.fail(
            f"{what}: {names[0]} {sum(expected.values())} rows, {names[1]} {sum(actual.values())}; "
            f"only in {names[0]} {missing}; only in {names[1]} {extra}"
        )


def commit_summary(lake, zone: str, table: str) -> dict[str, str]:
    """What the current snapshot's Iceberg summary records (as `SELECT summary FROM "t$snapshots"` shows)."""
    snapshot = open_lake(str(lake)).iceberg(zone, table).current_snapshot()
    return dict(snapshot.summary.additional_properties)


def engine_and_run(lake, zone: str, table: str) -> tuple[str, str]:
    summary = commit_summary(lake, zone, table)
    return summary.get(ENGINE), summary.get(RUN_ID)


def recorded_inputs(lake, zone: str, table: str) -> dict[str, str]:
    return json.loads(commit_summary(lake, zone, table).get(INPUTS, "{}"))


def spark_child(code: str, *args: str) -> str:
    """The output of `python -c code args`, run to success in a child process with local Spark's address. A
    process has one SparkSession: a test that needs another master, or kills the JVM, runs there."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
