"""A DuckDB script building the rubric tables: read_json of the landing, the SQL, each table COPY'd to Parquet.

    python -m peers.rubric_duckdb LANDING OUT [--landing-only]

Every table is one Parquet file OUT/<table>.parquet; the next tables read the files written before them.
--landing-only stops after the three landing tables (JSON -> Parquet alone). Prints the tables' row counts
as one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb

from peers.rubric_sql import DERIVED, LANDING


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def build(landing: Path, out: Path, landing_only: bool = False) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    selects = {
        table: f"SELECT * FROM read_json({_quoted(landing / folder / '**' / '*.json')})"
        for table, folder in LANDING.items()
    }
    if not landing_only:
        selects.update(DERIVED)
    counts = {}
    for table, select in selects.items():
        target = out / f"{table}.parquet"
        (counts[table],) = con.execute(f"COPY ({select}) TO {_quoted(target)} (FORMAT parquet)").fetchall()[0]
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({_quoted(target)})")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--landing-only", action="store_true", help="only the JSON -> Parquet of the three sources")
    args = parser.parse_args()
    print(json.dumps(build(args.landing, args.out, args.landing_only)))


if __name__ == "__main__":
    main()
