"""Benchmark: the landing issue's speed and memory targets, each beside its peer, measured in one run.

    python benchmarks/targets.py [--repeat 3] [--workdir /tmp] [--spark-driver-memory 6g]
                                 [--no-spark-engine] [--with-k1000 [--k1000-peer]] [--stedi-python PATH]

The Udacity landing data is scaled with shared/tools/scale_udacity.py (K=1, K=100 and, with --with-k1000,
K=1000: about 11 GB) into a temporary folder under --workdir, deleted afterwards. Every stedi figure is a
fresh `python -m stedi_assets.cli run` process with STEDI_POLICY=rubric, process start included; the peer
of each is the plain PySpark job of benchmarks/peers (spark.read.json, the rubric SQL, Parquet) on the same
data. Runs alternate between the tools, --repeat times, and the median is printed. Rows:
  Dagster alone        the project's asset graph with do-nothing bodies (dagster_floor.py --noop): what no
                       change to the pipeline can remove while it runs as Dagster assets;
  K=1                  `stedi run` into an empty lake;
  K=100                `stedi run` into an empty lake, with its peak resident memory;
  K=100 + 1 %          that lake again after one new landing file holding 1 % more readings (K=1's readings
                       of copy 0's people, moved later in time): the increment. The peer has no increment:
                       it builds everything again from the grown landing data;
  K=1000               as K=100 (only with --with-k1000; its peer only with --k1000-peer);
  Spark engine, K=100  every table on STEDI_ENGINE=spark (engines.py's child): the CPU the Dagster process
                       spent in the landing steps, as a share of their wall time (not with --no-spark-engine).
--stedi-python runs stedi's rows (and the Dagster floor) with another interpreter: a virtual environment with
the plain install of the README (`pip install -c requirements.lock -e .`), as users run it. This one needs the
test extra for the PySpark peer and the Spark engine, and the test extra brings pandas, which pyarrow imports
whenever it is installed (0.15 s of every stedi process; nothing of stedi uses pandas).
Every stedi lake's row counts are read back with `stedi query` and compared with the expected ones (the
landing lines scale_udacity.py reports, K x the Udacity rubric counts for the derived tables); the +1 %
lake must hold exactly the new file's lines more in accelerometer_landing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from measure import Measured, run_module, stedi_environment  # benchmarks/ is on sys.path when a script of it runs
from vs_spark import differences, expected_counts, lake_counts, tools

REPO = Path(__file__).resolve().parents[1]
NEW_FILE = "accelerometer-zz-one-percent-more.json"  # sorts after the scaled files


@dataclass
class Row:
    label: str
    limit: str  # the target, in words
    seconds: float | None = None  # the limit on stedi's wall time
    megabytes: float | None = None  # the limit on its peak memory
    stedi: list[Measured] = field(default_factory=list)
    peer: list[Measured] = field(default_factory=list)
    share: float | None = None  # the Spark row's figure, instead of stedi/peer runs

    def cells(self) -> list[str]:
        def median(runs: list[Measured], what: str) -> float:
            return statistics.median(getattr(r, what) for r in runs)

        if self.share is not None:
            return [
                self.label,
                self.limit,
                f"{self.share:.0%} of the landing steps' wall time",
                "-",
                "-",
                _met(self.share <= 0.10),
            ]
        if not self.stedi:
            return [self.label, self.limit, "not run", "-", "-", "-"]
        wall, peak = median(self.stedi, "seconds"), median(self.stedi, "peak_mb")
        ours = f"{wall:.1f} s, {peak:,.0f} MB"
        theirs = f"{median(self.peer, 'seconds'):.1f} s, {median(self.peer, 'peak_mb'):,.0f} MB" if self.peer else "-"
        ratio = f"{wall / median(self.peer, 'seconds'):.2f}" if self.peer else "-"
        if self.seconds is None:
            return [self.label, self.limit, ours, theirs, ratio, "-"]
        met = wall <= self.seconds and (self.megabytes is None or peak <= self.megabytes)
        return [self.label, self.limit, ours, theirs, ratio, _met(met)]


def _met(yes: bool) -> str:
    return "yes" if yes else "**no**"


def scale(args: argparse.Namespace, k: int, into: Path) -> Path:
    landing = into / f"k{k}"
    command = [sys.executable, args.scaler, args.data, str(landing), "--factor", str(k), "--force"]
    subprocess.run(command, check=True, capture_output=True)
    return landing


def one_percent_more(k1: Path, k: int, landing: Path) -> int:
    """Write K=1's accelerometer readings as one new file of `landing` (K copies), every timestamp moved past
    all K copies' (so they are new readings, of copy 0's people). Returns how many it wrote. (The Udacity
    accelerometer lines are all valid readings; a line that is not a JSON object would be left out.)"""
    shift = k * json.loads((landing / "_scale.json").read_text())["shift_ms"]
    readings = 0
    with (landing / "accelerometer" / "landing" / NEW_FILE).open("w", encoding="utf-8") as out:
        for path in sorted((k1 / "accelerometer" / "landing").glob("*.json")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    for key in ("timestamp", "timeStamp"):
                        if type(record.get(key)) is int:
                            record[key] += shift
                    out.write(json.dumps(record) + "\n")
                    readings += 1
    return readings


def check_counts(k: int, lake: Path, landing: Path, env: dict, more: int = 0) -> list[str]:
    expected = expected_counts(landing, k)
    got = lake_counts(lake, env)
    if more:  # only the landing table's count is known exactly: the new readings' trusted rows are not K-fold
        return (
            []
            if got["accelerometer_landing"] == expected["accelerometer_landing"] + more
            else [
                f"K={k} + 1 %: accelerometer_landing has {got['accelerometer_landing']:,} rows, expected "
                f"{expected['accelerometer_landing'] + more:,}"
            ]
        )
    return differences(k, tools("")["stedi"], got, expected)


def spark_share(landing: Path, lake: Path, driver_memory: str, env: dict) -> float:
    """The Dagster process's CPU in the landing steps over their wall time, on the Spark engine (engines.py)."""
    from engines import SQL_TABLES

    command = [sys.executable, str(REPO / "benchmarks" / "engines.py"), "--child", "--engine", "spark"]
    command += ["--landing", str(landing), "--lake", str(lake), "--policy", "rubric"]
    done = subprocess.run([*command, "--spark-driver-memory", driver_memory], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the Spark engine run failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    landing_steps = [step for step in report["steps"] if step not in SQL_TABLES]
    return sum(report["step_cpu"][s] for s in landing_steps) / sum(report["steps"][s] for s in landing_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "stedi-data"))
    parser.add_argument("--scaler", default=str(REPO.parent / "shared" / "tools" / "scale_udacity.py"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the scaled data goes (not the repo)")
    parser.add_argument("--spark-driver-memory", default="6g", help="for the PySpark peer and the Spark engine")
    parser.add_argument("--no-spark-engine", action="store_true", help="skip the Spark engine row (4 min)")
    parser.add_argument("--with-k1000", action="store_true", help="also K=1000: 11 GB of data, 5 min")
    parser.add_argument("--k1000-peer", action="store_true", help="also the PySpark job at K=1000 (long)")
    parser.add_argument("--stedi-python", help="the interpreter of stedi's runs (default: this one)")
    args = parser.parse_args()

    python = args.stedi_python
    here = str(REPO / "benchmarks")
    env = stedi_environment(os.pathsep.join([str(REPO), here]), STEDI_POLICY="rubric")
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    stedi, pyspark = tools(args.spark_driver_memory)["stedi"], tools(args.spark_driver_memory)["pyspark"]
    rows = {
        "floor": Row("Dagster alone: the graph, bodies doing nothing", "-"),
        "k1": Row("K=1, whole `stedi run`", "≤ 5 s", seconds=5),
        "k100": Row("K=100 from an empty lake", "≤ 12 s, ≤ 1.5 GB", seconds=12, megabytes=1500),
        "plus": Row("K=100 lake + one new file of 1 % more readings", "≤ 3 s", seconds=3),
        "k1000": Row("K=1000 from an empty lake", "≤ 120 s, ≤ 2 GB", seconds=120, megabytes=2000),
        "spark": Row("Spark engine, K=100: Dagster process CPU in the landing steps", "≤ 10 %"),
    }
    notes: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="stedi-targets-", dir=args.workdir))
    try:
        k1, k100 = scale(args, 1, folder), scale(args, 100, folder)
        new_file = k100 / "accelerometer" / "landing" / NEW_FILE

        def lake(name: str) -> Path:
            path = folder / name
            shutil.rmtree(path, ignore_errors=True)
            return path

        for attempt in range(args.repeat):
            rows["floor"].stedi.append(run_module("dagster_floor", ["--noop"], env, python=python))
            for k, landing, row in ((1, k1, rows["k1"]), (100, k100, rows["k100"])):
                out = lake(f"stedi-k{k}")
                row.stedi.append(run_module(stedi.module, stedi.arguments(landing, out), env, python=python))
                notes += check_counts(k, out, landing, env)
                row.peer.append(run_module(pyspark.module, pyspark.arguments(landing, lake("peer")), env, tree=True))
            more = one_percent_more(k1, 100, k100)
            out = folder / "stedi-k100"  # the lake just made, now given the new file
            rows["plus"].stedi.append(run_module(stedi.module, stedi.arguments(k100, out), env, python=python))
            notes += check_counts(100, out, k100, env, more)
            rows["plus"].peer.append(run_module(pyspark.module, pyspark.arguments(k100, lake("peer")), env, tree=True))
            new_file.unlink()
            print(f"  run {attempt + 1} of {args.repeat} done", file=sys.stderr, flush=True)
        if not args.no_spark_engine:
            rows["spark"].share = spark_share(k100, lake("spark"), args.spark_driver_memory, env)
        shutil.rmtree(k100)
        if args.with_k1000:
            k1000 = scale(args, 1000, folder)
            out = lake("stedi-k1000")
            rows["k1000"].stedi.append(run_module(stedi.module, stedi.arguments(k1000, out), env, python=python))
            notes += check_counts(1000, out, k1000, env)
            if args.k1000_peer:
                rows["k1000"].peer.append(
                    run_module(pyspark.module, pyspark.arguments(k1000, lake("peer")), env, tree=True)
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(
        f"\nThe landing issue's targets: median of {args.repeat} fresh processes per figure (K=1000 and the Spark "
        f"engine: one); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; stedi run by "
        f"{python or sys.executable}\n"
    )
    header = ["what", "target", "stedi run: wall, peak", "PySpark job: wall, peak", "stedi / PySpark", "met"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows.values():
        print("| " + " | ".join(row.cells()) + " |")
    print()
    print("\n".join(notes) or "Row counts: every stedi lake holds the expected counts.")


if __name__ == "__main__":
    main()
