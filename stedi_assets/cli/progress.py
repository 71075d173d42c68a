"""Progress of `stedi run` / `stedi check`, per asset, as its steps start and end.

On a terminal one status line is redrawn every second (the running steps and their elapsed time) and
each finished asset prints a line with its rows; elsewhere (CI logs, pipes) only plain lines are printed,
one when a step starts and one when it ends. It goes to stderr: stdout stays the command's report.
Only table names, counts and times are printed: nothing from the data.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

import dagster as dg

LOGGER = "stedi_progress"


class ProgressHandler(logging.Handler):
    def __init__(self, stream: TextIO, live: bool) -> None:
        super().__init__(level=logging.DEBUG)
        self.stream, self.live = stream, live
        self.started: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self._guard = threading.Lock()  # not `lock`: logging.Handler holds its own there while emitting
        self.stopped = threading.Event()
        if live:
            threading.Thread(target=self._tick, daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key")
        if event is None or step is None:
            return
        kind = event.event_type_value
        with self._guard:
            if kind == "STEP_START":
                self.started[step] = time.monotonic()
                if not self.live:
                    self._line(f"{_name(step)}: started")
            elif kind == "ASSET_MATERIALIZATION":
                rows = event.event_specific_data.materialization.metadata.get("dagster/row_count")
                if rows is not None:
                    self.rows[step] = self.rows.get(step, 0) + int(rows.value)
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                elapsed = time.monotonic() - self.started.pop(step, time.monotonic())
                rows = f"{self.rows.pop(step):,} rows, " if step in self.rows else ""
                verdict = "done" if kind == "STEP_SUCCESS" else "FAILED"
                self._line(f"{_name(step)}: {verdict} ({rows}{elapsed:.1f} s)")

    def _line(self, text: str) -> None:
        clear = "\r\033[K" if self.live else ""
        self.stream.write(f"{clear}  {text}\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            with self._guard:
                if self.started:
                    now = time.monotonic()
                    running = ", ".join(f"{_name(s)} {now - t:.0f} s" for s, t in self.started.items())
                    self.stream.write(f"\r\033[K  running: {running}"[:200])
                    self.stream.flush()

    def close(self) -> None:
        self.stopped.set()
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
        super().close()


def _name(step_key: str) -> str:
    """A step's table as users name it: 'customer_landing' -> 'landing.customer_landing'."""
    from ..zones import TABLES

    return next((spec.qualified_name for spec in TABLES if spec.name == step_key), step_key)


def progress_logger(stream: TextIO | None = None) -> tuple[dg.LoggerDefinition, ProgressHandler]:
    """A Dagster logger writing progress to `stream` (stderr), and its handler (close it after the run)."""
    out = stream or sys.stderr
    handler = ProgressHandler(out, live=out.isatty())

    def stedi_progress(_init_context) -> logging.Logger:
        logger = logging.Logger(LOGGER, level=logging.DEBUG)
        logger.addHandler(handler)
        return logger

    return dg.LoggerDefinition(stedi_progress, description="Progress of each asset's step on the terminal"), handler
