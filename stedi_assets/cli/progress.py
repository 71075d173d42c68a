"""Progress of `stedi run` / `stedi check`, per asset, as its steps start and end.

On a terminal one status line is redrawn every second (the running steps, their rows so far or their
query's percentage, and their elapsed time) and each finished asset prints a line with its rows; elsewhere
(CI logs, pipes) only plain lines are printed: one when a step starts, one when it ends and, in between, its
rows so far at most every STEDI_PROGRESS_SECONDS (10 s). Steps report their progress in their Dagster log
(step_progress.py). It goes to stderr: stdout stays the command's report. Only table names, counts and
times are printed: nothing from the data.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import dagster as dg

from .. import settings
from ..step_progress import parse

LOGGER = "stedi_progress"


class ProgressHandler(logging.Handler):
    def __init__(
        self, stream: TextIO, live: bool, every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self.stream, self.live, self.every, self.clock = stream, live, every, clock
        self.started: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.so_far: dict[str, str] = {}  # running step -> its last progress ("1,234 rows", "42 %")
        self.said: dict[str, float] = {}  # running step -> when its last plain line was printed
        self._guard = threading.Lock()  # not `lock`: logging.Handler holds its own there while emitting
        self.stopped = threading.Event()
        if live:
            threading.Thread(target=self._tick, daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key")
        if step is None:
            return
        if event is None:
            self._progress(step, str(meta.get("orig_message", "")))
            return
        kind = event.event_type_value
        with self._guard:
            if kind == "STEP_START":
                self.started[step] = self.said[step] = self.clock()
                if not self.live:
                    self._line(f"{_name(step)}: started")
            elif kind == "ASSET_MATERIALIZATION":
                rows = event.event_specific_data.materialization.metadata.get("dagster/row_count")
                if rows is not None:
                    self.rows[step] = self.rows.get(step, 0) + int(rows.value)
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                now = self.clock()
                elapsed = now - self.started.pop(step, now)
                self.so_far.pop(step, None)
                self.said.pop(step, None)
                rows = f"{self.rows.pop(step):,} rows, " if step in self.rows else ""
                verdict = "done" if kind == "STEP_SUCCESS" else "FAILED"
                self._line(f"{_name(step)}: {verdict} ({rows}{elapsed:.1f} s)")

    def _progress(self, step: str, message: str) -> None:
        """A step's progress message: remembered for the status line, or printed when its plain line is due."""
        progress = parse(message)
        if progress is None:
            return
        count, unit = progress
        with self._guard:
            if step not in self.started:  # a late message of a finished step
                return
            self.so_far[step] = f"{count:,} rows" if unit == "rows" else f"{count} %"
            now = self.clock()
            if not self.live and now - self.said[step] >= self.every:
                self.said[step] = now
                self._line(f"{_name(step)}: {self.so_far[step]} so far ({now - self.started[step]:.0f} s)")

    def _line(self, text: str) -> None:
        clear = "\r\033[K" if self.live else ""
        self.stream.write(f"{clear}  {text}\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            with self._guard:
                if self.started:
                    width = shutil.get_terminal_size().columns - 1  # a wrapped line could not be redrawn
                    self.stream.write("\r\033[K" + self.status()[:width])
                    self.stream.flush()

    def status(self) -> str:
        """The terminal's status line: each running step, its progress if it told any, its elapsed time."""
        now = self.clock()
        running = (
            " ".join([_name(step), *([self.so_far[step]] if step in self.so_far else []), f"{now - t:.0f} s"])
            for step, t in self.started.items()
        )
        return "  running: " + ", ".join(running)

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
    handler = ProgressHandler(out, live=out.isatty(), every=settings.progress_seconds())

    def stedi_progress(_init_context) -> logging.Logger:
        logger = logging.Logger(LOGGER, level=logging.DEBUG)
        logger.addHandler(handler)
        return logger

    return dg.LoggerDefinition(stedi_progress, description="Progress of each asset's step on the terminal"), handler
