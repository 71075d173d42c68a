"""`stedi query` as someone would abuse it, and over a lake with one damaged table.

The query runs in a read-only DuckDB that can open the published tables' data files and nothing else: every
attack below is refused with one line (exit 2) and leaves every byte of the lake, and of the folder beside
it, as it was. A table that cannot be read fails only the queries that read it, naming it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import restored_afterwards

from stedi_assets.cli import main
from stedi_assets.privacy.register import REGISTER
from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.runs import complete_runs

KEY = "_private/pseudonym_key"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """A small lake with a complete run, whose private area holds a pseudonym key and an erasure register."""
    root = tmp_path_factory.mktemp("sandbox")
    landing, lake = root / "landing", root / "lake"
    assert main(["generate", str(landing), "--customers", "30", "--seed", "3", "--defects", "malformed_lines"]) == 0
    assert main(["run", "--landing", str(landing), "--lake", str(lake)]) == 0
    email = pq.read_table(lake / data_file(lake, "curated", "customer_curated"), columns=["email"])["email"][0]
    assert main(["forget", email.as_py(), "--landing", str(landing), "--lake", str(lake)]) == 0
    assert (lake / KEY).is_file() and len(list((lake / REGISTER).glob("*.json"))) == 1
    (root / "outside.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")  # a file beside the lake
    return lake


def data_file(lake: Path, zone: str, table: str) -> str:
    (rel,) = open_lake(str(lake)).current(zone, table).files["data"]
    return rel


def digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the lake and what lies beside it) -> the hash of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def query(capsys, lake: Path, sql: str, *options: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["query", "--lake", str(lake), *options, sql])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def rows(capsys, lake: Path, sql: str, *options: str) -> list[dict]:
    code, out, err = query(capsys, lake, sql, "--format", "json", *options)
    assert code == 0, err
    return json.loads(out)


def test_queries_over_the_published_tables_work(lake, capsys):
    joined = rows(
        capsys,
        lake,
        "SELECT count(*) AS n FROM curated.customer_curated c "
        "JOIN trusted.accelerometer_trusted a ON lower(c.email) = lower(a.user)",
    )
    assert joined[0]["n"] > 0
    (keys,) = rows(
        capsys,
        lake,
        "SELECT count(DISTINCT identity_key(email)) AS keys, count(*) AS n FROM trusted.customer_trusted",
    )
    assert keys["keys"] == keys["n"] > 0  # the rules' identity key: one trusted row per customer
    run = complete_runs(open_lake(str(lake)))[0][1]
    for options in ((), ("--as-of", "current"), ("--as-of", run[:8])):
        (row,) = rows(capsys, lake, "SELECT count(*) AS n FROM landing.rejected", *options)
        assert row["n"] > 0
    assert {r["column_name"] for r in rows(capsys, lake, "DESCRIBE trusted.customer_trusted")} >= {"email"}
    code, out, _ = query(
        capsys, lake, "SELECT source, count(*) AS n FROM landing.rejected GROUP BY ALL", "--format", "csv"
    )
    assert code == 0 and out.splitlines()[0] == "source,n"


ATTACKS = {
    "read_text of /etc/passwd": "SELECT * FROM read_text('/etc/passwd')",
    "read_csv of a file beside the lake": "SELECT * FROM read_csv('{root}/outside.txt', sep = ':')",
    "read_blob of a file beside the lake": "SELECT * FROM read_blob('{root}/outside.txt')",
    "read_text of the pseudonym key": f"SELECT * FROM read_text('{{lake}}/{KEY}')",
    "read_blob of the erasure register": f"SELECT * FROM read_blob('{{lake}}/{REGISTER}/*.json')",
    "read_csv of the key by a path through a table's folder": (
        f"SELECT * FROM read_csv('{{lake}}/trusted/customer_trusted/data/../../../{KEY}')"
    ),
    "COPY over a table's data file": "COPY (SELECT 1 AS a) TO '{table}' (FORMAT parquet, USE_TMP_FILE false)",
    "COPY to a path outside": "COPY (SELECT 1 AS a) TO '{root}/stolen.csv'",
    "COPY after a SELECT": "SELECT 1; COPY (SELECT 1 AS a) TO '{root}/stolen.csv'",
    "EXPORT DATABASE": "EXPORT DATABASE '{root}/export'",
    "ATTACH a database file": "ATTACH '{root}/other.duckdb'",
    "ATTACH the catalog": "ATTACH '{lake}/_catalog.db' (TYPE sqlite)",
    "INSTALL": "INSTALL spatial",
    "LOAD": "LOAD parquet",
    "SET external access back": "SET enable_external_access = true",
    "SET the allowed directories": "SET allowed_directories = ['/']",
    "RESET the allowed paths": "RESET allowed_paths",
    "SET the lock off": "SET lock_configuration = false",
    "PRAGMA setting": "PRAGMA threads = 1",
    "PRAGMA profiling to a file": "PRAGMA enable_profiling = 'json'",
    "CREATE TABLE": "CREATE TABLE copy AS SELECT * FROM trusted.customer_trusted",
    "INSERT": "INSERT INTO trusted.customer_trusted SELECT * FROM trusted.customer_trusted",
    "glob of the lake": "SELECT * FROM glob('{lake}/**')",
    "glob of /": "SELECT * FROM glob('/*')",
    "read_parquet by a pattern (staged, orphaned files too)": (
        "SELECT * FROM read_parquet('{lake}/trusted/customer_trusted/data/*/*.parquet')"
    ),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_refused_and_changes_nothing(lake, capsys, attack):
    root = lake.parent
    table = lake / data_file(lake, "trusted", "customer_trusted")
    secret = (lake / KEY).read_text().strip()
    before = digest(root)
    code, out, err = query(capsys, lake, ATTACKS[attack].format(lake=lake, root=root, table=table))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("stedi: error: ")
    assert secret not in err and "root:x" not in err
    assert digest(root) == before
    # and the lake still answers
    assert rows(capsys, lake, "SELECT count(*) AS n FROM trusted.customer_trusted")[0]["n"] > 0


def _metadata_file(lake: Path, zone: str, table: str) -> Path:
    with sqlite3.connect(lake / "_catalog.db") as db:
        ((location,),) = db.execute(
            "SELECT metadata_location FROM iceberg_tables WHERE table_namespace = ? AND table_name = ?", (zone, table)
        ).fetchall()
    return Path(location)


DAMAGE = {
    "data file deleted": lambda lake: (lake / data_file(lake, "trusted", "customer_trusted")).unlink(),
    "data file truncated": lambda lake: (lake / data_file(lake, "trusted", "customer_trusted")).write_bytes(b"PAR1"),
    "metadata file garbled": lambda lake: _metadata_file(lake, "trusted", "customer_trusted").write_text("{not json"),
    "metadata file deleted": lambda lake: _metadata_file(lake, "trusted", "customer_trusted").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("as_of", [(), ("--as-of", "current")])
def test_a_damaged_table_fails_only_the_queries_that_read_it(lake, capsys, damage, as_of):
    count = "SELECT count(*) AS n FROM curated.customer_curated"
    (expected,) = rows(capsys, lake, count, *as_of)
    with restored_afterwards(lake.parent):
        DAMAGE[damage](lake)
        assert rows(capsys, lake, count, *as_of) == [expected]
        assert rows(capsys, lake, "SELECT 42 AS answer", *as_of) == [{"answer": 42}]
        code, out, err = query(capsys, lake, "SELECT count(*) FROM trusted.customer_trusted", *as_of)
        assert code == 2 and out == ""
        assert len(err.splitlines()) == 1 and "table trusted.customer_trusted cannot be read" in err
        code, _, err = query(
            capsys,
            lake,
            "SELECT count(*) FROM curated.customer_curated c JOIN TRUSTED.Customer_Trusted t USING (email)",
            *as_of,
        )
        assert code == 2 and len(err.splitlines()) == 1 and "table trusted.customer_trusted cannot be read" in err


def test_a_damaged_later_data_file_names_its_table(lake, capsys):
    """A table of two data files whose second is damaged: DuckDB opens it only while running the query."""
    handle = open_lake(str(lake))
    current = handle.current("landing", "rejected")
    table = pq.read_table(lake / current.files["data"][0])
    with restored_afterwards(lake.parent):
        staged = handle.stage("landing", "rejected", {"data": table.schema})
        files = [staged.file("data", i) for i in range(2)]
        for rel in files:
            pq.write_table(table, lake / rel)
        handle.commit(staged, "test-two-files", None, set())
        (row,) = rows(capsys, lake, "SELECT count(*) AS n FROM landing.rejected", "--as-of", "current")
        assert row["n"] == 2 * table.num_rows
        (lake / files[1]).write_bytes((lake / files[1]).read_bytes()[:-100])
        code, _, err = query(capsys, lake, "SELECT count(*) FROM landing.rejected", "--as-of", "current")
        assert code == 2 and len(err.splitlines()) == 1 and "table landing.rejected cannot be read" in err
        assert rows(capsys, lake, "SELECT count(*) AS n FROM trusted.customer_trusted", "--as-of", "current")


def test_a_lake_with_no_readable_table_fails_in_one_line(lake, capsys):
    """Every table unreadable is the lake's access (credentials, endpoint) rather than one table's damage."""
    with restored_afterwards(lake.parent):
        with sqlite3.connect(lake / "_catalog.db") as db:
            locations = [Path(row[0]) for row in db.execute("SELECT metadata_location FROM iceberg_tables")]
        for location in locations:
            location.write_text("{not json")
        code, out, err = query(capsys, lake, "SELECT 42 AS answer")
        assert code == 2 and out == ""
        assert len(err.splitlines()) == 1 and f"no table of lake {lake} can be read" in err
