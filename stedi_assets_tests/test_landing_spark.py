"""The Spark landing reader (zones/landing/spark_reader.py) against the reference reader (reader.py): the same
typed rows and quarantine rows (as multisets; doubles by their bits) and the same figures, on generated data with
every defect plus the DuckDB differential test's fuzzed lines, with erased people, and on files that are damaged,
vanish, are empty or have names Hadoop globs. Built through `build_landing` on the Spark engine, as a run does,
with a landing store that notes every file the Dagster process opens: the executors read the files, the driver
only what Spark did not deliver. Then a run with STEDI_ENGINE=spark builds the landing zone as DuckDB does.

One Spark session for the module (the engine's session is per process).
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from stedi_assets import step_progress
from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.builders import build_landing
from stedi_assets.engines.spark_engine import SparkEngine
from stedi_assets.generator import DEFECTS, generate_landing
from stedi_assets.identity import identity_key
from stedi_assets.privacy.register import ErasureRegister
from stedi_assets.resources import LandingResource, local_resources
from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.stores import LocalStore
from stedi_assets.zones.landing import spark_reader
from stedi_assets.zones.landing.reader import landing_files, read_source
from stedi_assets.zones.landing.schema import LANDING_TABLES, QUARANTINE, SOURCE_OF
from stedi_assets_tests.conftest import landing_records
from stedi_assets_tests.parity import assert_same_rows, engine_and_run, multiset
from stedi_assets_tests.test_landing_duckdb import RECORDS, SOURCES, _exact, _mutated, _render, run, write_fuzzed

SPEC = {SOURCE_OF[spec.name]: spec for spec in LANDING_TABLES}
OPENED: list[str] = []  # landing files opened by this (the Dagster) process


class Watched(LocalStore):
    def open(self, rel: str):
        OPENED.append(rel)
        return super().open(rel)


class WatchedLanding(LandingResource):
    def store(self):
        super().store()  # its checks
        return Watched(self.root)


@pytest.fixture(scope="module")
def engine() -> SparkEngine:
    return SparkEngine()


@pytest.fixture(autouse=True)
def nothing_opened_yet():
    OPENED.clear()


def build(engine, store, source: str, lake_root: Path, on_rows=None):
    """Build the source's landing table into a staged write as a run does: (its rows per part, the write)."""
    spec = SPEC[source]
    lake = open_lake(str(lake_root))
    staged = lake.stage(spec.zone, spec.name, {part: spec.arrow_schema("strict", part) for part in spec.parts})
    build_landing(spec, staged, lake, store, engine, on_rows=on_rows)
    rows = {
        part: [r for f in staged.files[part] for r in pq.read_table(lake.uri(f)).to_pylist()] for part in spec.parts
    }
    return rows, staged


def assert_as_the_reference(rows: dict, staged, reference) -> None:
    expected_rows, expected_rejected, stats = reference
    assert Counter(tuple(_exact(r).items()) for r in rows["data"]) == Counter(tuple(r.items()) for r in expected_rows)
    assert Counter(tuple(r.items()) for r in rows["rejected"]) == Counter(tuple(r.items()) for r in expected_rejected)
    extra = staged.extra
    assert extra["engine"] == "spark"
    assert staged.rows == {"data": stats.rows, "rejected": stats.rejected}
    assert extra["landing_files"] == stats.files
    assert (extra["unreadable_files"], extra["skipped_files"], extra["ignored_files"]) == (
        stats.unreadable_files,
        stats.skipped_files,
        stats.ignored_files,
    )
    assert (extra["nonblank_lines"], extra["blank_lines"], extra["erased_lines"]) == (
        stats.lines,
        stats.blank_lines,
        stats.erased,
    )


# ------------------------------------------------------------------------------- generated and fuzzed


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Generated landing with every defect (gzip, BOM and CRLF files among them), and the fuzzed files of the
    DuckDB differential test beside each source's files."""
    root = tmp_path_factory.mktemp("landing")
    generate_landing(root, customers=80, seed=7, defects=DEFECTS)
    fuzzed = write_fuzzed(tmp_path_factory.mktemp("fuzzed"), 4, 400)
    for source in SOURCES:
        shutil.move(fuzzed / source / "landing", root / source / "fuzzed")
    return root


@pytest.mark.parametrize("source", SOURCES)
def test_generated_and_fuzzed_lines_with_erased_people(engine, landing, source, tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    register = ErasureRegister.load(lake, for_update=True)
    user = landing_records(landing, "accelerometer")[0]["user"]
    erasure = register.record({identity_key(user)}, {landing_records(landing, "step_trainer")[0]["serialNumber"]}, {})
    register.save(lake, erasure)
    rows, staged = build(engine, Watched(landing), source, tmp_path / "lake")
    reference = run(read_source, LocalStore(landing), source, ErasureRegister.load(lake).landing_filter(source))
    assert_as_the_reference(rows, staged, reference)
    stats = reference[2]
    assert stats.rejected > 300 and stats.blank_lines and stats.erased and any(p.endswith(".gz") for p in stats.files)
    assert OPENED == []  # every line was validated in the executors


def test_rows_so_far_come_from_the_executors_while_spark_works(engine, landing, tmp_path, monkeypatch):
    """A long Spark landing step shows its rows so far, as a DuckDB one does: while Spark's jobs run, the typed
    rows of the files whose tasks have ended (an accumulator the executors add to), then the exact total."""
    monkeypatch.setattr(step_progress, "POLL_SECONDS", 0.005)  # many figures while the (short) jobs run
    heard: list[int] = []
    rows, staged = build(engine, Watched(landing), "accelerometer", tmp_path / "lake", on_rows=heard.append)
    total = len(rows["data"])
    assert total > 1000 and staged.rows["data"] == total
    assert heard[-1] == total  # the exact figure last
    assert heard == sorted(heard) and max(heard) == total  # never back, never beyond
    assert max(heard[:-1]) > 0  # figures from the executors came while Spark worked, before the final one
    assert OPENED == []


# ------------------------------------------------------------------------- files Spark does not deliver


class Vanishing(Watched):
    """gone.json is removed right after the run takes its fingerprint: listed, planned, then gone."""

    def fingerprint(self, rel: str) -> str:
        fingerprint = super().fingerprint(rel)
        if rel.endswith("gone.json"):
            (self.root / rel).unlink()
        return fingerprint


def test_damaged_vanished_empty_and_oddly_named_files(engine, tmp_path, monkeypatch):
    """A truncated gzip file, BOM + CRLF, no final newline, names with glob characters are read in the executors
    as the reference reads them; an empty file, one removed after the listing, one larger than MAX_FILE_BYTES and
    one whose name Hadoop cannot take literally are read here by the reference reader; a dangling link gets its
    one quarantine row and a FIFO is skipped without being opened."""
    monkeypatch.setattr(spark_reader, "MAX_FILE_BYTES", 20_000)
    folder = tmp_path / "landing" / "customer"
    folder.mkdir(parents=True)
    lines = [_mutated("customer", random.Random(i)) for i in range(300)]
    good = _render(RECORDS["customer"].items())
    (folder / "cut.json.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n")[:-200])
    (folder / "whole.json.gz").write_bytes(gzip.compress(b"\n".join(lines[:20])))
    (folder / "bom-crlf.json").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join([good, b"", *lines[:20]]) + b"\r\n")
    (folder / "no-final-newline.jsonl").write_bytes(b"\n".join(lines[20:40]))
    (folder / "glob [1]{a,b}*?\\.json").write_bytes(b"\n".join(lines[40:60]) + b"\n")
    (folder / "empty.json").write_bytes(b"")
    (folder / "gone.json").write_bytes(good + b"\n")
    (folder / "big.json").write_bytes(b"\n".join(lines) + b"\n")  # > 20,000 bytes
    (folder / "a:[1].json").write_bytes(good + b"\n")
    (folder / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    os.mkfifo(folder / "pipe.json")
    store = Vanishing(tmp_path / "landing")
    listing = landing_files(store, "customer")
    heard: list[int] = []
    rows, staged = build(engine, store, "customer", tmp_path / "lake", on_rows=heard.append)
    on_driver = sorted(OPENED)
    reference = run(lambda *args: read_source(*args, listing=listing), LocalStore(tmp_path / "landing"), "customer")
    assert_as_the_reference(rows, staged, reference)
    assert os.path.getsize(folder / "big.json") > 20_000 > os.path.getsize(folder / "bom-crlf.json")
    assert on_driver == ["customer/a:[1].json", "customer/big.json", "customer/empty.json"]
    # gone.json: its row comes from here too (the executors saw no such file), without an open (its size fails)
    assert staged.extra["unreadable_files"] == ["customer/cut.json.gz", "customer/dangling.json", "customer/gone.json"]
    assert rows["rejected"][-1]["reason"] == "unreadable_file: no such file or directory"
    assert staged.extra["skipped_files"] == ["customer/pipe.json"]
    # rows so far: the driver's rows count on from the executors' total
    assert heard == sorted(heard) and heard[-1] == len(rows["data"]) > max(h for h in heard if h < heard[-1])


# ------------------------------------------------------------------------------------------- a run


def test_a_spark_run_builds_the_landing_zone_in_the_executors(landing, tmp_path, monkeypatch):
    """STEDI_ENGINE=spark: the landing tables and the quarantine equal the DuckDB engine's, their snapshots
    record the Spark reader, and the Dagster process opened no landing file."""
    selection = dg.AssetSelection.groups("landing")
    lakes = {}
    for engine in ("duckdb", "spark"):
        monkeypatch.setenv("STEDI_ENGINE", engine)
        lakes[engine] = tmp_path / engine
        resources = local_resources(landing=str(landing), lake=str(lakes[engine]))
        if engine == "spark":
            assert isinstance(resources["engine"], SparkEngine)
            resources["landing"] = WatchedLanding(root=str(landing))
        assert dg.materialize(TABLE_ASSETS, resources=resources, selection=selection).success
    assert OPENED == []
    for spec in [*LANDING_TABLES, QUARANTINE]:
        for part in spec.parts:
            what = f"{spec.name} ({part})"
            assert_same_rows(
                multiset(lakes["duckdb"], "landing", spec.name, part),
                multiset(lakes["spark"], "landing", spec.name, part),
                what,
            )
        assert engine_and_run(lakes["spark"], "landing", spec.name)[0] == "spark"
