"""How the benchmarks measure a process: wall time, CPU time and its own peak resident memory (VmHWM)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from dataclasses import dataclass

# The child reports its own high-water mark (VmHWM of its address space after exec): the rusage a
# parent gets from wait4 also counts the parent's memory copied at fork time, which hides the child's.
CHILD = (
    "import sys, runpy; code = 0; sys.argv = sys.argv[1:]\n"
    "try:\n    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
    "except SystemExit as stop:\n    code = stop.code or 0\n"
    "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
    "print('VMHWM_KB', hwm, file=sys.stderr)\nsys.exit(code)"
)


@dataclass(frozen=True)
class Measured:
    seconds: float  # wall time, process start to exit
    cpu_seconds: float  # user + system time of the process and its threads (less sensitive to a busy machine)
    peak_mb: float  # its peak resident memory
    stdout: str


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_module(module: str, args: list[str], env: dict) -> Measured:
    """Measure a fresh process running `python -m module args` (one at a time: CPU time is the children's delta)."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-c", CHILD, module, *args], env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{module} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    kb = int(next(line for line in done.stderr.splitlines() if line.startswith("VMHWM_KB")).split()[1])
    return Measured(seconds, cpu, kb / 1024, done.stdout)
