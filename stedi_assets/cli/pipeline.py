"""`stedi generate`, `stedi run` and `stedi check`: the pipeline through Dagster, in this process."""
from __future__ import annotations

import os

from .. import settings
from .common import EXIT_CHECKS_FAILED, CliError, landing_root, lake_root, open_lake


def generate(args) -> int:
    from ..generator import DEFECTS, generate_landing
    defects = DEFECTS if args.defects == "all" else tuple(d for d in args.defects.split(",") if d)
    try:
        result = generate_landing(args.out, customers=args.customers, seed=args.seed, defects=defects)
    except (ValueError, FileExistsError) as err:
        raise CliError(str(err)) from None
    for source, lines in result.lines.items():
        print(f"{source:14} {lines:>10,} lines  {result.invalid_lines[source]:>6,} invalid  "
              f"{len(result.files[source])} files")
    print(f"landing written to {result.root}")
    return 0


def _execute(args, selection, policy: str | None = None, needs_landing: bool = True):
    """Run `selection` through Dagster, recorded in $DAGSTER_HOME's instance if that is set."""
    import dagster as dg
    from ..assets import TABLE_ASSETS
    from ..resources import resources

    lake = lake_root(args)
    landing = landing_root(args, must_exist=needs_landing)
    open_lake(args, must_have_tables=False).tables()    # fail fast, in one line, if the lake is unreachable
    chosen = resources(landing=landing, lake=lake, policy=policy)
    if needs_landing:
        try:
            chosen["landing"].store()
        except dg.Failure as err:
            raise CliError(err.description) from None
    try:
        selection = dg.AssetSelection.from_coercible(selection) if isinstance(selection, str) else selection
    except Exception as err:  # dagster raises several kinds for a bad selection string
        raise CliError(f"bad --select {args.select!r}: {err}") from None
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = dg.materialize(TABLE_ASSETS, resources=chosen, selection=selection, instance=instance,
                            raise_on_error=False,
                            # failures are reported by this command itself, in its own words
                            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
    return result, lake


def run(args) -> int:
    from ..privacy.forget import finish_pending_erasures
    from ..report import print_checks, print_failures, print_zones
    finish_pending_erasures(open_lake(args, must_have_tables=False), landing_root(args))   # before anything else
    result, lake = _execute(args, args.select, args.policy or settings.policy())
    print_zones(open_lake(args, must_have_tables=False), result)
    failed = print_checks(result)
    print_failures(result)
    return EXIT_CHECKS_FAILED if failed or not result.success else 0


def check(args) -> int:
    import dagster as dg
    from ..assets import TABLE_ASSETS
    from ..report import print_checks, print_failures
    open_lake(args)
    if args.select:
        try:
            keys = dg.AssetSelection.from_coercible(args.select).resolve(TABLE_ASSETS)
        except Exception as err:
            raise CliError(f"bad --select {args.select!r}: {err}") from None
        selection = dg.AssetSelection.checks_for_assets(*keys)
    else:
        selection = dg.AssetSelection.checks_for_assets(*TABLE_ASSETS)
    result, _ = _execute(args, selection, needs_landing=False)
    failed = print_checks(result)
    print_failures(result)
    return EXIT_CHECKS_FAILED if failed or not result.success else 0
