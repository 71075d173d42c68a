"""Benchmark: `stedi run` on the previous lake format against the Iceberg lake, side by side in one run.

    python benchmarks/iceberg_before_after.py --before /tmp/base [--after .] [--repeat 3]
        [--udacity ../shared/stedi-data] [--customers 20000] [--defects all] [--policy strict]

`--before` and `--after` are checkouts of the project (e.g. `git worktree add /tmp/base 3936ec9`, the last
commit of the old format); each run is a fresh `python -m stedi_assets.cli run` process with that checkout
first on PYTHONPATH, into an empty lake, over (a) the Udacity landing data and (b) generated data of the
given size (the benchmark's largest: 20,000 customers with every defect). The two versions alternate run
by run, so that whatever else loads the machine meanwhile hits both alike. Printed per dataset and
version: the median wall time and the median peak resident memory (the process's own VmHWM; `stedi run`
is one process) of the runs, their spread, and after/before. Every run must exit 0 and print the same
zone table (tables, counts, rejected lines) as every other run of the dataset, or the benchmark stops.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import run_module   # benchmarks/ is on sys.path when a script of it runs

PROJECT = Path(__file__).resolve().parents[1]
SOURCES = ("customer", "accelerometer", "step_trainer")
# Settings a caller's shell may hold that would point a run at another lake, catalog or Dagster instance.
CLEARED = ("DAGSTER_HOME", "STEDI_LAKE", "STEDI_LANDING", "STEDI_CATALOG", "STEDI_DEPLOYMENT", "STEDI_ENGINE",
           "STEDI_POLICY", "PYTHONPATH")


def environment(checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return {**env, "PYTHONPATH": str(checkout), "STEDI_PSEUDONYM_KEY": "benchmark-key"}


def landing_lines(root: Path) -> int:
    """Non-blank lines of the three sources' files (a README beside them is not landing data)."""
    files = [p for source in SOURCES for p in (root / source).rglob("*") if p.is_file()]
    return sum(sum(1 for line in p.open("rb") if line.strip()) for p in files)


def zone_table(stdout: str) -> str:
    """The counts block `stedi run` prints first (up to the first blank line)."""
    return stdout.strip().split("\n\n", 1)[0]


def one_run(checkout: Path, landing: Path, workdir: Path, policy: str) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory(dir=workdir, prefix="lake-") as lake:
        return run_module("stedi_assets.cli", ["run", "--landing", str(landing), "--lake", lake, "--policy", policy],
                          environment(checkout))


def compare(name: str, landing: Path, versions: dict[str, Path], args, workdir: Path) -> list[tuple]:
    """Alternate the versions `args.repeat` times over `landing`; one result row per version."""
    measured: dict[str, list[tuple[float, float]]] = {v: [] for v in versions}
    reference = None
    for attempt in range(args.repeat):
        for version, checkout in versions.items():
            seconds, peak, stdout = one_run(checkout, landing, workdir, args.policy)
            counts = zone_table(stdout)
            reference = reference or counts
            if counts != reference:
                raise SystemExit(f"{name}: {version} printed other counts than the first run:\n{counts}\n"
                                 f"---\n{reference}")
            measured[version].append((seconds, peak))
            print(f"  {name} run {attempt + 1} {version}: {seconds:.1f} s, {peak:.0f} MB", file=sys.stderr,
                  flush=True)
    lines = landing_lines(landing)
    rows, base = [], None
    for version, runs in measured.items():
        wall, peak = statistics.median(s for s, _ in runs), statistics.median(p for _, p in runs)
        base = base or (wall, peak)
        rows.append((name, lines, version, wall, min(s for s, _ in runs), max(s for s, _ in runs), peak,
                     wall / base[0], peak / base[1]))
    return rows


def generate(checkout: Path, out: Path, customers: int, defects: str) -> Path:
    subprocess.run([sys.executable, "-m", "stedi_assets.cli", "generate", str(out), "--customers", str(customers),
                    "--defects", defects], env=environment(checkout), check=True, capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the previous format (e.g. 3936ec9)")
    parser.add_argument("--after", type=Path, default=PROJECT, help="checkout of the Iceberg lake (default: this)")
    parser.add_argument("--udacity", type=Path, default=PROJECT.parent / "shared" / "stedi-data")
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--defects", default="all")
    parser.add_argument("--policy", choices=("strict", "rubric"), default="strict")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    versions = {"before": args.before.resolve(), "after": args.after.resolve()}
    for version, checkout in versions.items():
        if not (checkout / "stedi_assets" / "cli").is_dir():
            raise SystemExit(f"--{version} {checkout} is not a checkout of this project")

    with tempfile.TemporaryDirectory(prefix="stedi-before-after-") as tmp:
        workdir = Path(tmp)
        generated = generate(versions["after"], workdir / "generated", args.customers, args.defects)
        rows = compare("udacity", args.udacity, versions, args, workdir)
        rows += compare(f"{args.customers:,} customers", generated, versions, args, workdir)

    load = os.getloadavg()
    print(f"\n`stedi run` from an empty lake, policy {args.policy}; median of {args.repeat} fresh processes per "
          f"version, alternating; {os.cpu_count()} cores, load average {load[0]:.1f} at the end")
    print(f"before: {versions['before']}   after: {versions['after']}\n")
    header = (f"{'landing':18} {'lines':>10} {'version':>7} {'wall s':>7} {'min-max s':>11} {'peak MB':>8} "
              f"{'wall x':>7} {'peak x':>7}")
    print(header)
    print("-" * len(header))
    for name, lines, version, wall, low, high, peak, wall_x, peak_x in rows:
        print(f"{name:18} {lines:>10,} {version:>7} {wall:>7.1f} {f'{low:.1f}-{high:.1f}':>11} {peak:>8.0f} "
              f"{wall_x:>7.2f} {peak_x:>7.2f}")


if __name__ == "__main__":
    main()
