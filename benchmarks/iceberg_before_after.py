"""Benchmark: `stedi run` on the previous lake format against the Iceberg lake, side by side in one run.

    python benchmarks/iceberg_before_after.py --before /tmp/base [--after .] [--repeat 3]
        [--udacity ../shared/stedi-data] [--customers 20000] [--defects all] [--policy strict]

`--before` and `--after` are checkouts of the project (e.g. `git worktree add /tmp/base 3936ec9`, the last
commit of the old format); each run is a fresh `python -m stedi_assets.cli run` process with that checkout
first on PYTHONPATH, into an empty lake, over (a) the Udacity landing data and (b) generated data of the
given size (the benchmark's largest: 20,000 customers with every defect). The two versions alternate run
by run, so that whatever else loads the machine meanwhile hits both alike. Printed per dataset and
version: the median wall time, CPU time (user + system, less sensitive than wall time to other load on
the machine) and peak resident memory (the process's own VmHWM; `stedi run` is one process) of the
runs, the wall time's spread, and after/before. Every run must exit 0 and print the same
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

from measure import Measured, run_module, stedi_environment  # benchmarks/ is on sys.path when a script of it runs

PROJECT = Path(__file__).resolve().parents[1]
SOURCES = ("customer", "accelerometer", "step_trainer")


def landing_lines(root: Path) -> int:
    """Non-blank lines of the three sources' files (a README beside them is not landing data)."""
    files = [p for source in SOURCES for p in (root / source).rglob("*") if p.is_file()]
    return sum(sum(1 for line in p.open("rb") if line.strip()) for p in files)


def zone_table(stdout: str) -> str:
    """The counts block `stedi run` prints first (up to the first blank line)."""
    return stdout.strip().split("\n\n", 1)[0]


def one_run(checkout: Path, landing: Path, workdir: Path, policy: str) -> Measured:
    with tempfile.TemporaryDirectory(dir=workdir, prefix="lake-") as lake:
        return run_module(
            "stedi_assets.cli",
            ["run", "--landing", str(landing), "--lake", lake, "--policy", policy],
            stedi_environment(str(checkout)),
        )


def compare(name: str, landing: Path, versions: dict[str, Path], args, workdir: Path) -> list[tuple]:
    """Alternate the versions `args.repeat` times over `landing`; one result row per version."""
    measured: dict[str, list[Measured]] = {v: [] for v in versions}
    reference = None
    for attempt in range(args.repeat):
        for version, checkout in versions.items():
            run = one_run(checkout, landing, workdir, args.policy)
            counts = zone_table(run.stdout)
            reference = reference or counts
            if counts != reference:
                raise SystemExit(
                    f"{name}: {version} printed other counts than the first run:\n{counts}\n---\n{reference}"
                )
            measured[version].append(run)
            print(
                f"  {name} run {attempt + 1} {version}: {run.seconds:.1f} s, cpu {run.cpu_seconds:.1f} s, "
                f"{run.peak_mb:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    lines = landing_lines(landing)
    rows, base = [], None
    for version, runs in measured.items():
        wall = statistics.median(r.seconds for r in runs)
        cpu = statistics.median(r.cpu_seconds for r in runs)
        peak = statistics.median(r.peak_mb for r in runs)
        base = base or (wall, cpu, peak)
        rows.append(
            (
                name,
                lines,
                version,
                wall,
                min(r.seconds for r in runs),
                max(r.seconds for r in runs),
                cpu,
                peak,
                wall / base[0],
                cpu / base[1],
                peak / base[2],
            )
        )
    return rows


def generate(checkout: Path, out: Path, customers: int, defects: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stedi_assets.cli",
            "generate",
            str(out),
            "--customers",
            str(customers),
            "--defects",
            defects,
        ],
        env=stedi_environment(str(checkout)),
        check=True,
        capture_output=True,
    )
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
    print(
        f"\n`stedi run` from an empty lake, policy {args.policy}; median of {args.repeat} fresh processes per "
        f"version, alternating; {os.cpu_count()} cores, load average {load[0]:.1f} at the end"
    )
    print(f"before: {versions['before']}   after: {versions['after']}\n")
    header = (
        f"{'landing':18} {'lines':>10} {'version':>7} {'wall s':>7} {'min-max s':>11} {'cpu s':>7} "
        f"{'peak MB':>8} {'wall x':>7} {'cpu x':>6} {'peak x':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, lines, version, wall, low, high, cpu, peak, wall_x, cpu_x, peak_x in rows:
        print(
            f"{name:18} {lines:>10,} {version:>7} {wall:>7.1f} {f'{low:.1f}-{high:.1f}':>11} {cpu:>7.1f} "
            f"{peak:>8.0f} {wall_x:>7.2f} {cpu_x:>6.2f} {peak_x:>7.2f}"
        )


if __name__ == "__main__":
    main()
