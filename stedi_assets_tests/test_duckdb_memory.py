"""Every DuckDB database of the project holds to one memory bound and spills into a private folder."""

from __future__ import annotations

import os
import tempfile

import pytest

from stedi_assets import settings
from stedi_assets.checks.audit import Audit
from stedi_assets.engines.duckdb_engine import DuckDBEngine, open_database
from stedi_assets.storage.lake import open_lake
from stedi_assets.zones import table

SETTINGS = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"


def _databases(tmp_path):
    """(name, settings) of each kind of database the pipeline opens: a private one (checks' audits, erasure,
    previews), an engine session (every table's SQL and the landing reader) and an audit's cursor."""
    with DuckDBEngine().session() as con:
        yield "engine session", con.execute(SETTINGS).fetchone()
    con = open_database()
    try:
        yield "private database", con.execute(SETTINGS).fetchone()
    finally:
        con.close()
    audit = Audit(spec=table("customer_landing"), policy="strict", files={}, extra={}, lake=open_lake(str(tmp_path)))
    try:
        yield "audit", audit.query(SETTINGS)[0]
    finally:
        audit.close()


def test_each_database_holds_to_the_setting_and_spills_into_its_own_private_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("STEDI_DUCKDB_MEMORY_LIMIT", "256MB")
    seen = dict(_databases(tmp_path))
    assert {limit for limit, _ in seen.values()} == {"244.1 MiB"}, seen  # DuckDB shows 256 MB in MiB
    folders = [folder for _, folder in seen.values()]
    assert len(set(folders)) == len(folders), "two databases share a spill folder"
    for folder in folders:
        assert os.path.isabs(folder) and folder.startswith(tempfile.gettempdir()), folder


def test_the_default_bound_is_one_gigabyte(tmp_path, monkeypatch):
    monkeypatch.delenv("STEDI_DUCKDB_MEMORY_LIMIT", raising=False)
    assert {limit for limit, _ in dict(_databases(tmp_path)).values()} == {"953.6 MiB"}  # 1 GB


def test_a_query_larger_than_the_bound_spills_and_leaves_nothing_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = open_database()
    try:
        con.execute("SET memory_limit = '64MB'")
        # a hash aggregate of 6 M distinct keys needs far more than 64 MB: it must spill to finish
        (distinct,) = con.execute("SELECT count(*) FROM (SELECT DISTINCT range * 7 FROM range(6000000))").fetchone()
        assert distinct == 6_000_000
        # looked at while the database is open (DuckDB removes its spill folder when it closes): an in-memory
        # DuckDB spills into ./.tmp unless told otherwise
        assert os.listdir(tmp_path) == []
    finally:
        con.close()


@pytest.mark.parametrize("value", ["lots", "1 G", "-1GB", "1e3MB"])
def test_a_bad_memory_setting_is_one_line(monkeypatch, value):
    monkeypatch.setenv("STEDI_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(settings.SettingError, match="STEDI_DUCKDB_MEMORY_LIMIT must be an amount of memory"):
        open_database()


def test_a_closed_database_leaves_no_spill_folder_behind(monkeypatch):
    # a long-lived process (a code server) opens thousands of databases: none may leave a folder behind
    con = open_database()
    try:
        folder = con.execute(SETTINGS).fetchone()[1]
        con.execute("SET memory_limit = '64MB'")
        con.execute("SELECT count(*) FROM (SELECT DISTINCT range * 7 FROM range(6000000))").fetchone()
        assert os.path.isdir(folder)  # it spilled there
    finally:
        con.close()
    assert not os.path.exists(folder)
    unused = open_database()
    folder = unused.execute(SETTINGS).fetchone()[1]
    unused.close()
    assert not os.path.exists(folder)  # a database that never spilled made no folder at all
