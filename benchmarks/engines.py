"""Benchmark: DuckDB vs Spark (local[*]) building the whole lake from generated landing data, at several sizes.

    python benchmarks/engines.py --customers 200 2000 10000 [--policy strict] [--defects all] [--repeat 1]
    python benchmarks/engines.py --landing DIR [--engines spark]     # an existing landing tree (K x Udacity)

Each (size, engine) runs in a fresh Python process that materializes every table in-process, as
`stedi run` would, so each figure includes Python, Dagster and, for Spark, the JVM's start-up. Printed
per run: the process's wall time; the Spark session start-up inside it; the time of the landing steps
(the landing readers: DuckDB's under DuckDB, spark_reader.py in Spark's executors under Spark), and the CPU
time the Dagster process itself spent in them (its own threads only: not Spark's JVM nor its Python
workers), also as a share of their time; the time of the six SQL tables; and the peak memory of the whole
process tree (the Python process plus, for Spark, its JVM and workers), sampled from /proc every 50 ms.
Row counts of every table are compared between the engines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import CpuTrace, TreePeak  # benchmarks/ is on sys.path when a script of it runs

SQL_TABLES = (
    "rejected",
    "customer_trusted",
    "accelerometer_trusted",
    "customer_curated",
    "step_trainer_trusted",
    "machine_learning_curated",
)


# ------------------------------------------------------------------------ the child: one materialization


def child(args: argparse.Namespace) -> None:
    import dagster as dg

    from stedi_assets.assets import TABLE_ASSETS
    from stedi_assets.resources import local_resources

    resources = local_resources(args.landing, args.lake, args.policy)
    startup = 0.0
    if args.engine == "spark":
        from stedi_assets.engines.spark_engine import SparkEngine

        engine = SparkEngine(spark_conf={"spark.driver.memory": args.spark_driver_memory}, log_level="ERROR")
        t0 = time.perf_counter()
        engine.session()  # the JVM start, timed on its own; it is part of the total too
        startup = time.perf_counter() - t0
        resources["engine"] = engine
    instance = dg.DagsterInstance.ephemeral()
    with CpuTrace() as cpu:
        result = dg.materialize(
            TABLE_ASSETS,
            resources=resources,
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
    steps = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    bounds: dict[str, list[float]] = {}  # step -> [start, end] wall-clock times of its events
    for entry in instance.all_logs(result.run_id):
        if entry.dagster_event and entry.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            bounds.setdefault(entry.dagster_event.step_key, []).append(entry.timestamp)
    step_cpu = {step: cpu.cpu_at(max(times)) - cpu.cpu_at(min(times)) for step, times in bounds.items()}
    rows = {
        e.asset_key.path[-1]: e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
    }
    report = {"success": result.success, "startup": startup, "steps": steps, "step_cpu": step_cpu, "rows": rows}
    print(json.dumps(report))


# ------------------------------------------------------------------------ the parent: measure children


def measure(argv: list[str], env: dict) -> tuple[float, float, dict]:
    """(wall seconds, peak tree RSS in MB, the child's JSON report)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreePeak(process.pid) as peak:
        out, err = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err[-3000:]}")
    return wall, peak.kb / 1024, json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[200, 2000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", choices=("strict", "rubric"), default="strict")
    parser.add_argument("--defects", default="all", help="comma-separated defect kinds, 'all' or ''")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"], choices=("duckdb", "spark"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per (size, engine); the best is shown")
    parser.add_argument("--spark-driver-memory", default="2g")
    parser.add_argument("--landing", help="an existing landing tree to read instead of generated sizes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from stedi_assets.generator import DEFECTS, generate_landing

    defects = DEFECTS if args.defects == "all" else tuple(d for d in args.defects.split(",") if d)
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": "benchmark-key", "SPARK_LOCAL_IP": "127.0.0.1"}
    header = (
        f"{'customers':>9} {'landing lines':>13} {'engine':>6} {'total s':>8} {'spark start s':>13} "
        f"{'landing s':>9} {'its Dagster CPU s':>17} {'share':>6} {'SQL tables s':>12} {'peak MB':>8} "
        f"{'rows = duckdb':>13}"
    )
    print(
        f"policy {args.policy}, defects {','.join(defects) or 'none'}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}; best of {args.repeat}\n"
    )
    print(header)
    print("-" * len(header))
    for customers in [0] if args.landing else args.customers:
        with tempfile.TemporaryDirectory() as tmp:
            if args.landing:
                landing = Path(args.landing)
                lines = sum(1 for f in landing.rglob("*.json*") for line in f.open("rb") if line.strip())
            else:
                landing = Path(tmp) / "landing"
                generated = generate_landing(landing, customers=customers, seed=args.seed, defects=defects)
                lines = sum(generated.lines.values())
            reference_rows = None
            for engine in args.engines:
                best = None
                for attempt in range(args.repeat):
                    lake = Path(tmp) / f"lake-{engine}-{attempt}"
                    wall, peak, report = measure(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            "--engine",
                            engine,
                            "--landing",
                            str(landing),
                            "--lake",
                            str(lake),
                            "--policy",
                            args.policy,
                            "--spark-driver-memory",
                            args.spark_driver_memory,
                        ],
                        env,
                    )
                    if not report["success"]:
                        raise SystemExit(f"{engine} run failed at {customers} customers")
                    if best is None or wall < best[0]:
                        best = (wall, peak, report)
                wall, peak, report = best
                steps = report["steps"]
                sql_s = sum(steps[t] for t in SQL_TABLES)
                landing_s = sum(s for t, s in steps.items() if t not in SQL_TABLES)
                landing_cpu = sum(s for t, s in report["step_cpu"].items() if t not in SQL_TABLES)
                if reference_rows is None:
                    reference_rows, same = report["rows"], "-"
                else:
                    same = "yes" if report["rows"] == reference_rows else "NO"
                start = f"{report['startup']:.2f}" if engine == "spark" else "-"
                size = f"{customers:,}" if customers else "-"
                print(
                    f"{size:>9} {lines:>13,} {engine:>6} {wall:>8.2f} {start:>13} {landing_s:>9.2f} "
                    f"{landing_cpu:>17.2f} {landing_cpu / landing_s:>6.0%} {sql_s:>12.2f} {peak:>8.0f} {same:>13}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
