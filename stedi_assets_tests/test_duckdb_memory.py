"""Every DuckDB database of the project holds to one memory bound and spills into a private folder."""

from __future__ import annotations

import os
import tempfile

import duckdb
import pytest

from stedi_assets import settings
from stedi_assets.checks.audit import Audit
from stedi_assets.engines.duckdb_engine import DuckDBEngine, connect, open_database
from stedi_assets.storage.lake import open_lake
from stedi_assets.zones import table

SETTINGS = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"


def _databases(tmp_path):
    """(name, settings) of each kind of database the pipeline opens: an engine session (every table's SQL and the
    landing reader), a private one (the query sandbox) and the process's shared one (checks' audits, erasure,
    previews)."""
    with DuckDBEngine().session() as con:
        yield "engine session", con.execute(SETTINGS).fetchone()
    con = open_database()
    try:
        yield "private database", con.execute(SETTINGS).fetchone()
    finally:
        con.close()
    audit = Audit(spec=table("customer_landing"), policy="strict", files={}, extra={}, lake=open_lake(str(tmp_path)))
    yield "shared (an audit)", audit.query(SETTINGS)[0]


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


def test_sessions_of_the_shared_database_see_nothing_of_each_other():
    """connect() hands out sessions of one database per process: each session's views, schemas and macros
    are its own (also while another is open), and nothing is left when it closes."""
    with connect() as first, connect() as second:
        first.execute("CREATE SCHEMA landing")
        first.execute("CREATE VIEW landing.t AS SELECT 1 AS v")
        first.execute("CREATE TEMP MACRO secret_key() AS 'k1'")
        second.execute("CREATE SCHEMA landing")
        second.execute("CREATE VIEW landing.t AS SELECT 2 AS v")  # the same name, at the same time
        assert first.execute("SELECT v FROM landing.t").fetchall() == [(1,)]
        assert second.execute("SELECT v FROM landing.t").fetchall() == [(2,)]
        with pytest.raises(duckdb.CatalogException):
            second.execute("SELECT secret_key()")
        assert first.execute("SELECT identity_key(' A@B.com ')").fetchall() == [("a@b.com",)]
    with connect() as later:
        with pytest.raises(duckdb.CatalogException):
            later.execute("SELECT v FROM landing.t")
        with pytest.raises(duckdb.CatalogException):
            later.execute("SELECT secret_key()")
        # the sessions' own catalogs are gone, not only out of sight
        names = {r[0] for r in later.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        assert len([n for n in names if n.startswith("session_")]) == 1, names


def test_the_query_sandbox_s_locked_settings_stay_in_its_own_database(tmp_path):
    """The sandbox of `stedi query` locks its database's configuration and closes external access; the
    sessions the pipeline's checks use afterwards in the same process must still read the lake's files."""
    from stedi_assets.engines.sandbox import sandbox

    data = tmp_path / "t.parquet"
    with connect() as con:
        con.execute(f"COPY (SELECT 1 AS v) TO '{data}' (FORMAT parquet)")
    with sandbox([], [str(data)]) as locked:
        assert locked.execute(f"SELECT v FROM read_parquet('{data}')").fetchall() == [(1,)]
    with connect() as con:
        assert con.execute(f"SELECT v FROM read_parquet('{data}')").fetchall() == [(1,)]
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (True,)
