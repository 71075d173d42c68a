"""Reads a landing source (JSON lines, at any depth, optionally gzip) into typed rows and rejected lines.

One pass, streaming: lines are validated one at a time and handed on in Arrow record batches, so a
source of any size is read in bounded memory and every non-blank line ends up in exactly one of the
two outputs.
"""

from __future__ import annotations

import dataclasses
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


UNREADABLE = "unreadable_file"  # reason prefix of the one quarantine row of a file that cannot be read to its end


@dataclass
class SourceStats:
    """What one read of a landing source saw; reconciliation audits these figures."""

    files: dict[str, int] = field(default_factory=dict)  # landing files opened -> their size in bytes
    ignored_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    unreadable_files: list[str] = field(default_factory=list)  # each has one UNREADABLE quarantine row
    lines: int = 0  # non-blank lines read
    rows: int = 0
    rejected: int = 0
    blank_lines: int = 0
    erased: int = 0
    fast_lines: int = 0  # lines the DuckDB reader typed set-wise (duckdb_reader.py); the rest went line by line

    def add(self, other: SourceStats) -> None:
        """Add the figures of another read (a file's, a group's) to these, field by field."""
        for f in dataclasses.fields(self):
            mine, more = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                mine.extend(more)
            elif isinstance(mine, dict):
                mine.update(more)
            else:
                setattr(self, f.name, mine + more)


@dataclass
class Listing:
    """The entries under a landing source, told apart without opening any of them."""

    files: list[str] = field(default_factory=list)  # regular files (or links to one) with a landing name
    ignored: list[str] = field(default_factory=list)  # entries with other names
    skipped: list[str] = field(default_factory=list)  # landing names that are no regular file: FIFO, socket, ...
    unreadable: dict[str, str] = field(default_factory=dict)  # landing names that cannot be examined -> why


def landing_files(store, source: str) -> Listing:
    """The entries under `source` (paths relative to the landing root), by name and by kind (stat only)."""
    listing = Listing()
    unlisted: dict[str, OSError] = {}
    paths = store.list_files(source, unlisted)
    for folder, err in unlisted.items():  # its files are unknown: one quarantine row says so
        listing.unreadable[folder] = unreadable_cause(err)
    for path in paths:
        if not path.endswith(SUFFIXES):
            listing.ignored.append(path)
            continue
        try:
            kind = store.kind(path)
        except OSError as err:  # a dangling or looping link, no access
            listing.unreadable[path] = unreadable_cause(err)
            continue
        (listing.files if kind == "file" else listing.skipped).append(path)
    return listing


def unreadable_cause(err: BaseException) -> str:
    """Why a landing file cannot be read, in a few fixed words: never its bytes, never its path."""
    if isinstance(err, gzip.BadGzipFile):  # its message quotes the file's first bytes
        return "not gzip data" if str(err).startswith("Not a gzipped file") else "corrupt gzip data"
    if isinstance(err, EOFError):
        return "gzip data cut short"
    if isinstance(err, zlib.error):
        return "corrupt gzip data"
    if isinstance(err, OSError) and isinstance(err.strerror, str) and err.strerror:
        return err.strerror[0].lower() + err.strerror[1:]
    if isinstance(err, FileNotFoundError):
        return "not found"
    if isinstance(err, PermissionError):
        return "permission denied"
    return type(err).__name__


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


class _FileRead:
    """One read of a landing file. A failure to read it (gone, no access, not gzip, cut short, an I/O error)
    ends its lines and is kept in `failure`; failures of whoever consumes the lines are not caught here."""

    def __init__(self, store, path: str) -> None:
        self.store, self.path = store, path
        self.size: int | None = None  # bytes, once the file is open
        self.last = 0  # the last line read
        self.failure: str | None = None

    def lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            size = self.store.size(self.path)
            with open_landing_file(self.store, self.path) as stream:
                self.size = size
                for self.last, raw in physical_lines(stream):
                    yield self.last, raw
        except (OSError, EOFError, zlib.error) as err:
            self.failure = unreadable_cause(err)


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
    listing: Listing | None = None,
) -> SourceStats:
    """Validate every line of `source` under the landing store; typed rows and rejects go to the sinks.

    A file that cannot be read to its end (gone, no access, a dangling or looping link, not gzip, cut short)
    keeps the lines read before the damage and gets ONE quarantine row, reason "unreadable_file: <cause>".
    Entries with a landing name that are not regular files (FIFO, socket, device, link to a folder) are
    skipped without being opened, and listed in the stats.

    A line of an erased person (`erased`: a valid record of theirs, or an invalid line naming them) is counted
    as rejected with reason "erased" and its text is not kept: data re-delivered after an erasure never
    re-enters the lake, and cannot block it either.

    `listing` is the entries to read, landing_files(store, source) by default (the DuckDB reader hands over
    single entries it has listed already).
    """
    stats = SourceStats()
    listing = landing_files(store, source) if listing is None else listing
    stats.ignored_files, stats.skipped_files = listing.ignored, listing.skipped
    rows = _Batcher(data_schema, write_rows)
    rejected = _Batcher(pa.schema([(c.name, ARROW_TYPES[c.type]) for c in REJECTED_COLUMNS]), write_rejected)

    def unreadable(path: str, last: int, cause: str) -> None:
        # One row for the file, or for its rest past the last line read: the lines read so far are kept.
        stats.unreadable_files.append(path)
        rejected.add((source, path, last + 1, "", f"{UNREADABLE}: {cause}" + (f" after line {last}" if last else "")))

    for path in sorted([*listing.files, *listing.unreadable]):
        if path in listing.unreadable:
            unreadable(path, 0, listing.unreadable[path])
            continue
        read = _FileRead(store, path)
        for number, raw in read.lines():
            verdict = judge_line(source, raw, erased)
            if verdict is None:
                stats.blank_lines += 1
                continue
            stats.lines += 1
            if verdict[0] is not None:
                rows.add((*verdict[0], path, number))
            else:
                stats.erased += verdict[2] == ERASED
                rejected.add((source, path, number, verdict[1], verdict[2]))
        if read.size is not None:
            stats.files[path] = read.size
        if read.failure is not None:
            unreadable(path, read.last, read.failure)
    rows.flush()
    rejected.flush()
    stats.rows, stats.rejected = rows.count, rejected.count
    return stats
