"""How the benchmarks measure a process: wall time, CPU time and its own peak resident memory (VmHWM)."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

# The child reports its own high-water mark (VmHWM of its address space after exec): the rusage a
# parent gets from wait4 also counts the parent's memory copied at fork time, which hides the child's. It
# reports from an exit handler: `stedi` ends its process itself once the handlers have run (cli.command_line).
CHILD = (
    "import atexit, runpy, sys\n"
    "def report():\n"
    "    hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
    "    print('VMHWM_KB', hwm, file=sys.stderr, flush=True)\n"
    "atexit.register(report)\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


# Settings a caller's shell may hold that would point a run at another lake, catalog or Dagster instance.
CLEARED = (
    "DAGSTER_HOME",
    "STEDI_LAKE",
    "STEDI_LANDING",
    "STEDI_CATALOG",
    "STEDI_DEPLOYMENT",
    "STEDI_ENGINE",
    "STEDI_POLICY",
    "PYTHONPATH",
)


def stedi_environment(pythonpath: str, **settings: str) -> dict[str, str]:
    """The environment of a measured `stedi` process: the caller's without CLEARED, `pythonpath` (the checkout
    to run first), a fixed pseudonym key (a local lake would otherwise generate one with a warning), `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return {**env, "PYTHONPATH": pythonpath, "STEDI_PSEUDONYM_KEY": "benchmark-key", **settings}


@dataclass(frozen=True)
class Measured:
    seconds: float  # wall time, process start to exit
    cpu_seconds: float  # user + system time of the process and its threads (less sensitive to a busy machine)
    peak_mb: float  # its peak resident memory
    stdout: str
    stderr: str = ""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc (Linux)."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as f:
                rss[int(entry)] = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child_pid, parent in parents.items():
            if parent == pid and child_pid not in tree:
                tree.add(child_pid)
                frontier.append(child_pid)
    return sum(rss.get(pid, 0) for pid in tree)


class TreePeak:
    """The peak of _tree_rss_kb(pid), sampled every 50 ms in a thread while the `with` block runs: for a
    process whose work runs in processes it starts (PySpark's JVM), which its own VmHWM does not count."""

    def __init__(self, pid: int) -> None:
        self.pid, self.kb = pid, 0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.kb = max(self.kb, _tree_rss_kb(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> TreePeak:
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._sampler.join()


class CpuTrace:
    """This process's CPU time (all its threads), sampled every 20 ms in a thread while the `with` block runs, so
    the CPU it spent between two wall-clock times (e.g. a Dagster step's start and end events) can be told."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (time.time(), time.process_time())
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.samples.append((time.time(), time.process_time()))
            time.sleep(0.02)

    def cpu_at(self, when: float) -> float:
        """The process's CPU seconds at wall time `when` (linear between the samples around it)."""
        import bisect

        i = bisect.bisect_left(self.samples, (when, -1.0))
        if i == 0 or i == len(self.samples):
            return self.samples[min(i, len(self.samples) - 1)][1]
        (t0, c0), (t1, c1) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c1

    def __enter__(self) -> CpuTrace:
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._sampler.join()
        self.samples.append((time.time(), time.process_time()))


def run_module(module: str, args: list[str], env: dict, tree: bool = False, python: str | None = None) -> Measured:
    """Measure a fresh process running `python -m module args` (one at a time: CPU time is the children's delta).

    `tree`: the peak memory is that of the whole process tree (sampled), for a module that starts other
    processes; their CPU time counts only if the module waits for them before it exits. `python`: the
    interpreter (another virtual environment's), this one's by default.
    """
    start, cpu = time.perf_counter(), _children_cpu()
    process = subprocess.Popen(
        [python or sys.executable, "-c", CHILD, module, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = TreePeak(process.pid)
    with peak if tree else contextlib.nullcontext():
        stdout, stderr = process.communicate()
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if process.returncode != 0:
        raise SystemExit(f"{module} {' '.join(args)} exited {process.returncode}:\n{stderr[-2000:]}")
    kb = int(next(line for line in stderr.splitlines() if line.startswith("VMHWM_KB")).split()[1])
    return Measured(seconds, cpu, max(kb, peak.kb) / 1024, stdout, stderr)
