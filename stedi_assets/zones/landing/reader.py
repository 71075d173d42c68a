"""Reads a landing source (JSON lines, at any depth, optionally gzip) into typed rows and rejected lines.

One pass, streaming: lines are validated one at a time and handed on in Arrow record batches, so a
source of any size is read in bounded memory and every non-blank line ends up in exactly one of the
two outputs.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa

from ...contract import ARROW_TYPES
from .schema import REJECTED_COLUMNS
from .validation import Invalid, validate

SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
BOM = b"\xef\xbb\xbf"
BATCH_ROWS = 50_000

Sink = Callable[[pa.RecordBatch], None]


@dataclass
class SourceStats:
    """What one read of a landing source saw; reconciliation audits these figures."""

    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    rows: int = 0
    rejected: int = 0
    blank_lines: int = 0
    erased: int = 0
    fast_lines: int = 0  # lines the DuckDB reader typed set-wise (duckdb_reader.py); the rest went line by line


def landing_files(store, source: str) -> tuple[list[str], list[str]]:
    """(landing files of `source`, other files found there) as paths relative to the landing root."""
    everything = store.list_files(source)
    files = [p for p in everything if p.endswith(SUFFIXES)]
    return files, [p for p in everything if not p.endswith(SUFFIXES)]


def physical_lines(stream) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline, CR or leading BOM) for each physical line."""
    for number, raw in enumerate(stream, 1):
        yield number, line_content(number, raw)


def line_content(number: int, raw: bytes) -> bytes:
    """Physical line `number` of a file (split on \n only) without its newline, one CR, or a file's BOM."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    return raw


def open_landing_file(store, path: str):
    stream = store.open(path)
    return gzip.GzipFile(fileobj=stream) if path.endswith(".gz") else stream


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


# Decimals stay exact (1655564444058.0 is an integer, 1655564444058.0000001 is not); NaN and
# Infinity are not JSON. One decoder for all lines: json.loads with options builds one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=Decimal)


def parse_line(source: str, raw: bytes) -> tuple[tuple | None, str | None]:
    """(typed values, None) for a valid line, (None, reason) for an invalid one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"not valid UTF-8 ({err.reason} at byte {err.start})"
    try:
        record = _DECODER.decode(text)
    except ValueError as err:
        return None, f"not valid JSON: {err}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    try:
        return validate(source, record), None
    except Invalid as err:
        return None, str(err)


ERASED = "erased"  # the reason of an erased person's line (no Invalid message is one word)

# None for a blank line; (typed values, "", "") for a valid one; (None, raw text kept, reason) for a rejected one.
Verdict = tuple[tuple | None, str, str] | None


def judge_line(source: str, raw: bytes, erased: Callable[[tuple | None, bytes], bool] | None = None) -> Verdict:
    """What becomes of one line's content: blank, a typed row, or a quarantine row (an erased person's line
    is quarantined with reason ERASED and without its text)."""
    if not raw.strip():
        return None
    values, reason = parse_line(source, raw)
    if erased is not None and erased(values, raw):
        return None, "", ERASED
    if values is not None:
        return values, "", ""
    return None, raw.decode("utf-8", "backslashreplace"), str(reason)


class _Batcher:
    """Collects rows column-wise and hands full Arrow batches to a sink."""

    def __init__(self, schema: pa.Schema, sink: Sink) -> None:
        self.schema, self.sink = schema, sink
        self.columns: list[list] = [[] for _ in schema]
        self.count = 0

    def add(self, values: tuple) -> None:
        for column, value in zip(self.columns, values, strict=False):
            column.append(value)
        self.count += 1
        if len(self.columns[0]) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.columns[0]:
            self.sink(
                pa.RecordBatch.from_arrays(
                    [pa.array(c, type=f.type) for c, f in zip(self.columns, self.schema, strict=False)],
                    schema=self.schema,
                )
            )
            self.columns = [[] for _ in self.schema]


def read_source(
    store,
    source: str,
    data_schema: pa.Schema,
    write_rows: Sink,
    write_rejected: Sink,
    erased: Callable[[tuple | None, bytes], bool] | None = None,
) -> SourceStats:
    """Validate every line of `source` under the landing store; typed rows and rejects go to the sinks.

    A line of an erased person (`erased`: a valid record of theirs, or an invalid line naming them) is counted
    as rejected with reason "erased" and its text is not kept: data re-delivered after an erasure never
    re-enters the lake, and cannot block it either.
    """
    stats = SourceStats()
    stats.files, stats.ignored_files = landing_files(store, source)
    rows = _Batcher(data_schema, write_rows)
    rejected = _Batcher(pa.schema([(c.name, ARROW_TYPES[c.type]) for c in REJECTED_COLUMNS]), write_rejected)
    for path in stats.files:
        last = 0
        try:
            with open_landing_file(store, path) as stream:
                for last, raw in physical_lines(stream):
                    verdict = judge_line(source, raw, erased)
                    if verdict is None:
                        stats.blank_lines += 1
                    elif verdict[0] is not None:
                        rows.add((*verdict[0], path, last))
                    else:
                        stats.erased += verdict[2] == ERASED
                        rejected.add((source, path, last, verdict[1], verdict[2]))
        except (OSError, EOFError, zlib.error) as err:
            # A truncated or corrupt file: keep what was read and quarantine the unreadable rest.
            rejected.add((source, path, last + 1, "", f"file unreadable after line {last}: {err}"))
    rows.flush()
    rejected.flush()
    stats.rows, stats.rejected = rows.count, rejected.count
    return stats
