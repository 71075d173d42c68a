"""A read-only DuckDB for SQL a person types (`stedi query`): it opens the given table files and nothing else.

Two locks, each covering what the other cannot:
- DuckDB's own settings. With `enable_external_access` off, a file can be opened only if it is in
  `allowed_paths` (here: the data files of the snapshots the query reads), whatever opens it: read_text,
  read_csv, read_blob, glob, ATTACH, INSTALL, LOAD, EXPORT, COPY. `lock_configuration` then refuses every
  SET, RESET and PRAGMA that would change a setting back. Checked on DuckDB 1.5.5: allowed_paths must be set
  before external access goes off, and DuckDB allows its temp folder too, so that is a fresh empty one.
- Only SELECT statements run, on DuckDB's own parse of the text (the statements it then executes). An
  allowed path can be written as well as read (`COPY ... TO '<data file>' (USE_TMP_FILE false)` overwrites
  it, on S3 too, where the connection holds the lake's credentials), and some statements act without a
  setting (PRAGMA enable_profiling, CREATE, INSERT): none of them is a SELECT.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb

from .duckdb_engine import private, sql_literal


class ReadOnly(ValueError):
    """SQL the sandbox does not run; the message is one line."""


def _lockdown(files: Sequence[str], spill: str) -> list[str]:
    return [
        f"SET temp_directory = {sql_literal(spill)}",
        "SET python_enable_replacements = false",  # no Python object of this process is read as a table
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        f"SET allowed_paths = [{', '.join(sql_literal(f) for f in files)}]",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ]


@contextmanager
def sandbox(setup: Sequence[str], files: Sequence[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that can read `files` (after `setup`, the store's access to them) and nothing else."""
    with tempfile.TemporaryDirectory(prefix="stedi-query-") as spill, private(setup) as con:
        for statement in _lockdown(files, spill):
            con.execute(statement)
        yield con


def select_statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[duckdb.Statement]:
    """The statements of `sql` if every one is a SELECT (DESCRIBE, SHOW, SUMMARIZE are); else ReadOnly."""
    statements = con.extract_statements(sql)
    if not statements:
        raise ReadOnly("no SQL statement given")
    for statement in statements:
        if statement.type != duckdb.StatementType.SELECT:
            raise ReadOnly(
                f"only SELECT statements run here, the lake is read-only (statement {statement.type.name} refused)"
            )
    return statements


def run_statements(con: duckdb.DuckDBPyConnection, statements: list[duckdb.Statement]) -> duckdb.DuckDBPyConnection:
    """Execute the checked statements in order; the cursor holds the last one's result."""
    cursor = con
    for statement in statements:
        cursor = con.execute(statement)
    return cursor


def tables_read(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """'schema.table' of every table or view the SELECT statements of `sql` name, from DuckDB's parse tree.

    A parse only (json_serialize_sql): connection.get_table_names would bind the views, and on DuckDB 1.5.5
    it fails on any view over read_parquet([...]).
    """
    (tree,) = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone() or (None,)
    found: set[str] = set()
    pending = [json.loads(tree)] if tree else []
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and node.get("schema_name"):
                found.add(f"{node['schema_name']}.{node['table_name']}".lower())  # DuckDB ignores case
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
