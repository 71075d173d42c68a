"""Benchmark: `stedi run` against a plain PySpark job and DuckDB scripts, on the Udacity data scaled K times.

    python benchmarks/vs_spark.py [--factors 1 10 100] [--repeat 3] [--workdir /tmp] [--max-seconds 600]

For each K the Udacity landing data is scaled with shared/tools/scale_udacity.py into a temporary folder
under --workdir (deleted afterwards), and each tool builds the rubric tables from that same data, in a
fresh process, into an empty output folder, --repeat times (the tools alternate, so that other load on
the machine hits them alike):
  stedi run              `python -m stedi_assets.cli run` with STEDI_POLICY=rubric into an empty local
                         lake: process start, validation, quarantine, checks and Iceberg commits included;
  PySpark job            peers/rubric_pyspark.py, local[*]: spark.read.json, the SQL, Parquet (JVM included);
  DuckDB script          peers/rubric_duckdb.py: read_json, the same SQL, COPY to Parquet;
  DuckDB JSON → Parquet  the same script with --landing-only: the three sources to Parquet, nothing else.
Printed per K and tool: the median wall time, CPU time (user + system of the process and what it waits
for; less sensitive to a busy machine) and peak resident memory (for PySpark its whole process tree);
for stedi run the landing readers' share of its wall time (from its progress lines). The row counts
of stedi run's lake (read with `stedi query`) and of the peers are compared with each other and with
the expected ones: the landing lines scale_udacity.py reports, and K x the Udacity rubric counts for
the trusted and curated tables. A tool whose projected time exceeds --max-seconds is skipped: the
projection is linear in the JSON size, through the tool's last two measured Ks (through the origin and
the last one after a single K, an overestimate when start-up dominates, as it does for Spark at K=1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure import Measured, run_module, stedi_environment  # benchmarks/ is on sys.path when a script of it runs
from peers.rubric_sql import DERIVED, LANDING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "stedi_assets_tests"))
from test_acceptance import EXPECTED  # noqa: E402  (the Udacity counts per policy, one place)

TABLES = (*LANDING, *DERIVED)
# `stedi run` prints "  landing.customer_landing: done (956 rows, 0.4 s)" per step on stderr (not a TTY)
LANDING_STEP = re.compile(r"^\s*landing\.\w+_landing: done \((?:[\d,]+ rows, )?([\d.]+) s\)$", re.M)


@dataclass(frozen=True)
class Tool:
    label: str
    module: str
    options: tuple[str, ...] = ()
    tree: bool = False  # it starts other processes (PySpark's JVM): sample the whole tree's memory
    tables: tuple[str, ...] = TABLES  # the tables it builds, whose counts are compared

    def arguments(self, landing: Path, out: Path) -> list[str]:
        if self.module == "stedi_assets.cli":
            return ["run", "--landing", str(landing), "--lake", str(out), *self.options]
        return [str(landing), str(out), *self.options]


def tools(spark_driver_memory: str) -> dict[str, Tool]:
    return {
        "stedi": Tool("stedi run", "stedi_assets.cli"),
        "pyspark": Tool("PySpark job", "peers.rubric_pyspark", ("--driver-memory", spark_driver_memory), tree=True),
        "duckdb": Tool("DuckDB script", "peers.rubric_duckdb"),
        "json_parquet": Tool(
            "DuckDB JSON → Parquet", "peers.rubric_duckdb", ("--landing-only",), tables=tuple(LANDING)
        ),
    }


def lake_counts(lake: Path, env: dict) -> dict[str, int]:
    """Row counts of every compared table in a `stedi run` lake, through `stedi query`."""
    sql = " UNION ALL ".join(
        f"SELECT '{table}' AS name, count(*) AS n FROM {table.rsplit('_', 1)[1]}.{table}" for table in TABLES
    )
    done = subprocess.run(
        [sys.executable, "-m", "stedi_assets.cli", "query", "--lake", str(lake), "--format", "json", sql],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"stedi query on {lake} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return {row["name"]: row["n"] for row in json.loads(done.stdout)}


def expected_counts(landing: Path, k: int) -> dict[str, int]:
    """Landing: the lines scale_udacity.py wrote; the derived tables: K x the Udacity rubric counts."""
    scaled = json.loads((landing / "_scale.json").read_text())["tables"]
    counts = {table: scaled[folder]["lines"] for table, folder in LANDING.items()}
    rubric = {name.split(".", 1)[1]: n for name, n in EXPECTED["rubric"].items()}
    return {**counts, **{table: k * rubric[table] for table in DERIVED}}


def differences(k: int, tool: Tool, got: dict[str, int], expected: dict[str, int]) -> list[str]:
    """One line per table the tool builds whose count is not the expected one."""
    return [
        f"K={k} {tool.label}: {table} has {got[table]:,} rows, expected {expected[table]:,}"
        if table in got
        else f"K={k} {tool.label}: no count for {table}"
        for table in tool.tables
        if got.get(table) != expected[table]
    ]


def landing_seconds(stderr: str) -> float:
    return sum(float(seconds) for seconds in LANDING_STEP.findall(stderr))


def projected_seconds(history: list[tuple[float, float]], megabytes: float) -> float:
    """The wall time at `megabytes` of JSON, from the (MB, seconds) medians measured before (0 without any)."""
    if not history:
        return 0.0
    (mb0, s0), (mb1, s1) = ((0.0, 0.0), *history)[-2:]
    slope = (s1 - s0) / (mb1 - mb0) if mb1 != mb0 else 0.0
    return s1 + max(0.0, slope) * (megabytes - mb1)


def measure_k(k: int, args: argparse.Namespace, chosen: dict[str, Tool], history: dict[str, list], env: dict):
    """Scale the data K times and measure every tool on it. Returns (JSON MB, {tool: runs}, notes)."""
    folder = Path(tempfile.mkdtemp(prefix=f"stedi-vs-spark-k{k}-", dir=args.workdir))
    try:
        landing = folder / "landing"
        subprocess.run(
            [sys.executable, args.scaler, args.data, str(landing), "--factor", str(k), "--force"],
            check=True,
            capture_output=True,
        )
        megabytes = json.loads((landing / "_scale.json").read_text())["bytes"] / 1e6
        expected = expected_counts(landing, k)
        runnable, notes = {}, []
        for name, tool in chosen.items():
            projected = projected_seconds(history[name], megabytes)
            if projected > args.max_seconds:
                notes.append(f"K={k} {tool.label}: skipped, about {projected:.0f} s projected")
            else:
                runnable[name] = tool
        runs: dict[str, list[Measured]] = {name: [] for name in runnable}
        wrong: list[str] = []
        for attempt in range(args.repeat):
            for name, tool in runnable.items():
                out = folder / f"{name}-{attempt}"
                run = run_module(tool.module, tool.arguments(landing, out), env, tree=tool.tree)
                runs[name].append(run)
                print(
                    f"  K={k} run {attempt + 1} {tool.label}: {run.seconds:.1f} s, CPU {run.cpu_seconds:.1f} s, "
                    f"{run.peak_mb:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
                got = lake_counts(out, env) if name == "stedi" else json.loads(run.stdout.strip().splitlines()[-1])
                wrong += differences(k, tool, got, expected)
                shutil.rmtree(out, ignore_errors=True)
        for name, measured in runs.items():
            history[name].append((megabytes, statistics.median(r.seconds for r in measured)))
        if "stedi" in runs:
            share = statistics.median(landing_seconds(r.stderr) / r.seconds for r in runs["stedi"])
            notes.append(f"K={k} stedi run: the landing readers take {share:.0%} of its wall time")
        same = f"K={k} row counts: every run of every tool gives the expected counts (K x the Udacity rubric counts)"
        notes += list(dict.fromkeys(wrong)) or [same]
        return megabytes, runs, notes
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def print_table(title: str, unit: str, digits: int, rows: list, chosen: dict[str, Tool], value) -> None:
    """One markdown table: K and JSON MB, a column per tool (the median of `value`), stedi run / PySpark."""
    labels = [tool.label for tool in chosen.values()]
    ratio = "stedi" in chosen and "pyspark" in chosen
    header = ["K (JSON MB)", *labels] + (["stedi run / PySpark"] if ratio else [])
    print(f"\n{title} ({unit}, median)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for k, megabytes, runs in rows:
        medians = {name: statistics.median(value(r) for r in runs[name]) for name in runs}
        cells = [f"{k} ({megabytes:,.0f})"]
        cells += [f"{medians[n]:,.{digits}f}" if n in medians else "skipped" for n in chosen]
        if ratio:
            both = "stedi" in medians and "pyspark" in medians
            cells.append(f"{medians['stedi'] / medians['pyspark']:.2f}" if both else "-")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "stedi-data"))
    parser.add_argument("--scaler", default=str(REPO.parent / "shared" / "tools" / "scale_udacity.py"))
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--repeat", type=int, default=3, help="runs per (K, tool); the median is shown")
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the scaled data goes (not the repo)")
    parser.add_argument("--tools", nargs="+", default=list(tools("")), choices=list(tools("")))
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="skip a tool projected to take longer")
    parser.add_argument("--spark-driver-memory", default="2g")
    args = parser.parse_args()

    chosen = {name: tool for name, tool in tools(args.spark_driver_memory).items() if name in args.tools}
    env = stedi_environment(os.pathsep.join([str(REPO), str(REPO / "benchmarks")]), STEDI_POLICY="rubric")
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    rows, notes = [], []
    history: dict[str, list] = {name: [] for name in chosen}  # (JSON MB, median seconds) per K, for --max-seconds
    for k in args.factors:
        megabytes, runs, k_notes = measure_k(k, args, chosen, history, env)
        rows.append((k, megabytes, runs))
        notes += k_notes

    load = os.getloadavg()[0]
    print(
        f"\nRubric tables from the Udacity landing data scaled K times; a fresh process per run, median of "
        f"{args.repeat}; {os.cpu_count()} cores, load average {load:.1f} at the end"
    )
    print_table("Wall time", "s", 1, rows, chosen, lambda r: r.seconds)
    print_table("CPU time", "s", 1, rows, chosen, lambda r: r.cpu_seconds)
    print_table("Peak memory", "MB", 0, rows, chosen, lambda r: r.peak_mb)
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
