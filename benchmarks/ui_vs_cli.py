"""Benchmark: materializing everything from the `dagster dev` UI against `stedi run`, on the same data.

    python benchmarks/ui_vs_cli.py [--customers 200] [--repeat 3]

The CLI figure is the whole `stedi run` command (process start, imports, every step and check). The UI
figure is what a user waits for after pressing "Materialize all": from the UI's launch mutation (the same
GraphQL the browser sends, for every asset and its checks) until the run is terminal, with `dagster dev`
already up. Each run writes a new lake; medians of --repeat runs are printed side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "stedi_assets_tests"))

from dev_server import PSEUDONYM_KEY, start_dagster_dev  # noqa: E402
from test_webserver import LAUNCH_MUTATION, RUN_QUERY, TERMINAL, _execution_params  # noqa: E402

from stedi_assets.generator import DEFECTS, generate_landing  # noqa: E402
from stedi_assets.zones import TABLES  # noqa: E402


class _Finalizers:
    """What start_dagster_dev needs of a pytest request: somewhere to register the server's shutdown."""

    def __init__(self) -> None:
        self.callbacks: list = []

    def addfinalizer(self, callback) -> None:
        self.callbacks.append(callback)


def cli_seconds(landing: Path, lake: Path, home: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEDI_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), STEDI_PSEUDONYM_KEY=PSEUDONYM_KEY)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stedi_assets.cli", "run", "--landing", str(landing), "--lake", str(lake)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def ui_seconds(server, keys) -> float:
    params = _execution_params(server, keys)
    start = time.perf_counter()
    launched = server.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    while (run := server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"])["status"] not in TERMINAL:
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    assert run["status"] == "SUCCESS", f"UI run {run_id} ended {run['status']}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stedi-ui-bench-") as tmp:
        root = Path(tmp)
        landing = root / "landing"
        generate_landing(landing, customers=args.customers, seed=0, defects=DEFECTS)
        finalizers = _Finalizers()
        (root / "dev").mkdir()
        server = start_dagster_dev(finalizers, root / "dev", landing)
        try:
            keys = [[spec.zone, spec.name] for spec in TABLES]
            cli, ui = [], []
            for i in range(args.repeat):
                cli.append(cli_seconds(landing, root / f"cli-lake-{i}", root / f"cli-home-{i}"))
                # the UI's lake is dagster dev's own (STEDI_LAKE): each run there replaces every table
                ui.append(ui_seconds(server, keys))
        finally:
            for callback in reversed(finalizers.callbacks):
                callback()
    print(f"{args.customers} customers, every defect kind, median of {args.repeat} (s)")
    for label, times in (("stedi run (whole command)", cli), ("UI: Materialize all (launch→done)", ui)):
        print(f"{label:34} {statistics.median(times):8.1f}   runs: {', '.join(f'{s:.1f}' for s in times)}")
    print(f"{'UI / CLI':34} {statistics.median(ui) / statistics.median(cli):8.2f}   (target: at most 2)")


if __name__ == "__main__":
    main()
