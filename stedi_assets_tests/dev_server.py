"""`dagster dev` on workspace.yaml for the ui-tier tests (test_webserver, test_ui_browser): started on a free
port over a landing folder and a fresh lake and DAGSTER_HOME, with GraphQL access to what the UI shows.

It runs in its own process group, is stopped with SIGINT (SIGTERM to the parent leaves the children running)
and killed if it does not stop in time, so no process outlives the tests, whether they pass or fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stedi_assets.cli.pipeline import INSTANCE_CONFIG

REPO = Path(__file__).resolve().parents[1]

LOCATION = "stedi_lakehouse"  # workspace.yaml's location_name
START_TIMEOUT = 90  # s until the code location is loaded
STOP_TIMEOUT = 30  # s for a clean SIGINT shutdown before SIGKILL
PSEUDONYM_KEY = "test-pseudonym-key-not-secret"

# What a user must find in the UI: each asset group (= zone) and its tables, the quarantine `rejected` included.
ZONE_TABLES = {
    "landing": ("customer_landing", "accelerometer_landing", "step_trainer_landing", "rejected"),
    "trusted": ("customer_trusted", "accelerometer_trusted", "step_trainer_trusted"),
    "curated": ("customer_curated", "machine_learning_curated"),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in the process group."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel directly
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _wait(predicate, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _restore_signals() -> None:
    # A shell or CI runner may start us with SIGINT/SIGTERM ignored, and children inherit that:
    # dagster dev would then ignore the SIGINT we stop it with.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(proc: subprocess.Popen) -> None:
    pgid = proc.pid  # start_new_session: pgid == pid
    if proc.poll() is None or _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        if not _wait(lambda: not _group_alive(pgid), timeout=5):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Server:
    def __init__(self, base_url: str, proc: subprocess.Popen, log: Path, lake: Path, home: Path):
        self.base_url, self.proc, self.log, self.lake, self.home = base_url, proc, log, lake, home

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        """POST a query to /graphql; returns `data`, failing the test on any GraphQL error."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
        assert not payload.get("errors"), f"GraphQL errors: {payload['errors']}"
        return payload["data"]


WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""


def _location_state(server: Server) -> tuple[str, str | None]:
    """('DOWN'|'LOADING'|'LOADED', load error message or None) of our code location."""
    try:
        data = server.graphql(WORKSPACE_QUERY, timeout=5)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, json.JSONDecodeError):
        return "DOWN", None
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        return "LOADING", None
    for entry in workspace["locationEntries"]:
        if entry["name"] == LOCATION and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            return "LOADED", loaded.get("message") if loaded.get("__typename") == "PythonError" else None
    return "LOADING", None


def start_dagster_dev(request, root: Path, landing: Path) -> Server:
    """`dagster dev` over `landing` into a new lake under `root` (strict policy), stopped when the requesting
    fixture's scope ends; returns once our code location has loaded, failing the test if it does not."""
    home, lake, log = root / "dagster_home", root / "lake", root / "dagster_dev.log"
    home.mkdir()
    lake.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_CONFIG)  # what `stedi` gives a new DAGSTER_HOME
    env = {key: value for key, value in os.environ.items() if not key.startswith(("STEDI_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        STEDI_LANDING=str(landing),
        STEDI_LAKE=str(lake),
        STEDI_PSEUDONYM_KEY=PSEUDONYM_KEY,
        STEDI_POLICY="strict",
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_restore_signals,
        )
    request.addfinalizer(lambda: _stop(proc))
    srv = Server(f"http://127.0.0.1:{port}", proc, log, lake, home)

    deadline = time.monotonic() + START_TIMEOUT
    state, error = "DOWN", None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {proc.returncode}:\n{srv.log_tail()}")
        state, error = _location_state(srv)
        if state == "LOADED":
            break
        time.sleep(0.5)
    if state != "LOADED":
        pytest.fail(
            f"dagster dev did not load location {LOCATION} within {START_TIMEOUT}s (state {state}):\n{srv.log_tail()}"
        )
    if error:
        pytest.fail(f"code location {LOCATION} failed to load: {error}")
    return srv


RUN_ERRORS_QUERY = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run {
    eventConnection(limit: 1000) { events { __typename
        ... on MessageEvent { message level stepKey } } } } } }
"""


def run_errors(server: Server, run_id: str) -> str:
    """The ERROR-level messages of a run, one per line with its step: what a failure message should show."""
    run = server.graphql(RUN_ERRORS_QUERY, {"runId": run_id})["runOrError"]
    events = (run.get("eventConnection") or {}).get("events") or []
    return "\n".join(f"[{e.get('stepKey')}] {e.get('message')}" for e in events if e.get("level") == "ERROR")
