"""What a running step tells about its progress, and how cli/progress.py reads it back.

A step reports through its Dagster log: a DEBUG message `progress: <n> rows` (typed rows written so far,
the figure its `done (N rows, …)` line ends with) or `progress: <p> %` (the engine's estimate of a query).
Dagster stores each message in the run's event log (also shown in the Dagster UI), so a step sends at most
one a second, the first after it has run that long. Only counts and times: nothing from the data.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from . import settings

T = TypeVar("T")
MARKER = "progress: "
POLL_SECONDS = 0.5  # how often an engine's figure is read while its work runs
_MESSAGE = re.compile(r"progress: (\d+) (rows|%)")


def message_interval() -> float:
    """Seconds between a step's progress messages: one a second, or as often as plain lines are printed."""
    return min(1.0, settings.progress_seconds())


class StepProgress:
    """Reports a step's progress to `log` (its context.log), at most once every `every` seconds."""

    def __init__(self, log, every: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.clock = log, clock
        self.every = message_interval() if every is None else every
        self.last = clock()  # the step's start: nothing is said before it has run `every` seconds

    def rows(self, total: int) -> None:
        """`total` typed rows written so far."""
        self._say(f"{int(total)} rows")

    def percent(self, value: float) -> None:
        """The engine's estimate of how much of the step's query is done (ignored when it has none)."""
        if 0 < value <= 100:
            self._say(f"{int(value)} %")

    def _say(self, what: str) -> None:
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.log.debug(MARKER + what)


@contextmanager
def polling(read: Callable[[], T], tell: Callable[[T], None] | None, name: str) -> Iterator[None]:
    """While the block runs, a thread of its own reads an engine's progress figure with `read` every
    POLL_SECONDS and gives it to `tell` (nothing at all when `tell` is None): for engines that work in
    calls which do not return until they are done (a DuckDB query, a Spark job)."""
    if tell is None:
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_SECONDS):
            tell(read())

    watcher = threading.Thread(target=watch, name=name, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def parse(message: str) -> tuple[int, str] | None:
    """(count, "rows" or "%") of a progress message, or None for any other message."""
    match = _MESSAGE.fullmatch(message)
    return (int(match.group(1)), match.group(2)) if match else None
