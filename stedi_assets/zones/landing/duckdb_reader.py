"""The landing reader on DuckDB: reader.read_source's result, row for row, with the lines typed set-wise.

How. Each landing file is read as the Python reader reads it (same store, same gzip) in blocks of whole
lines, and numpy finds the newlines of a block, in a worker thread that stays a block ahead. Then, in one of
several lanes (threads) at once, Arrow's RE2 tests each line of the block, as bytes, against its source's
*plain shape* (plain_shape below) without a copy, and the block goes to DuckDB as one Arrow column over its
bytes whose validity bitmap is that test's result: a plain line is its text, every other line NULL, never
read by DuckDB. One query per block types the plain lines with json_transform. The blocks' rows are then
written in line order, by a writer thread (builders.WritesBehind). Every other line (blank,
invalid, or valid but unusual: non-ASCII, escapes, exponents, other key orders, duplicate or unknown keys,
timeStamp, a BOM, a CR inside...) goes through the Python reader's own per-line code (reader.judge_line), so
the two readers share every rule.

Why the plain shape is exact. A plain line is, byte for byte, a flat JSON object whose keys are the source's
fields in FIELDS order, each once (optional ones may be left out), with spaces only between tokens and an
optional CR before its newline, and values of these forms:

    key strings  "…" of printable ASCII without " or \\, not only spaces
    strings      "…" of printable ASCII without " or \\; null too (they are optional)
    integers     -?(0|[1-9][0-9]{0,17}): at most 18 digits, so inside 64 bits
    numbers      an integer as above, or a decimal with at most 15 digits and no exponent

The test runs on bytes, so RE2 reads each byte as one (Latin-1) character: the pattern's classes are of
printable ASCII only, so a plain line is ASCII, hence UTF-8 that decodes to the same characters (a line with
any other byte, valid UTF-8 or not, is never plain). Python's json reads such a line into a dict with
exactly those keys, and validate accepts it: strings are their text (there is nothing to unescape), integers
their value, a number float(int) or float(Decimal), the nearest double. DuckDB's JSON reader gives the same
values: the same text, the same 64-bit integers (converted to the nearest double for numbers), and for a
decimal of at most 15 digits d / 10^k, which is a single correctly rounded division of two exact doubles (no
reader can round it otherwise). Lines that DuckDB could read differently (NaN, trailing commas, duplicate
keys, big or long numbers) are not plain.

Files. The reader goes through reader.landing_files' Listing in the Python reader's order: entries with a
landing name that are no regular file are skipped unopened, as there. An entry that cannot be examined or
opened is handed to the Python reader as unreadable, with the cause seen. A file that fails while being read
is the Python reader's: it reads that one file again and its result counts from the first line not yet
written (so whatever it does with a damaged file, its one "unreadable_file" quarantine row included, this
reader does too: blocks end at whole lines, the Python reader gets every line before the damage). For the
files it reads itself this reader records what the Python reader records: the size in `files`, the non-blank
lines in `lines`.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...contract import ARROW_TYPES
from ...engines.duckdb_engine import private
from .reader import (
    ERASED,
    Listing,
    Sink,
    SourceStats,
    judge_line,
    landing_files,
    line_content,
    open_landing_file,
    read_source,
    unreadable_cause,
)
from .schema import REJECTED_COLUMNS
from .validation import FIELDS, _integer, _key_string, _number, _string

if TYPE_CHECKING:
    from ...privacy.register import LandingFilter

# Lines are read in blocks of about this size (a longer line makes a longer block). A few are held at once: one
# per lane, the next one the worker reads, and those waiting to be written; 16 MB is as fast as 32 MB and holds
# less.
BLOCK_BYTES = 16 << 20
BATCH_LINES = 65_536  # the Arrow batches of a block's table
# Blocks tested and typed at once, at most: each holds its block and typed rows (about 30 MB) until written.
MAX_LANES = 8

T = TypeVar("T")

# ------------------------------------------------------------------------------------- the plain shape

_TEXT = r"[ !#-\[\]-~]"  # a printable ASCII character but " and \
_INTEGER = r"-?(?:0|[1-9][0-9]{0,17})"
# A decimal of at most 15 digits in all: an integer part of i digits and a fraction of 1 .. 15 - i digits.
_DECIMAL = (
    r"-?(?:[0-9]\.[0-9]{1,14}|" + "|".join(rf"[1-9][0-9]{{{i - 1}}}\.[0-9]{{1,{15 - i}}}" for i in range(2, 15)) + ")"
)
# validation's parser of a field -> (its plain value, its DuckDB type)
_PLAIN_VALUES: dict[Callable, tuple[str, str]] = {
    _key_string: (rf'" *[!#-\[\]-~]{_TEXT}*"', "VARCHAR"),
    _string: (rf'"{_TEXT}*"', "VARCHAR"),
    _integer: (_INTEGER, "BIGINT"),
    _number: (rf"{_INTEGER}|{_DECIMAL}", "DOUBLE"),
}


def plain_shape(source: str) -> str:
    """The RE2 pattern that a whole plain line of `source` matches (see the module's docstring)."""
    fields = FIELDS[source]
    first = next(i for i, (_, _, required) in enumerate(fields) if required)
    items = []
    for i, (key, parse, required) in enumerate(fields):
        if not key.isalnum():  # keys are pasted into the pattern as they are
            raise ValueError(f"field {key!r} of {source} cannot be part of the plain shape")
        value = _PLAIN_VALUES[parse][0]
        item = f'"{key}" *: *(?:{value}{"" if required else "|null"})'
        if i < first:  # optional fields before the first required one
            items.append(f"(?:{item} *, *)?")
        elif i == first:
            items.append(item)
        else:
            items.append(f" *, *{item}" if required else f"(?: *, *{item})?")
    return r" *\{ *" + "".join(items) + r" *\} *\r?\n?"


def plain_rows_sql(source: str) -> str:
    """The query that types the lines of the Arrow table `lines(n, s)` (line number, text of a plain line with
    its newline; NULL for every other line)."""
    structure = json.dumps({key: _PLAIN_VALUES[parse][1] for key, parse, _ in FIELDS[source]})
    # j.* unnests the struct into its columns, named by its keys: cheaper than one j."key" per column
    return (
        f"SELECT j.*, n AS source_line FROM ("
        f"  SELECT n, json_transform(s, '{structure}') AS j FROM lines WHERE s IS NOT NULL)"
    )


# ---------------------------------------------------------------------------------------------- blocks


@dataclass
class _Block:
    """Whole lines of a file: line i is data[offsets[i]:offsets[i + 1]] with its newline; lines are numbered
    from `first`; plain[i] tells whether line i has the plain shape."""

    data: bytes
    offsets: np.ndarray  # int64
    first: int
    plain: pa.BooleanArray | None = None  # set by test()

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def line(self, i: int) -> bytes:
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    def test(self, pattern: str) -> None:
        """Test each line against `pattern`, on bytes: RE2 then reads each byte as one Latin-1 character."""
        lines = pa.Array.from_buffers(pa.large_binary(), self.count, [None, *_buffers(self.offsets, self.data)])
        self.plain = pc.match_substring_regex(lines, pattern)
        assert self.plain.offset == 0 and self.plain.null_count == 0  # new bits, used as a validity bitmap as is

    def table(self) -> pa.Table:
        """`lines(s, n)`: the text of each plain line, NULL for the others, and the line numbers. The plain
        test's bits are the validity bitmap of `s`: no copy, and DuckDB never reads the other lines (which
        need not be UTF-8)."""
        assert self.plain is not None, "test() the block first"
        validity = self.plain.buffers()[1]
        text = pa.Array.from_buffers(pa.large_string(), self.count, [validity, *_buffers(self.offsets, self.data)])
        numbers = pa.array(np.arange(self.first, self.first + self.count, dtype=np.int64))
        return pa.Table.from_batches(
            pa.record_batch([text.slice(at, BATCH_LINES), numbers.slice(at, BATCH_LINES)], names=["s", "n"])
            for at in range(0, self.count, BATCH_LINES)
        )


@dataclass
class _End:
    """The end of a file's blocks: it was read to its end (`size`, taken before opening, as the Python reader
    does), or could not be examined or opened (`unopened`, why), or neither: it failed while being read."""

    size: int | None = None
    unopened: str | None = None


def _contents(store, paths: list[str], unreadable: dict[str, str]) -> Generator[tuple[str, _Block | _End], None, None]:
    """(path, block) for the blocks of each file in turn (lines not tested yet), then (path, its _End);
    `unreadable` are the listed entries that cannot be examined, with why."""
    for path in paths:
        if path in unreadable:
            yield path, _End(unopened=unreadable[path])
            continue
        try:
            size = store.size(path)
            stream = open_landing_file(store, path)
        except (OSError, EOFError, zlib.error) as err:  # what the Python reader catches; not retried: a file
            yield path, _End(unopened=unreadable_cause(err))  # gone by now would give another cause
            continue
        with stream:
            chunks, first = _chunks(stream), 1
            while True:
                try:
                    chunk = next(chunks, None)
                except Exception:  # unreadable from here on: the Python reader decides what that means
                    yield path, _End()
                    break
                if chunk is None:
                    yield path, _End(size=size)
                    break
                block = _split(*chunk, first)
                first += block.count
                yield path, block


def _chunks(stream) -> Iterator[tuple[bytes, int]]:
    """(bytes, length of their whole lines) read from `stream`; the last chunk of a file may end without
    a newline. Only this reads the file: its errors are the file's."""
    tail = b""
    while chunk := stream.read(BLOCK_BYTES):
        data = tail + chunk if tail else chunk
        whole = data.rfind(b"\n") + 1
        if whole:
            yield data, whole
        tail = data[whole:]
    if tail:
        yield tail, len(tail)


def _split(data: bytes, whole: int, first: int) -> _Block:
    """The block of the first `whole` bytes of `data`, its first line numbered `first`."""
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8, count=whole) == 10)
    offsets = np.empty(len(newlines) + 1 + (data[whole - 1] != 10), np.int64)
    offsets[0] = 0
    offsets[1 : len(newlines) + 1] = newlines + 1
    offsets[-1] = whole
    return _Block(data, offsets, first)


def _buffers(offsets: np.ndarray, data: bytes) -> list[pa.Buffer]:
    """The offsets and data buffers of a (large) binary or string array, without a copy."""
    return [pa.py_buffer(offsets), pa.py_buffer(data)]


def _ahead(items: Generator[T, None, None]) -> Generator[T, None, None]:
    """`items`, each one made in a worker thread while the one before is in use (at most one ahead). An
    error of `items` is raised where its item would have come; closing this waits for the worker, then
    closes `items`."""

    def following() -> list[T]:  # [the next item], or [] at the end
        return list(islice(items, 1))

    try:
        with ThreadPoolExecutor(1, thread_name_prefix="landing-read") as worker:
            pending = worker.submit(following)
            while item := pending.result():
                pending = worker.submit(following)
                yield item[0]
    finally:
        items.close()


# ---------------------------------------------------------------------------------------------- reader

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class _SourceReader:
    """Reads the files of one source; per file, rows and quarantine rows go to the sinks in line order."""

    def __init__(
        self,
        con,
        store,
        source: str,
        data_schema: pa.Schema,
        write_rows: Sink,
        write_rejected: Sink,
        erased: LandingFilter | None,
    ) -> None:
        self.con, self.store, self.source, self.erased = con, store, source, erased
        self.lanes = 1
        self.schemas = {
            "rows": data_schema,
            "rejected": pa.schema([(c.name, ARROW_TYPES[c.type]) for c in REJECTED_COLUMNS]),
        }
        self.sinks = {"rows": write_rows, "rejected": write_rejected}
        self.sql = plain_rows_sql(source)
        self.pattern = f"^(?:{plain_shape(source)})$"  # the whole line
        self.stats = SourceStats()

    def read(self, paths: list[str], unreadable: dict[str, str]) -> None:
        """Read `paths` in turn; `unreadable` are those that cannot be examined, with why. A worker reads the
        next block, of this file or the next, while `lanes` blocks are tested and typed at once; their rows
        are written in block order."""
        figures, written = SourceStats(), 0  # the current file's, and the lines written so far
        typing = ThreadPoolExecutor(self.lanes, thread_name_prefix="landing-type")
        lanes: deque[tuple[str, _Block, Future[pa.Table]]] = deque()  # the blocks being typed, in order

        def settle(busy: int) -> None:  # write the typed blocks in order, until `busy` are left being typed
            nonlocal written
            while len(lanes) > busy:
                path, block, typed = lanes.popleft()
                self._block(path, block, typed.result(), figures)
                written += block.count

        try:
            with closing(_ahead(_contents(self.store, paths, unreadable))) as contents:
                for path, item in contents:
                    if isinstance(item, _Block):
                        lanes.append((path, item, typing.submit(self._typed, item)))
                        settle(self.lanes)
                        continue
                    settle(0)  # the file's blocks, before what its end means
                    self._end(path, item, written, figures)
                    figures, written = SourceStats(), 0
        finally:
            typing.shutdown(wait=True, cancel_futures=True)

    def _end(self, path: str, item: _End, written: int, figures: SourceStats) -> None:
        """A file's end: count it, or hand it to the Python reader if it could not be opened or failed."""
        if item.size is not None:
            figures.files[path] = item.size
            self.stats.add(figures)
        elif item.unopened is not None:
            self.python(path, item.unopened)
        else:
            self._python_from(path, written, figures)

    def _typed(self, block: _Block) -> pa.Table:
        """In a lane: test the block's lines, and type its plain ones (plain_rows_sql's columns), on a
        connection of the lane's own (a registered table is the connection's)."""
        block.test(self.pattern)
        with self.con.cursor() as con:
            con.register("lines", block.table())
            return con.execute(self.sql).to_arrow_table()

    def _block(self, path: str, block: _Block, plain: pa.Table, figures: SourceStats) -> None:
        """Write the rows and quarantine rows of a block, whose plain lines are typed in `plain`, and count
        them in `figures`."""
        figures.fast_lines += plain.num_rows
        numbers = plain.column("source_line")
        blank = figures.blank_lines
        rows, rejects, figures.blank_lines = self._others(path, block, numbers.to_numpy(), blank)
        figures.lines += block.count - (figures.blank_lines - blank)
        schema = self.schemas["rows"]
        columns = [plain.column(f.name).cast(f.type) for f in schema if f.name not in ("source_file", "source_line")]
        plain = pa.Table.from_arrays(
            [*columns, pa.repeat(pa.scalar(path, pa.string()), plain.num_rows), numbers], schema=schema
        )
        if self.erased is not None and plain.num_rows:
            plain, theirs = _without_erased(plain, self.erased)
            rejects += [(self.source, path, n, "", ERASED) for n in theirs]
        figures.erased += sum(r[4] == ERASED for r in rejects)
        figures.rows += self._write("rows", plain, rows)
        figures.rejected += self._write("rejected", None, rejects)

    def _others(self, path: str, block: _Block, plain_numbers: np.ndarray, blank: int) -> tuple[list, list, int]:
        """(rows, quarantine rows, `blank` + blank lines) of the lines that are not plain, by the Python rules."""
        decided = np.zeros(block.count, bool)
        decided[plain_numbers - block.first] = True
        rows: list[tuple] = []
        rejects: list[tuple] = []
        for i in np.flatnonzero(~decided).tolist():
            number = block.first + i
            verdict = judge_line(self.source, line_content(number, block.line(i)), self.erased)
            if verdict is None:
                blank += 1
            elif verdict[0] is not None:
                rows.append((*verdict[0], path, number))
            else:
                rejects.append((self.source, path, number, verdict[1], verdict[2]))
        return rows, rejects, blank

    def _write(self, part: str, table: pa.Table | None, rows: list[tuple]) -> int:
        """Write `table` and `rows` to the part's sink, together in line order; how many were written."""
        schema = self.schemas[part]
        parts = [table] if table is not None and table.num_rows else []
        if rows:
            columns = zip(*rows, strict=True)
            arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
            parts.append(pa.Table.from_arrays(arrays, schema=schema))
        if not parts:
            return 0
        merged = pa.concat_tables(parts)
        if not _ascending(merged.column("source_line")):
            merged = merged.take(pc.sort_indices(merged, [("source_line", "ascending")]))
        for batch in merged.to_batches():
            self.sinks[part](batch)
        return merged.num_rows

    def python(self, path: str, cause: str) -> None:
        """The Python reader's result for `path`, an entry that could not be examined or opened (`cause`)."""
        self._python_from(path, 0, SourceStats(), Listing(unreadable={path: cause}))

    def _python_from(self, path: str, written: int, figures: SourceStats, listing: Listing | None = None) -> None:
        """The Python reader's result for `path` after line `written` (and its rows about the whole file); its
        figures for the file replace `figures`, but for the rows written before it took over."""
        kept = {"rows": figures.rows, "rejected": figures.rejected}

        def after(part: str) -> Sink:
            def keep(batch: pa.RecordBatch) -> None:
                later = pc.greater(batch.column("source_line"), written)
                if part == "rejected":  # a row about the file, not a line: no text, and not an erased line
                    about_file = pc.and_(
                        pc.equal(batch.column("raw"), ""), pc.not_equal(batch.column("reason"), ERASED)
                    )
                    later = pc.or_(later, about_file)
                batch = batch.filter(later)
                if batch.num_rows:
                    self.sinks[part](batch)
                    kept[part] += batch.num_rows

            return keep

        python = read_source(
            self.store,
            self.source,
            self.schemas["rows"],
            after("rows"),
            after("rejected"),
            self.erased,
            listing or Listing(files=[path]),
        )
        python.rows, python.rejected, python.fast_lines = kept["rows"], kept["rejected"], figures.fast_lines
        self.stats.add(python)


def _without_erased(plain: pa.Table, erased: LandingFilter) -> tuple[pa.Table, list[int]]:
    """The plain rows of people not erased, and the line numbers of the others (judged once per person)."""
    column = plain.column(erased.subject_field)
    theirs = [v for v in pc.unique(column).to_pylist() if erased.owns(v)]
    if not theirs:
        return plain, []
    mask = pc.is_in(column, value_set=pa.array(theirs, pa.string()))
    return plain.filter(pc.invert(mask)), plain.filter(mask).column("source_line").to_pylist()


def _ascending(numbers: pa.ChunkedArray) -> bool:
    values = numbers.to_numpy()
    return bool(np.all(values[1:] > values[:-1]))


def read_source_duckdb(
    store,
    source: str,
    data_schema: pa.Schema,
    write_rows: Sink,
    write_rejected: Sink,
    erased: LandingFilter | None = None,
    listing: Listing | None = None,
    connection: Connect = private,
) -> SourceStats:
    """reader.read_source on DuckDB: the same rows, quarantine rows and figures, in the same order.

    `erased` is the erasure register's LandingFilter (or None); `listing` the entries to read (all of the
    source's by default); `connection` gives the DuckDB connection (an engine's session, so that its memory
    limit applies, and its threads are the lanes; one more thread reads ahead).
    """
    listing = landing_files(store, source) if listing is None else listing
    with connection() as con:
        # DuckDB runs a block's query on one thread however many it has (16 MB blocks: 96 ms on one, 100 ms on
        # two), so the cores go to lanes: as many as the engine's threads, up to MAX_LANES, each query on one
        # thread. Rows come back in line order: dropping that (and sorting here) was slower.
        [(threads,)] = con.execute("SELECT current_setting('threads')").fetchall()
        con.execute("SET threads = 1")
        reader = _SourceReader(con, store, source, data_schema, write_rows, write_rejected, erased)
        reader.lanes = max(1, min(int(threads), MAX_LANES))
        reader.stats.ignored_files, reader.stats.skipped_files = listing.ignored, listing.skipped
        reader.read(sorted([*listing.files, *listing.unreadable]), listing.unreadable)  # the Python reader's order
    return reader.stats
