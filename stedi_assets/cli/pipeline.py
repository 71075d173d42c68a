"""`stedi generate`, `stedi run` and `stedi check`: the pipeline through Dagster, in this process."""

from __future__ import annotations

import os

from .. import settings
from .common import EXIT_CHECKS_FAILED, CliError, lake_root, landing_root, open_lake
from .progress import LOGGER, progress_logger


def generate(args) -> int:
    from ..generator import DEFECTS, generate_landing

    defects = DEFECTS if args.defects == "all" else tuple(d for d in args.defects.split(",") if d)
    try:
        result = generate_landing(args.out, customers=args.customers, seed=args.seed, defects=defects)
    except (ValueError, FileExistsError) as err:
        raise CliError(str(err)) from None
    for source, lines in result.lines.items():
        print(
            f"{source:14} {lines:>10,} lines  {result.invalid_lines[source]:>6,} invalid  "
            f"{len(result.files[source])} files"
        )
    print(f"landing written to {result.root}")
    return 0


INSTANCE_CONFIG = """\
# The Dagster instance of the STEDI lakehouse, written by `stedi` on first use of this DAGSTER_HOME.
# Telemetry stays off unless you switch it on here.
telemetry:
  enabled: false
"""


def _instance():
    """$DAGSTER_HOME's instance (runs then show in `dagster dev`), given this project's config on first use;
    an ephemeral one without DAGSTER_HOME."""
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        os.makedirs(home, exist_ok=True)
        with open(config, "w") as f:
            f.write(INSTANCE_CONFIG)
    return dg.DagsterInstance.get()


def _job_for(keys, groups) -> str:
    """The named job a selection matches: a zone's job, else lakehouse_job (whole or subset)."""
    for zone, zone_keys in groups.items():
        if keys == zone_keys:
            return f"{zone}_job"
    return "lakehouse_job"


def _execute(
    args,
    selection,
    policy: str | None = None,
    needs_landing: bool = True,
    checks_only: bool = False,
    allow_shrink: bool = False,
):
    """Run `selection` as the project's named job (lakehouse_job, <zone>_job or checks_job), recorded in
    $DAGSTER_HOME's instance if that is set."""
    import dagster as dg

    from ..assets import TABLE_ASSETS
    from ..resources import resources

    lake = lake_root(args)
    landing = landing_root(args, must_exist=needs_landing)
    # Fail fast, in one line, if the lake is unreachable: its catalog, and its store (a missing bucket would
    # otherwise surface as a failed step, since a new lake's catalog has nothing that points into the bucket).
    target = open_lake(args, must_have_tables=False)
    target.has_tables()
    target.store.is_dir()
    chosen = resources(landing=landing, lake=lake, policy=policy, allow_shrink=allow_shrink)
    if needs_landing:
        try:
            chosen["landing"].store()
        except dg.Failure as err:
            raise CliError(err.description) from None
    all_keys = set(dg.AssetSelection.all().resolve(TABLE_ASSETS))
    try:
        keys = set(dg.AssetSelection.from_coercible(selection).resolve(TABLE_ASSETS)) if selection else all_keys
    except Exception as err:  # dagster raises several kinds for a bad selection string
        raise CliError(f"bad --select {selection!r}: {err}") from None
    if not keys:
        from ..zones import TABLES

        raise CliError(
            f"--select {selection!r} matches no table; groups: landing, trusted, curated; tables: "
            + ", ".join(f"{t.zone}/{t.name}" for t in TABLES)
        )
    job_selection: dg.AssetSelection
    if checks_only:
        name, job_selection = "checks_job", dg.AssetSelection.checks_for_assets(*keys)
    else:
        groups = {z: {k for k in all_keys if k.path[0] == z} for z in ("landing", "trusted", "curated")}
        name, job_selection = _job_for(keys, groups), dg.AssetSelection.assets(*keys)
    logger, progress = progress_logger()
    job = dg.Definitions(
        assets=TABLE_ASSETS,
        jobs=[dg.define_asset_job(name, selection=job_selection)],
        resources=chosen,
        loggers={"console": dg.default_loggers()["console"], LOGGER: logger},
    ).resolve_job_def(name)
    tags = (
        {}
        if checks_only
        else {"stedi/policy": chosen["policy"].name, "stedi/landing": landing, "stedi/engine": chosen["engine"].name}
    )
    try:
        result = job.execute_in_process(
            instance=_instance(),
            raise_on_error=False,
            tags=tags,
            # failures are reported by this command itself, in its own words; progress goes to stderr
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}, LOGGER: {}}},
        )
    finally:
        progress.close()
    return result, lake


def run(args) -> int:
    from ..privacy.forget import finish_pending_erasures
    from ..report import print_checks, print_failures, print_zones

    settings.require_engine(settings.engine())  # a missing optional engine: one line, before anything runs
    finish_pending_erasures(open_lake(args, must_have_tables=False), landing_root(args))  # before anything else
    result, lake = _execute(args, args.select, args.policy or settings.policy(), allow_shrink=args.allow_shrink)
    print_zones(open_lake(args, must_have_tables=False), result)
    failed = print_checks(result)
    print_failures(result)
    return EXIT_CHECKS_FAILED if failed or not result.success else 0


def check(args) -> int:
    from ..report import print_checks, print_failures

    open_lake(args)
    result, _ = _execute(args, args.select, needs_landing=False, checks_only=True)
    failed = print_checks(result)
    print_failures(result)
    return EXIT_CHECKS_FAILED if failed or not result.success else 0
