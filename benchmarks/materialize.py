"""Benchmark: the full materialization over generated landing data, per asset.

    python benchmarks/materialize.py --customers 2000 [--policy strict] [--defects all]

Prints, per asset, the wall time of its step inside one in-process run of the whole graph, and the
peak resident memory of a separate process that materializes that asset alone (each process reports
its own high-water mark, so the figures do not mix). The memory figure includes Python, Dagster and
DuckDB start-up: the `baseline` row is a process that only loads the definitions.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dagster as dg
from measure import run_module  # benchmarks/ is on sys.path when a script of it runs

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.generator import DEFECTS, generate_landing
from stedi_assets.resources import local_resources
from stedi_assets.zones import TABLES


def step_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    return {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", choices=("strict", "rubric"), default="strict")
    parser.add_argument("--defects", default="", help="comma-separated defect kinds, or 'all'")
    args = parser.parse_args()
    defects = DEFECTS if args.defects == "all" else tuple(d for d in args.defects.split(",") if d)

    with tempfile.TemporaryDirectory() as tmp:
        landing, lake = Path(tmp) / "landing", Path(tmp) / "lake"
        t0 = time.perf_counter()
        generated = generate_landing(landing, customers=args.customers, seed=args.seed, defects=defects)
        print(
            f"generated {sum(generated.lines.values()):,} landing lines "
            f"({', '.join(f'{s} {n:,}' for s, n in generated.lines.items())}) in {time.perf_counter() - t0:.1f} s"
        )

        t0 = time.perf_counter()
        result = dg.materialize(
            TABLE_ASSETS,
            resources=local_resources(str(landing), str(lake), args.policy),
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        total = time.perf_counter() - t0
        seconds = step_seconds(result)
        rows = {
            e.asset_key.path[-1]: e.materialization.metadata["dagster/row_count"].value
            for e in result.get_asset_materialization_events()
        }

        env = {**os.environ, "STEDI_LANDING": str(landing), "STEDI_LAKE": str(lake), "STEDI_POLICY": args.policy}
        baseline = run_module("stedi_assets.definitions", [], env).peak_mb
        print(
            f"\npolicy {args.policy}, {args.customers:,} customers, {os.cpu_count()} cores; "
            f"whole graph in one run: {total:.2f} s\n"
        )
        print(f"{'asset':34} {'rows':>12} {'step s':>8} {'alone s':>8} {'peak MB':>8}")
        print(f"{'baseline (load definitions)':34} {'':>12} {'':>8} {'':>8} {baseline:>8.0f}")
        for spec in TABLES:
            alone = run_module("stedi_assets.cli", ["run", "--select", f'key:"{spec.zone}/{spec.name}"'], env)
            print(
                f"{spec.zone + '.' + spec.name:34} {rows[spec.name]:>12,} {seconds[spec.name]:>8.2f} "
                f"{alone.seconds:>8.2f} {alone.peak_mb:>8.0f}"
            )


if __name__ == "__main__":
    main()
