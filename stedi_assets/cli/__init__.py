"""`stedi`: generate landing data, run the pipeline and its checks, manage and query the lake.

`run` and `check` execute through Dagster (with DAGSTER_HOME set, their runs show in `dagster dev`)
and exit non-zero when any ERROR check fails: Dagster itself has no such command.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import NoReturn

from .. import settings
from ..contract import POLICIES
from ..privacy.keys import MissingKey
from ..storage.catalog import reset_catalogs
from ..storage.lake import CommitConflict
from ..storage.stores import StoreError
from . import lake_admin, pipeline
from .common import EXIT_USAGE, CliError
from .query import query as run_query


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stedi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help: str, landing: bool = False, lake: bool = True):
        p = sub.add_parser(name, help=help, description=help)
        if landing:
            p.add_argument(
                "--landing", help="landing root: folder or s3://bucket/prefix (default $STEDI_LANDING or ./landing)"
            )
        if lake:
            p.add_argument("--lake", help="lake root: folder or s3://bucket/prefix (default $STEDI_LAKE or ./lake)")
        p.set_defaults(handler=handler)
        return p

    gen = command(
        "generate", pipeline.generate, "write a deterministic landing tree shaped like the Udacity data", lake=False
    )
    gen.add_argument("out", help="folder to write (customer/, accelerometer/, step_trainer/)")
    gen.add_argument("--customers", type=int, default=100)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--defects", default="", help="comma-separated defect kinds to inject, or 'all'")

    run = command("run", pipeline.run, "materialize the lakehouse (or a selection) and run its checks", landing=True)
    run.add_argument("--policy", choices=POLICIES, help="zone rules (default $STEDI_POLICY or strict)")
    run.add_argument(
        "--select", help="Dagster asset selection, e.g. 'group:trusted' or 'key:\"trusted/customer_trusted\"+'"
    )
    run.add_argument(
        "--allow-shrink",
        action="store_true",
        help="publish even if a table loses more than STEDI_MAX_SHRINK (default 0.5) of its rows, or a landing "
        "source has no file left (the volume check then warns instead of blocking)",
    )

    chk = command("check", pipeline.check, "run the checks on the published tables; writes nothing")
    chk.add_argument("--select", help="only the checks of these assets (Dagster selection)")

    query = command("query", run_query, "run SQL over the lake's tables (<zone>.<table>)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.add_argument(
        "--as-of",
        help="a complete run (id or prefix) whose lake to read, or 'current' for each "
        "table's current snapshot (default: the latest complete run)",
    )
    query.add_argument("sql")

    command("init", lake_admin.init, "create the bucket (if missing) and the zone prefixes", landing=True)
    land = command(
        "land",
        lake_admin.land,
        "upload landing files into the landing root (skips identical files)",
        landing=True,
        lake=False,
    )
    land.add_argument("local_dir", help="folder with customer/, accelerometer/, step_trainer/")

    ddl = command(
        "ddl", lake_admin.ddl, "print the Athena DDL of the raw landing JSON tables", landing=True, lake=False
    )
    ddl.add_argument("--database-prefix", default="stedi", help="databases are <prefix>_raw, <prefix>_<zone>")

    snaps = command("snapshots", lake_admin.snapshots, "list the kept snapshots of a table (Iceberg history)")
    snaps.add_argument("table", help="e.g. trusted.customer_trusted or customer_trusted")
    back = command("rollback", lake_admin.rollback, "make an older snapshot of a table (or a whole run) current")
    back.add_argument("table", nargs="?")
    back.add_argument("snapshot", nargs="?", help="snapshot id (default: the one before the current)")
    back.add_argument("--run", help="roll every table back to this complete run's snapshots")
    command("migrate", lake_admin.migrate, "convert a lake of the previous snapshot format into Iceberg tables")
    forget = command(
        "forget", lake_admin.forget, "erase people from landing, every table and every snapshot", landing=True
    )
    forget.add_argument("emails", nargs="*", help="e-mail addresses to erase (none: finish pending erasures)")
    forget.add_argument("--file", help="a file with one e-mail per line")
    forget.add_argument(
        "--dry-run",
        action="store_true",
        help="only count what would be erased, per table and landing file; change nothing",
    )
    command("audit", lake_admin.audit, "who each table covers, and who the rules kept out")
    rep = command(
        "report",
        lake_admin.report,
        "write one HTML page of the lake: rows per zone, exclusions, checks, masked samples",
    )
    rep.add_argument("--out", default="stedi-report", help="folder for report.html (default ./stedi-report)")
    rep.add_argument("--as-of", help="a complete run (id or prefix), or 'current' (default: the latest complete run)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Dagster's beta/preview notices are for library authors, not for someone running the pipeline.
    warnings.filterwarnings("ignore", module=r"dagster(\..*)?$")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*(beta|preview).*")
    reset_catalogs()  # a command sees the lake as it is when it starts, not table metadata an earlier one read
    try:
        return args.handler(args)
    except (CliError, settings.SettingError, StoreError, CommitConflict, LookupError, MissingKey) as err:
        print(f"stedi: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def command_line() -> NoReturn:
    """The `stedi` command (and `python -m stedi_assets.cli`): main(), then the end of the process without the
    interpreter's teardown.

    Freeing the objects of the 2,000 or so modules a run imports takes the interpreter half a second after the
    work is done (a K=100 lake plus 1 %: 3.8 s with it, 3.3 s without). Everything an exit owes still happens,
    in the order Python does it: the threads that are not daemons are waited for, every atexit handler runs
    (logging's flush, the removal of DuckDB's spill folders and of temporary directories), stdout and stderr
    are flushed. Only objects' own finalizers are skipped, and nothing the command did waits on one: its files
    are closed and its commits made before main returns. An exception, or output that cannot be flushed (a
    closed pipe), takes the ordinary way out.
    """
    code = main()
    # What Python's exit runs, in its order (Py_FinalizeEx): threading's exit hooks (an idle thread pool's
    # workers are told to stop) and the wait for threads that are not daemons, then the atexit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)
