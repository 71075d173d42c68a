"""Benchmark: the fixed cost of a `stedi run`, against what Dagster alone costs for the same asset graph.

    python benchmarks/dagster_floor.py [--repeat 3] [--landing ../shared/stedi-data]

Each row is a fresh process, median of --repeat:
  python                     the interpreter alone (this script, doing nothing);
  import the project         `import stedi_assets.definitions` (Dagster, pyiceberg, DuckDB, pyarrow, ...);
  no-op graph (ephemeral)    the project's asset graph, its 9 assets and every asset check, with bodies that
                             do nothing, executed in process on an in-memory Dagster instance: Dagster's floor;
  no-op graph (DAGSTER_HOME) the same on a persistent instance in a new temporary DAGSTER_HOME (SQLite event
                             log, as `dagster dev` and `stedi run` with DAGSTER_HOME use);
  stedi run (ephemeral)      `stedi run` of the landing folder into an empty lake, rubric policy;
  stedi run (DAGSTER_HOME)   the same with a persistent instance.
The gap between a no-op row and its `stedi run` row is what the pipeline itself costs (reading, SQL,
checks, Iceberg commits); the no-op rows are what no change to the pipeline can remove while it runs as
Dagster assets in one process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from measure import Measured, run_module, stedi_environment  # benchmarks/ is on sys.path when a script of it runs

REPO = Path(__file__).resolve().parents[1]

# Run as `python -m dagster_floor --noop`: the project's graph with do-nothing bodies (same keys, deps, checks).
NOOP = "noop"


def noop_graph() -> None:
    import dagster as dg

    from stedi_assets.assets import TABLE_ASSETS

    def empty(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
        checks = list(asset.check_specs)
        specs = [dg.AssetSpec(key, deps=asset.asset_deps[key]) for key in asset.keys]

        @dg.multi_asset(specs=specs, check_specs=checks, name=asset.node_def.name)
        def _nothing():
            for key in asset.keys:
                yield dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": 0})
            for check in checks:
                yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

        return _nothing

    job = dg.Definitions(
        assets=[empty(a) for a in TABLE_ASSETS], jobs=[dg.define_asset_job("noop_job")]
    ).resolve_job_def("noop_job")
    instance = dg.DagsterInstance.get() if "--persistent" in sys.argv else dg.DagsterInstance.ephemeral()
    if not job.execute_in_process(instance=instance).success:
        raise SystemExit("the no-op graph failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--landing", default=str(REPO.parent / "shared" / "stedi-data"))
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent)
    env = stedi_environment(f"{REPO}:{here}", STEDI_POLICY="rubric")
    with tempfile.TemporaryDirectory(prefix="stedi-floor-") as tmp:
        persistent = {**env, "DAGSTER_HOME": tmp}
        rows: list[tuple[str, str, list[str], dict]] = [
            ("python", "dagster_floor", ["--nothing"], env),
            ("import the project", "dagster_floor", ["--import"], env),
            ("no-op graph (ephemeral)", "dagster_floor", [f"--{NOOP}"], env),
            ("no-op graph (DAGSTER_HOME)", "dagster_floor", [f"--{NOOP}", "--persistent"], persistent),
            ("stedi run (ephemeral)", "stedi_assets.cli", ["run", "--landing", args.landing], env),
            ("stedi run (DAGSTER_HOME)", "stedi_assets.cli", ["run", "--landing", args.landing], persistent),
        ]
        results: dict[str, list[Measured]] = {label: [] for label, *_ in rows}
        for i in range(args.repeat):  # the rows alternate, so that other load on the machine hits them alike
            for label, module, options, environment in rows:
                lake = Path(tmp) / f"lake-{i}-{len(results[label])}-{label.split()[0]}"
                extra = ["--lake", str(lake)] if module == "stedi_assets.cli" else []
                results[label].append(run_module(module, [*options, *extra], environment))
    print(f"| what ({args.repeat} runs, median) | wall s | CPU s | peak MB |")
    print("|---|---:|---:|---:|")
    for label, measured in results.items():
        wall = statistics.median(m.seconds for m in measured)
        cpu = statistics.median(m.cpu_seconds for m in measured)
        peak = statistics.median(m.peak_mb for m in measured)
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    if f"--{NOOP}" in sys.argv:
        noop_graph()
    elif "--import" in sys.argv:
        import stedi_assets.definitions  # noqa: F401
    elif "--nothing" not in sys.argv:
        main()
