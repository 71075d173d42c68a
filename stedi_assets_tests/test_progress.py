"""Progress while steps run: what a step reports (step_progress.py) and what `stedi run` prints of it
(cli/progress.py), on records shaped as Dagster hands them to the CLI's logger, on a clock the test moves."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import duckdb
import pytest

from stedi_assets import settings, step_progress
from stedi_assets.cli.progress import ProgressHandler
from stedi_assets.engines.duckdb_engine import DuckDBEngine
from stedi_assets.step_progress import StepProgress, parse


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(step: str, kind: str | None = None, message: str = "") -> logging.LogRecord:
    """A log record as Dagster's log manager passes it to a user logger: a step's event, or a message."""
    event = SimpleNamespace(event_type_value=kind) if kind else None
    meta = {"step_key": step, "dagster_event": event, "orig_message": message}
    return logging.makeLogRecord({"msg": message, "levelno": logging.DEBUG, "dagster_meta": meta})


def test_plain_lines_tell_rows_so_far_at_most_every_interval():
    out, clock = io.StringIO(), Clock()
    handler = ProgressHandler(out, live=False, every=10.0, clock=clock)
    handler.handle(record("accelerometer_landing", "STEP_START"))
    for at, message in [
        (1.0, "progress: 1000 rows"),  # too early: the step has run less than 10 s
        (10.0, "progress: 4100000 rows"),  # due
        (15.0, "progress: 5000000 rows"),  # 5 s after the last line: not yet
        (19.0, "a message that is no progress"),
        (21.0, "progress: 6000000 rows"),  # due again
    ]:
        clock.now = at
        handler.handle(record("accelerometer_landing", message=message))
    clock.now = 32.5
    handler.handle(record("customer_trusted", message="progress: 10 rows"))  # a step not running: ignored
    handler.handle(record("accelerometer_landing", "STEP_SUCCESS"))
    assert out.getvalue() == (
        "  landing.accelerometer_landing: started\n"
        "  landing.accelerometer_landing: 4,100,000 rows so far (10 s)\n"
        "  landing.accelerometer_landing: 6,000,000 rows so far (21 s)\n"
        "  landing.accelerometer_landing: done (32.5 s)\n"  # the done line as before (no materialization here)
    )


def test_a_query_percentage_and_interval_zero():
    out, clock = io.StringIO(), Clock()
    handler = ProgressHandler(out, live=False, every=0.0, clock=clock)
    handler.handle(record("customer_trusted", "STEP_START"))
    clock.now = 2.0
    handler.handle(record("customer_trusted", message="progress: 42 %"))
    handler.handle(record("customer_trusted", message="progress: 43 %"))
    assert out.getvalue().splitlines()[1:] == [
        "  trusted.customer_trusted: 42 % so far (2 s)",
        "  trusted.customer_trusted: 43 % so far (2 s)",
    ]


def test_the_terminal_status_line_shows_rows_so_far_and_elapsed_time():
    out, clock = io.StringIO(), Clock()
    handler = ProgressHandler(out, live=True, every=10.0, clock=clock)
    try:
        handler.handle(record("accelerometer_landing", "STEP_START"))
        clock.now = 3.0
        handler.handle(record("customer_landing", "STEP_START"))
        clock.now = 12.2
        handler.handle(record("accelerometer_landing", message="progress: 1234567 rows"))
        assert handler.status() == (
            "  running: landing.accelerometer_landing 1,234,567 rows 12 s, landing.customer_landing 9 s"
        )
        assert "so far" not in out.getvalue()  # on a terminal progress is in the status line only
    finally:
        handler.close()


def test_a_step_reports_at_most_once_per_interval_and_only_counts():
    clock, said = Clock(), []
    log = SimpleNamespace(debug=said.append)
    progress = StepProgress(log, every=1.0, clock=clock)
    for at, rows in [(0.5, 10), (1.0, 20), (1.5, 30), (2.2, 40), (2.3, 50)]:
        clock.now = at
        progress.rows(rows)
    clock.now = 3.5
    progress.percent(-1.0)  # DuckDB has no estimate yet: nothing said, and the interval is not used up
    clock.now = 3.6
    progress.percent(37.9)
    assert said == ["progress: 20 rows", "progress: 40 rows", "progress: 37 %"]
    assert [parse(m) for m in said] == [(20, "rows"), (40, "rows"), (37, "%")]
    assert parse("progress: 5 rows of alice@example.com") is None  # only a bare count is progress


def test_progress_seconds_setting(monkeypatch):
    monkeypatch.delenv("STEDI_PROGRESS_SECONDS", raising=False)
    assert settings.progress_seconds() == 10.0
    monkeypatch.setenv("STEDI_PROGRESS_SECONDS", "2.5")
    assert settings.progress_seconds() == 2.5
    for bad in ("-1", "soon", "nan", "inf"):
        monkeypatch.setenv("STEDI_PROGRESS_SECONDS", bad)
        with pytest.raises(settings.SettingError, match="STEDI_PROGRESS_SECONDS must be a number of seconds"):
            settings.progress_seconds()


def test_duckdb_tells_a_running_querys_percentage(tmp_path, monkeypatch, capfd):
    """query_progress, read from another thread while the COPY runs; its progress bar prints nothing."""
    source = tmp_path / "in.parquet"
    duckdb.execute(f"COPY (SELECT i, md5(i::VARCHAR) AS h FROM range(1000000) t(i)) TO '{source}' (FORMAT parquet)")
    monkeypatch.setattr(step_progress, "POLL_SECONDS", 0.001)
    seen: list[float] = []
    (tmp_path / "out").mkdir()
    output = DuckDBEngine().select_into(
        "SELECT h, count(*) AS n, sum(i) AS s FROM t GROUP BY h ORDER BY h",
        {"t": [str(source)]},
        str(tmp_path / "out"),
        on_percent=seen.append,
    )
    assert output.rows == 1_000_000
    assert any(0 < p <= 100 for p in seen), seen
    assert capfd.readouterr().out == ""
