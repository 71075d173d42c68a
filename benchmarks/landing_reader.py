"""Benchmark: the Python landing reader (reader.py) vs the DuckDB one (duckdb_reader.py), Udacity data scaled K times.

    python benchmarks/landing_reader.py [--data ../shared/stedi-data] [--factors 1 10 100] [--workdir /tmp]

For each K, the landing data is scaled with shared/tools/scale_udacity.py into a temporary folder under
--workdir (deleted afterwards), then each reader reads the three sources in a fresh process, its rows and
quarantine rows counted and dropped (no Parquet is written: this measures the reader). Printed per reader:
wall time, lines per second, CPU time (user + system, all threads: less sensitive to a busy machine than
wall time), peak resident memory, and the share of lines the DuckDB reader typed set-wise (its fast path).
A reader whose projected time from the previous K exceeds --max-seconds is skipped. The readers' row,
quarantine and blank-line counts are compared; the machine may be shared and noisy, so read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import run_module  # benchmarks/ is on sys.path when a script of it runs

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("customer", "accelerometer", "step_trainer")


def child(reader: str, root: str, threads: int | None) -> None:
    from stedi_assets.engines.duckdb_engine import DuckDBEngine
    from stedi_assets.storage.stores import LocalStore
    from stedi_assets.zones import table
    from stedi_assets.zones.landing.duckdb_reader import read_source_duckdb
    from stedi_assets.zones.landing.reader import read_source
    from stedi_assets.zones.landing.schema import SOURCE_OF

    engine = DuckDBEngine(threads=threads)  # the connection an asset gets: its threads setting applies
    options = {"connection": engine.session} if reader == "duckdb" else {}
    totals = {"rows": 0, "rejected": 0, "blank_lines": 0, "fast_lines": 0}
    start = time.perf_counter()
    for name, source in SOURCE_OF.items():
        schema = table(name).arrow_schema("strict")
        read = read_source_duckdb if reader == "duckdb" else read_source
        stats = read(LocalStore(root), source, schema, lambda batch: None, lambda batch: None, **options)
        for key in totals:
            totals[key] += getattr(stats, key)
    print(json.dumps({"seconds": time.perf_counter() - start, **totals}))


def _physical_lines(path: Path) -> int:
    data = path.read_bytes()
    return data.count(b"\n") + (not data.endswith(b"\n") and len(data) > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "stedi-data"))
    parser.add_argument("--scaler", default=str(REPO.parent / "shared" / "tools" / "scale_udacity.py"))
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the scaled data goes (not the repo)")
    parser.add_argument("--readers", nargs="+", default=["python", "duckdb"], choices=("python", "duckdb"))
    parser.add_argument("--max-seconds", type=float, default=60.0, help="skip a reader projected to take longer")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument("--child", nargs=2, metavar=("READER", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.threads)

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    header = (
        f"{'K':>4} {'lines':>11} {'reader':>7} {'wall s':>7} {'lines/s':>11} {'CPU s':>7} {'lines/CPU-s':>11} "
        f"{'peak MB':>8} {'fast path':>9}"
    )
    threads = f"DuckDB threads {args.threads or 'all cores'}"
    print(
        f"{os.cpu_count()} cores, {threads}, load average {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}\n"
    )
    print(header)
    print("-" * len(header))
    rate: dict[str, float] = {}  # lines per second at the previous K
    for k in args.factors:
        folder = Path(tempfile.mkdtemp(prefix=f"stedi-landing-k{k}-", dir=args.workdir))
        try:
            subprocess.run(
                [sys.executable, args.scaler, args.data, str(folder / "landing"), "--factor", str(k), "--force"],
                check=True,
                capture_output=True,
            )
            lines = sum(_physical_lines(f) for s in SOURCES for f in (folder / "landing" / s).rglob("*.json"))
            results = {}
            for reader in args.readers:
                if reader in rate and lines / rate[reader] > args.max_seconds:
                    print(f"{k:>4} {lines:>11,} {reader:>7} skipped: about {lines / rate[reader]:.0f} s projected")
                    continue
                threads = ["--threads", str(args.threads)] if args.threads else []
                run = run_module("landing_reader", ["--child", reader, str(folder / "landing"), *threads], env)
                report = json.loads(run.stdout.strip().splitlines()[-1])
                rate[reader] = lines / report["seconds"]
                results[reader] = (run, report)
                fast = f"{report['fast_lines'] / lines:.1%}" if reader == "duckdb" else "-"
                print(
                    f"{k:>4} {lines:>11,} {reader:>7} {report['seconds']:>7.2f} {rate[reader]:>11,.0f} "
                    f"{run.cpu_seconds:>7.2f} {lines / run.cpu_seconds:>11,.0f} {run.peak_mb:>8.0f} {fast:>9}",
                    flush=True,
                )
            if len(results) == 2:
                (py_run, py), (db_run, db) = results["python"], results["duckdb"]
                same = all(py[key] == db[key] for key in ("rows", "rejected", "blank_lines"))
                print(
                    f"{'':>4} duckdb/python: {py['seconds'] / db['seconds']:.1f}x faster (wall), "
                    f"{py_run.cpu_seconds / db_run.cpu_seconds:.1f}x less CPU, "
                    f"{db_run.peak_mb / py_run.peak_mb:.1f}x the memory; same counts: {'yes' if same else 'NO'}"
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
