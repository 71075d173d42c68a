"""`stedi query`: a person's SQL over the published tables, in a read-only DuckDB that sees their data files only.

Each table is resolved on its own (metadata, then its data files): a table that cannot be read fails only the
queries that read it, with one line naming it, and every other table stays queryable.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field

from ..storage.lake import Lake, Snapshot, TableNotPublished
from ..storage.lake import open_lake as open_iceberg_lake
from .common import CliError, lake_root, require_tables


@dataclass
class ReaderView:
    """What a query reads: 'zone.table' -> its snapshot, or why that table cannot be read (one line)."""

    run: str | None
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


# `--format table` cuts longer cells: a quarantined raw line is hundreds of characters wide.
TABLE_CELL_WIDTH = 60


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _unreadable_metadata(err: BaseException) -> str:
    return f"its Iceberg metadata cannot be read ({type(err).__name__}: {_first_line(err)})"


def reader_view(lake: Lake, as_of: str | None) -> ReaderView:
    """The latest complete run's lake (default), a named complete run's, or each table's current snapshot.

    A table whose metadata cannot be read is left out of the search for complete runs (its tags cannot be
    read): the other tables show the latest run complete among them.
    """
    from ..storage.runs import complete_runs, resolve_run, snapshot_of_run
    from ..zones import TABLES

    loaded, broken, unpublished = [], {}, False
    for spec in TABLES:
        try:
            loaded.append((spec, lake.iceberg(spec.zone, spec.name)))
        except TableNotPublished:
            unpublished = True
        except Exception as err:  # whatever is wrong with one table's metadata must not hide the others
            broken[spec.qualified_name] = _unreadable_metadata(err)
    run = None
    if as_of != "current":
        complete = [] if unpublished else complete_runs(lake, [tbl for _, tbl in loaded])
        run = resolve_run(lake, as_of, complete) if as_of else (complete[0][1] if complete else None)
    view = ReaderView(run, broken=broken)
    for spec, tbl in loaded:
        try:
            if run:
                snap = snapshot_of_run(lake, spec.zone, spec.name, run, tbl)
            else:
                snap = lake.snapshot(spec.zone, spec.name, tbl=tbl)
        except TableNotPublished:  # created but never committed: no table for readers yet
            continue
        except LookupError as err:
            broken[spec.qualified_name] = str(err)
        except Exception as err:  # a manifest list or manifest missing or damaged
            broken[spec.qualified_name] = _unreadable_metadata(err)
        else:
            view.snapshots[spec.qualified_name] = snap
    return view


def _damage(lake: Lake, uris: list[str], err: BaseException) -> str:
    """Why a table's data files cannot be read: the missing file by name, else DuckDB's first line."""
    named = [u for u in uris if u in str(err)] or uris
    missing = next((u for u in named if not lake.store.exists(lake.relative(u))), None)
    return f"data file {lake.relative(missing)} is missing" if missing else _first_line(err)


def _explain(lake: Lake, relations: dict[str, list[str]], err: BaseException) -> str:
    """DuckDB's error in one line, naming the table when it is about one of a table's data files."""
    for name, uris in relations.items():
        if any(u in str(err) for u in uris):
            return f"table {name} cannot be read: {_damage(lake, uris, err)}"
    return _first_line(err)


def query(args) -> int:
    import duckdb

    from ..engines.duckdb_engine import attach_parquet
    from ..engines.sandbox import ReadOnly, run_statements, sandbox, select_statements, tables_read

    root = lake_root(args)
    lake = open_iceberg_lake(root)
    view = reader_view(lake, args.as_of)
    require_tables(root, lake, bool(view.snapshots or view.broken))
    if not view.snapshots:  # nothing readable at all: the lake's access (credentials, endpoint), not one table
        name = min(view.broken)
        raise CliError(f"no table of lake {root} can be read ({name}: {view.broken[name]})")
    relations = {name: [lake.uri(f) for f in snap.files["data"]] for name, snap in view.snapshots.items()}
    broken = dict(view.broken)
    try:
        with sandbox(lake.store.duckdb_setup(), [u for uris in relations.values() for u in uris]) as con:
            statements = select_statements(con, args.sql)
            for name, uris in relations.items():
                try:
                    attach_parquet(con, {name: uris})
                except duckdb.Error as err:  # e.g. its first data file is gone: only this table is lost
                    broken[name] = _damage(lake, uris, err)
            for name in sorted(tables_read(con, args.sql) & broken.keys() if broken else ()):
                raise CliError(f"table {name} cannot be read: {broken[name]}")
            cursor = run_statements(con, statements)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
    except ReadOnly as err:
        raise CliError(str(err)) from None
    except duckdb.Error as err:
        raise CliError(_explain(lake, relations, err)) from None
    _print(args.format, columns, rows)
    return 0


def _print(fmt: str, columns: list[str], rows: list[tuple]) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        json.dump([dict(zip(columns, r, strict=False)) for r in rows], sys.stdout, default=str, indent=1)
        print()
    else:
        from ..report import print_table

        if print_table(columns, rows, max_cell=TABLE_CELL_WIDTH):
            print(
                f"stedi: cells longer than {TABLE_CELL_WIDTH} characters are cut (…); "
                "--format csv or json shows them whole",
                file=sys.stderr,
            )
