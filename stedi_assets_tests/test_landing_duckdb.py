"""The DuckDB landing reader against the Python reader (the reference): the same rows, quarantine rows and
figures, in the same order, on generated data with every defect, on fuzzed lines, across block boundaries,
with erasures and with unreadable files. Doubles are compared by their bits (so 0.0 is not -0.0)."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import os
import random
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from stedi_assets.builders import WritesBehind, landing_reader
from stedi_assets.engines.duckdb_engine import DuckDBEngine
from stedi_assets.engines.spark_engine import SparkEngine
from stedi_assets.generator import DEFECTS, generate_landing
from stedi_assets.privacy.register import LandingFilter, Subjects
from stedi_assets.resources import engine_resource
from stedi_assets.settings import SettingError
from stedi_assets.storage.stores import LocalStore
from stedi_assets.zones.landing import duckdb_reader
from stedi_assets.zones.landing.duckdb_reader import plain_shape, read_source_duckdb
from stedi_assets.zones.landing.reader import read_source
from stedi_assets.zones.landing.schema import ACCELEROMETER_LANDING, CUSTOMER_LANDING, STEP_TRAINER_LANDING

SCHEMAS = {"customer": CUSTOMER_LANDING, "accelerometer": ACCELEROMETER_LANDING, "step_trainer": STEP_TRAINER_LANDING}
SOURCES = tuple(SCHEMAS)


def _exact(row: dict) -> dict:
    return {k: v.hex() if isinstance(v, float) else v for k, v in row.items()}


def run(reader, store, source: str, erased=None):
    """(rows, quarantine rows, figures) of one reader; rows as dicts with doubles as hex."""
    rows: list[dict] = []
    rejected: list[dict] = []
    stats = reader(
        store,
        source,
        SCHEMAS[source].arrow_schema("strict"),
        lambda b: rows.extend(_exact(r) for r in b.to_pylist()),
        lambda b: rejected.extend(b.to_pylist()),
        erased,
    )
    return rows, rejected, stats


def assert_same(store, source: str, erased=None):
    """Both readers agree on everything; returns the DuckDB reader's figures."""
    fast_rows, fast_rejected, fast = run(read_source_duckdb, store, source, erased)
    rows, rejected, reference = run(read_source, store, source, erased)
    assert fast_rows == rows
    assert fast_rejected == rejected
    assert dataclasses.replace(fast, fast_lines=0) == reference
    return fast


# ------------------------------------------------------------------------------------- generated data


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    generate_landing(root, customers=120, seed=7, defects=DEFECTS)
    return root


@pytest.mark.parametrize("source", SOURCES)
def test_generated_data_with_every_defect(generated, source):
    stats = assert_same(LocalStore(generated), source)
    assert stats.rejected and stats.blank_lines  # the defects are there
    assert stats.fast_lines > 0.9 * stats.rows  # and the plain lines took the fast path


# ------------------------------------------------------------------------------------------- fuzzing

# A valid record of each source as raw JSON text per field (numbers written exactly as given).
RECORDS = {
    "customer": {
        "customerName": '"Santosh Clayton"',
        "email": '"Santosh.Clayton@test.com"',
        "phone": '"8015551212"',
        "birthDay": '"1900-01-01"',
        "serialNumber": '"50f7b4f3-7af5-4b07-a421-7b902c8d2b7c"',
        "registrationDate": "1655564376361",
        "lastUpdateDate": "1655564376361",
        "shareWithResearchAsOfDate": "1655564376361",
        "shareWithPublicAsOfDate": "1655564376361",
        "shareWithFriendsAsOfDate": "null",
    },
    "accelerometer": {"user": '"Craig.Wu@test.com"', "timestamp": "1655564455341", "x": "1.0", "y": "-1.0", "z": "0.0"},
    "step_trainer": {
        "sensorReadingTime": "1655564172120",
        "serialNumber": '"98ec1419-44b7-4016-a584-777f96115cce"',
        "distanceFromObject": "246",
    },
}
PEOPLE = {"customer": "email", "accelerometer": "user"}  # the field of RECORDS naming a person
NUMBERS = [
    "0", "-0", "-0.0", "0.1", "1.5", "1e3", "1E3", "1.5e1", "1e-3", "2e0", "1.0e+2", "01", "1.", ".5", "+1",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "123456789012345678",
    "1234567890123456789", "99999999999999999999999", "9007199254740993", "9007199254740993.0",
    "1655564444058.0", "1655564444058.0000001", "0.30000000000000004", "123456789012345.6", "12345678901234.5",
    "1234567890.12345", "0.000000000000001", "0.1234567890123456", "1e400", "-1e400", "1" + "0" * 400,
    "NaN", "Infinity", "-Infinity", "nan", "inf", "true", "false", "null", '"1"', '""', "[]", "{}", "[1]",
]  # fmt: skip
STRINGS = [
    '""', '" "', '"   "', '"\\t"', '"a\\"b"', '"a\\\\b"', '"\\u0041nn@x.com"', '"\\ud800"', '"\\ud83d\\ude00"',
    '"zoë@x.com"', '"山田"', '"a/b"', '"null"', '"1655564444058"', "42", "null", "true", '["a"]', '{"a": 1}',
]  # fmt: skip
NOISE = [b"\r", b"\t", b" ", b"\xef\xbb\xbf", b"\xff", b"\xc3\xa9", b",", b"}", b"{", b'"', b"\\", b"\x00", b"/**/"]


def _render(pairs, item: str = ",", colon: str = ":") -> bytes:
    """A JSON object from (key, raw value text) pairs; a None value leaves its key out."""
    return ("{" + item.join(f'"{k}"{colon}{v}' for k, v in pairs if v is not None) + "}").encode()


def _mutated(source: str, rng: random.Random) -> bytes:
    """A line of `source`: a valid record, maybe changed in one to three ways."""
    fields: dict[str, str | None] = dict(RECORDS[source])
    keys = list(fields)
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        key = rng.choice(keys)
        value = fields.get(key) or "0"
        kind = rng.randrange(11)
        if kind == 0:  # another number spelling
            fields[key] = rng.choice(NUMBERS)
        elif kind == 1:  # another string spelling
            fields[key] = rng.choice(STRINGS)
        elif kind == 2 and len(value) > 2:  # two digits or characters swapped
            i = rng.randrange(len(value) - 1)
            fields[key] = value[:i] + value[i + 1] + value[i] + value[i + 2 :]
        elif kind == 3:  # dropped
            fields[key] = None
        elif kind == 4:  # duplicated, maybe with another value (the last one counts)
            pairs = list(fields.items())
            pairs.insert(rng.randrange(len(pairs) + 1), (key, rng.choice([value, *NUMBERS[:6], *STRINGS[:3]])))
            return _render(pairs, rng.choice([",", ", "]), rng.choice([":", ": "]))
        elif kind == 5:  # unknown keys, the legacy timeStamp, an escaped key
            extra = rng.choice(['"comment"', '"timeStamp"', '"Timestamp"', f'"\\u00{ord(key[0]):02x}{key[1:]}"'])
            fields = {**fields, extra.strip('"'): rng.choice([value, "NaN", '{"a": [1, 2,]}', "[1, {}]", "null"])}
        elif kind == 6:  # keys in another order
            order = list(fields.items())
            rng.shuffle(order)
            fields = dict(order)
        elif kind == 7:  # a digit appended, an exponent or a fraction added
            fields[key] = value + rng.choice(["0", "e0", "E+1", "e-2", ".0", ".5", ".0000001", "9" * 8])
        else:
            break
    line = _render(fields.items(), rng.choice([",", ", ", " , "]), rng.choice([":", ": ", " :  "]))
    if rng.random() < 0.15:  # a byte or two of noise anywhere, or the line cut short
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(line) + 1)
            line = line[:at] + rng.choice(NOISE) + line[at:]
    if rng.random() < 0.03:
        line = line[: rng.randrange(len(line))]
    if rng.random() < 0.05:
        line = rng.choice([b" ", b"  "]) + line + rng.choice([b" ", b"\t", b"\r"])
    return line


def _fuzzed_file(lines: list[bytes], rng: random.Random) -> bytes:
    """Lines joined with LF, CRLF or a lone CR (which Python does not split on), blank lines between."""
    out = b"\xef\xbb\xbf" if rng.random() < 0.5 else b""
    for line in lines:
        out += line + rng.choice([b"\n"] * 6 + [b"\r\n", b"\r\n", b"\r", b"\r\r\n", b"\n\n", b" \t\n", b"\x0b\n"])
    return out if rng.random() < 0.5 else out.rstrip(b"\n")


def write_fuzzed(root: Path, files: int, lines: int) -> Path:
    """`files` files of `lines` fuzzed lines per source (every third one gzipped), the same on every call."""
    for source in SOURCES:
        rng = random.Random(f"fuzz:{source}")
        folder = root / source / "landing"
        folder.mkdir(parents=True)
        for n in range(files):
            data = _fuzzed_file([_mutated(source, rng) for _ in range(lines)], rng)
            if n % 3 == 2:
                (folder / f"part-{n}.json.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / f"part-{n}.json").write_bytes(data)
    return root


@pytest.mark.parametrize("source", SOURCES)
def test_fuzzed_lines(tmp_path_factory, source):
    stats = assert_same(LocalStore(write_fuzzed(tmp_path_factory.mktemp("fuzzed"), 6, 500)), source)
    assert stats.rows > 500 and stats.rejected > 500 and stats.fast_lines > 300


@pytest.mark.parametrize("source", SOURCES)
def test_fuzzed_lines_across_small_blocks(tmp_path, source, monkeypatch):
    # Blocks far smaller than the files and than some lines: long lines, numbering across blocks.
    monkeypatch.setattr(duckdb_reader, "BLOCK_BYTES", 173)
    monkeypatch.setattr(duckdb_reader, "BATCH_LINES", 3)
    stats = assert_same(LocalStore(write_fuzzed(tmp_path, 3, 60)), source)
    assert stats.fast_lines > 10


def test_blocks_are_typed_in_a_lane_per_engine_thread_and_written_in_line_order(tmp_path, monkeypatch):
    # DuckDB runs a block's query on one thread: the engine's threads are lanes typing blocks at once.
    monkeypatch.setattr(duckdb_reader, "BLOCK_BYTES", 173)
    store = LocalStore(write_fuzzed(tmp_path, 3, 60))
    lock, active, most = threading.Lock(), [0], [0]
    typed = duckdb_reader._SourceReader._typed

    def watched(reader, block):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.01)  # long enough for the other lanes to start
            return typed(reader, block)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(duckdb_reader._SourceReader, "_typed", watched)
    with_four = functools.partial(read_source_duckdb, connection=DuckDBEngine(threads=4).session)
    assert run(with_four, store, "accelerometer")[:2] == run(read_source, store, "accelerometer")[:2]
    assert most[0] == 4


# ---------------------------------------------------------------------------------------- plain shape


def test_plain_shape_decides_the_common_spellings(tmp_path):
    """Lines as the Udacity and generated files write them take the fast path; others go line by line."""
    plain = [
        b'{"user":"Craig.Wu@test.com","timestamp":1655564455341,"x":1.0,"y":-1.0,"z":0.0}',
        b'{"user": "a@x.com", "timestamp": -0, "x": 0.1, "y": 123456789012345678, "z": 12345678901234.5}\r',
        b' { "user" : " a " , "timestamp" : 0 , "x" : -0.0 , "y" : 1 , "z" : 2 } ',
    ]
    other = [
        b'{"user":"a@x.com","timestamp":1e3,"x":1,"y":1,"z":1}',  # exponent
        b'{"user":"a@x.com","timestamp":1,"x":123456789012345.6,"y":1,"z":1}',  # 16 digits
        b'{"timestamp":1,"user":"a@x.com","x":1,"y":1,"z":1}',  # another key order
        b'{"user":"a@x.com","timestamp":1,"x":1,"y":1,"z":1,"z":2}',  # a duplicate key
        b'{"user":"a\\u0040x.com","timestamp":1,"x":1,"y":1,"z":1}',  # an escape
        b'{"user":"\xc3\xa9@x.com","timestamp":1,"x":1,"y":1,"z":1}',  # not ASCII
        b'{"user":"a@x.com",\t"timestamp":1,"x":1,"y":1,"z":1}',  # a tab
    ]
    invalid = [  # a plain shape but for one byte: quarantined by the Python rules (DuckDB never reads them)
        b'{"user":"\xff@x.com","timestamp":1,"x":1,"y":1,"z":1}',  # not UTF-8
        b'{"user":"\x00@x.com","timestamp":1,"x":1,"y":1,"z":1}',  # a NUL: not valid JSON
    ]
    folder = tmp_path / "accelerometer"
    folder.mkdir()
    (folder / "a.json").write_bytes(b"\n".join(plain + other + invalid) + b"\n")
    stats = assert_same(LocalStore(tmp_path), "accelerometer")
    assert (stats.fast_lines, stats.rows, stats.rejected) == (len(plain), len(plain) + len(other), len(invalid))


@pytest.mark.parametrize("source", SOURCES)
def test_plain_shape_is_one_pattern_per_source(source):
    shape = plain_shape(source)
    assert shape.count('"') % 2 == 0 and "\\\\" not in shape and "'" not in shape  # plain text


# ---------------------------------------------------------------------------------- erasure, bad files


def test_erased_people_are_dropped_the_same_way(generated):
    subjects = Subjects(b"k" * 32)
    accelerometer = (generated / "accelerometer" / "landing").rglob("*.json")
    users = sorted({line.split(b'"')[3].decode() for f in accelerometer for line in f.read_bytes().splitlines()[:3]})
    digests = frozenset(subjects.digest(u.strip(" ").lower()) for u in users[:3])
    subjects = Subjects(b"k" * 32, identities=digests)
    stats = assert_same(LocalStore(generated), "accelerometer", LandingFilter("accelerometer", subjects))
    assert stats.erased > 0


@pytest.mark.parametrize("source", SOURCES)
def test_fuzzed_lines_of_erased_people(tmp_path, source):
    """The fuzzed lines' people erased: their valid and invalid lines are dropped alike by both readers, and a
    string that is no text (a lone surrogate escape) names nobody rather than failing the read."""
    digest = Subjects(b"k" * 32).digest
    people = frozenset(digest(json.loads(RECORDS[s][f]).strip(" ").lower()) for s, f in PEOPLE.items())
    serials = frozenset(digest(json.loads(RECORDS[s]["serialNumber"])) for s in ("customer", "step_trainer"))
    erased = LandingFilter(source, Subjects(b"k" * 32, identities=people, serials=serials))
    stats = assert_same(LocalStore(write_fuzzed(tmp_path, 2, 300)), source, erased)
    assert stats.erased > 300 and stats.rows  # some valid lines name someone else (a changed e-mail)


def test_a_truncated_gzip_file_is_the_python_readers_from_the_first_unwritten_line(tmp_path, monkeypatch):
    monkeypatch.setattr(duckdb_reader, "BLOCK_BYTES", 4096)  # some lines are written before the damage
    lines = [_mutated("step_trainer", random.Random(i)) for i in range(3000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    folder = tmp_path / "step_trainer"
    folder.mkdir()
    (folder / "a.json.gz").write_bytes(data[: len(data) // 2])
    (folder / "b.json").write_bytes(b"\n".join(lines[:50]))
    stats = assert_same(LocalStore(tmp_path), "step_trainer")
    assert stats.rows > 50 and stats.fast_lines > 50


def test_a_failing_sink_stops_the_read_with_its_error_the_worker_done_and_the_files_closed(tmp_path, monkeypatch):
    # The worker reads a block ahead, of this file or the next: a failure downstream must not leave it running.
    monkeypatch.setattr(duckdb_reader, "BLOCK_BYTES", 4096)
    folder = tmp_path / "step_trainer"
    folder.mkdir()
    line = _render(RECORDS["step_trainer"].items()) + b"\n"
    for name in ("a.json", "b.json", "c.json.gz"):
        data = line * 2000
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    streams = []

    class Watched(LocalStore):
        def open(self, rel: str):
            streams.append(super().open(rel))
            return streams[-1]

    def full(batch):
        if batch.column("source_line")[-1].as_py() > 1000:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        read_source_duckdb(Watched(tmp_path), "step_trainer", STEP_TRAINER_LANDING.arrow_schema("strict"), full, full)
    assert streams and all(stream.closed for stream in streams)
    assert not [t for t in threading.enumerate() if t.name.startswith(("landing-read", "landing-type"))]


def _batch(n: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array([n], pa.int64())], names=["source_line"])


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("landing-write")]


def test_writes_behind_keep_their_order_and_are_all_done_when_the_block_ends():
    written = []

    def slow(batch):
        time.sleep(0.01)  # slower than the reader: batches wait, at most WritesBehind.AHEAD of them
        written.append(batch.column(0)[0].as_py())

    with WritesBehind() as behind:
        sink = behind.sink(slow)
        for n in range(20):
            sink(_batch(n))
            assert len(behind.pending) <= WritesBehind.AHEAD
    assert written == list(range(20))
    assert not _writer_threads()


def test_a_failing_write_behind_fails_the_read_with_its_error():
    def full(batch):
        if batch.column(0)[0].as_py() == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), WritesBehind() as behind:
        sink = behind.sink(full)
        for n in range(10):
            sink(_batch(n))
    assert not _writer_threads()


def test_after_a_failed_read_the_write_under_way_ends_before_the_files_close_and_no_other_starts():
    started, finished = [], []

    def slow(batch):
        started.append(batch.column(0)[0].as_py())
        time.sleep(0.2)
        finished.append(batch.column(0)[0].as_py())

    with pytest.raises(ValueError, match="bad block"), WritesBehind() as behind:
        sink = behind.sink(slow)
        sink(_batch(0))
        sink(_batch(1))  # waits behind the first
        time.sleep(0.05)  # the first write is under way
        raise ValueError("bad block")
    assert started == finished == [0]  # closing the Parquet file now cannot cut a write short
    assert not _writer_threads()


def test_a_file_that_cannot_be_opened_is_the_python_readers(tmp_path):
    class Vanishing(LocalStore):
        def open(self, rel: str):
            if rel.endswith("gone.json"):
                raise FileNotFoundError(f"{rel} vanished")
            return super().open(rel)

    folder = tmp_path / "customer"
    folder.mkdir()
    for name in ("a.json", "gone.json", "z.json"):
        (folder / name).write_bytes(_render(RECORDS["customer"].items()) + b"\n")
    stats = assert_same(Vanishing(tmp_path), "customer")
    assert stats.rows == 2 and stats.rejected == 1


def test_unreadable_and_non_regular_entries_are_the_python_readers(tmp_path):
    """Not gzip, gzip cut short, dangling and looping links, a FIFO, a link to a folder: the same rows, one
    unreadable_file row each, the same skipped entries and figures (sizes, non-blank lines); nothing that
    is no regular file is opened."""
    folder = tmp_path / "customer"
    folder.mkdir()
    good = b"\n".join([_render(RECORDS["customer"].items())] * 3) + b"\n\n"  # and a blank line
    for name in ("a.json", "notgzip.json.gz", "z.jsonl"):
        (folder / name).write_bytes(good)
    (folder / "cut.json.gz").write_bytes(gzip.compress(good * 50)[:-40])
    (folder / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (folder / "loop-a.json").symlink_to(folder / "loop-b.json")
    (folder / "loop-b.json").symlink_to(folder / "loop-a.json")
    os.mkfifo(folder / "pipe.json")
    (tmp_path / "elsewhere").mkdir()
    (folder / "linked.json").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    opened: list[str] = []

    class Watched(LocalStore):
        def open(self, rel: str):
            opened.append(rel)
            return super().open(rel)

    stats = assert_same(Watched(tmp_path), "customer")
    assert stats.skipped_files == ["customer/linked.json", "customer/pipe.json"]
    assert "customer/pipe.json" not in opened and "customer/linked.json" not in opened
    unreadable = ["cut.json.gz", "dangling.json", "loop-a.json", "loop-b.json", "notgzip.json.gz"]
    assert stats.unreadable_files == [f"customer/{name}" for name in unreadable]
    assert stats.files["customer/a.json"] == stats.files["customer/z.jsonl"] == len(good)
    assert stats.lines > 6 and stats.blank_lines >= 2 and stats.fast_lines >= 6


# --------------------------------------------------------------------------------------- which reader


def test_each_engine_reads_landing_with_its_reader(monkeypatch):
    """DuckDB: the DuckDB reader unless told otherwise; Spark: spark_reader.py; no engine: the reference."""
    monkeypatch.delenv("STEDI_LANDING_READER", raising=False)
    assert landing_reader(engine_resource()) == "duckdb"
    assert landing_reader(DuckDBEngine(landing_reader="python")) == "python"  # Dagster config
    assert landing_reader(SparkEngine()) == "spark"  # the reference reader in Spark's executors
    assert landing_reader(None) == "python"
    monkeypatch.setenv("STEDI_LANDING_READER", "python")
    assert landing_reader(engine_resource()) == "python"
    monkeypatch.setenv("STEDI_LANDING_READER", "polars")
    with pytest.raises(SettingError, match="STEDI_LANDING_READER"):
        engine_resource()


def test_the_spark_engine_takes_its_driver_heap_from_the_environment(monkeypatch):
    """STEDI_SPARK_DRIVER_MEMORY sets spark.driver.memory (local Spark's whole heap); unset, Spark's default."""
    monkeypatch.delenv("STEDI_SPARK_DRIVER_MEMORY", raising=False)
    assert engine_resource("spark").spark_conf == {}
    monkeypatch.setenv("STEDI_SPARK_DRIVER_MEMORY", "6g")
    assert engine_resource("spark").spark_conf == {"spark.driver.memory": "6g"}
    monkeypatch.setenv("STEDI_SPARK_DRIVER_MEMORY", "6 GB please")
    with pytest.raises(SettingError, match="STEDI_SPARK_DRIVER_MEMORY='6 GB please': give a size such as 4g"):
        engine_resource("spark")
