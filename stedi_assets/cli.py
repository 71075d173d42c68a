"""`stedi`: generate landing data, run the pipeline, run the checks, query the lake.

`run` and `check` execute through Dagster (with DAGSTER_HOME set, their runs show in `dagster dev`)
and exit non-zero when any ERROR check fails: Dagster itself has no such command.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import warnings
from typing import Sequence

from . import settings
from .contract import POLICIES

EXIT_CHECKS_FAILED, EXIT_USAGE = 1, 2


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stedi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a deterministic landing tree shaped like the Udacity data")
    gen.add_argument("out", help="folder to write (customer/, accelerometer/, step_trainer/)")
    gen.add_argument("--customers", type=int, default=100)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--defects", default="", help="comma-separated defect kinds to inject, or 'all'")

    def locations(p: argparse.ArgumentParser, landing: bool = True) -> None:
        if landing:
            p.add_argument("--landing", help="landing root (default $STEDI_LANDING or ./landing)")
        p.add_argument("--lake", help="lake root (default $STEDI_LAKE or ./lake)")

    run = sub.add_parser("run", help="materialize the lakehouse (or a selection) and run its checks")
    locations(run)
    run.add_argument("--policy", choices=POLICIES, help="zone rules (default $STEDI_POLICY or strict)")
    run.add_argument("--select", help="Dagster asset selection, e.g. 'group:trusted' or 'key:trusted/customer_trusted+'")

    chk = sub.add_parser("check", help="run the checks on the published tables; writes nothing")
    locations(chk, landing=False)
    chk.add_argument("--select", help="only the checks of these assets (Dagster selection)")

    query = sub.add_parser("query", help="run SQL over the published tables (<zone>.<table>)")
    locations(query, landing=False)
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.add_argument("sql")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Dagster's beta/preview notices are for library authors, not for someone running the pipeline.
    warnings.filterwarnings("ignore", module=r"dagster(\..*)?$")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*(beta|preview).*")
    try:
        return {"generate": _generate, "run": _run, "check": _check, "query": _query}[args.command](args)
    except (CliError, settings.SettingError) as err:
        print(f"stedi: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _generate(args) -> int:
    from .generator import DEFECTS, generate_landing
    defects = DEFECTS if args.defects == "all" else tuple(d for d in args.defects.split(",") if d)
    try:
        result = generate_landing(args.out, customers=args.customers, seed=args.seed, defects=defects)
    except ValueError as err:
        raise CliError(str(err)) from None
    for source, lines in result.lines.items():
        print(f"{source:14} {lines:>10,} lines  {result.invalid_lines[source]:>6,} invalid  "
              f"{len(result.files[source])} files")
    print(f"landing written to {result.root}")
    return 0


def _locations(args, landing: bool = True) -> tuple[str | None, str]:
    lake = args.lake or settings.lake_uri()
    if os.path.exists(lake) and not os.path.isdir(lake):
        raise CliError(f"lake {lake} is not a folder")
    if not landing:
        return None, lake
    root = args.landing or settings.landing_uri()
    if not os.path.isdir(root):
        raise CliError(f"landing folder {root} does not exist")
    return root, lake


def _execute(args, selection, policy: str | None = None, needs_landing: bool = True):
    """Run `selection` through Dagster in this process, recorded in $DAGSTER_HOME's instance if set."""
    import dagster as dg
    from .assets import TABLE_ASSETS
    from .resources import LandingResource, local_resources

    landing, lake = _locations(args, landing=needs_landing)
    resources = local_resources(landing=landing, lake=lake, policy=policy)
    if needs_landing:
        try:
            LandingResource(root=landing).store()
        except dg.Failure as err:
            raise CliError(err.description) from None
    try:
        selection = dg.AssetSelection.from_coercible(selection) if isinstance(selection, str) else selection
    except Exception as err:  # dagster raises several kinds for a bad selection string
        raise CliError(f"bad --select {args.select!r}: {err}") from None
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = dg.materialize(TABLE_ASSETS, resources=resources, selection=selection, instance=instance,
                            raise_on_error=False,
                            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    return result, lake


def _run(args) -> int:
    from .report import print_checks, print_failures, print_zones
    policy = args.policy or settings.policy()
    result, lake = _execute(args, args.select, policy)
    print_zones(lake, result)
    failed = print_checks(result)
    print_failures(result)
    return EXIT_CHECKS_FAILED if failed or not result.success else 0


def _check(args) -> int:
    import dagster as dg
    from .assets import TABLE_ASSETS
    from .report import print_checks, print_failures
    from .storage.lake import Lake
    from .storage.stores import open_store
    _, lake = _locations(args, landing=False)
    if not Lake(open_store(lake)).tables():
        raise CliError(f"lake {lake} has no published tables: run `stedi run` first")
    if args.select:
        selection = dg.AssetSelection.checks_for_assets(
            *dg.AssetSelection.from_coercible(args.select).resolve(TABLE_ASSETS))
    else:
        selection = dg.AssetSelection.checks_for_assets(*TABLE_ASSETS)
    result, _ = _execute(args, selection, needs_landing=False)
    failed = print_checks(result)
    print_failures(result)
    return EXIT_CHECKS_FAILED if failed or not result.success else 0


def _query(args) -> int:
    import duckdb
    from .engines.duckdb_engine import attach_parquet
    from .storage.lake import Lake
    from .storage.stores import open_store
    _, lake_root = _locations(args, landing=False)
    lake = Lake(open_store(lake_root))
    if not os.path.isdir(lake_root) or not lake.tables():
        raise CliError(f"lake {lake_root} has no published tables: run `stedi run` first")
    con = duckdb.connect()
    relations = {}
    for zone, table in lake.tables():
        snapshot = lake.current(zone, table)
        relations[f"{zone}.{table}"] = [lake.uri(f) for f in snapshot.files["data"]]
    attach_parquet(con, relations)
    try:
        cursor = con.execute(args.sql)
    except duckdb.Error as err:
        raise CliError(str(err).splitlines()[0]) from None
    columns = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif args.format == "json":
        json.dump([dict(zip(columns, r)) for r in rows], sys.stdout, default=str, indent=1)
        print()
    else:
        from .report import print_table
        print_table(columns, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
