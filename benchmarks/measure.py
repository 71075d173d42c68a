"""How the benchmarks measure a process: wall time and its own peak resident memory (VmHWM)."""
from __future__ import annotations

import subprocess
import sys
import time

# The child reports its own high-water mark (VmHWM of its address space after exec): the rusage a
# parent gets from wait4 also counts the parent's memory copied at fork time, which hides the child's.
CHILD = ("import sys, runpy; code = 0; sys.argv = sys.argv[1:]\n"
         "try:\n    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
         "except SystemExit as stop:\n    code = stop.code or 0\n"
         "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
         "print('VMHWM_KB', hwm, file=sys.stderr)\nsys.exit(code)")


def run_module(module: str, args: list[str], env: dict, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """(seconds, peak resident memory in MB, stdout) of a fresh process running `python -m module args`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, module, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in ok_codes:
        raise SystemExit(f"{module} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    kb = int(next(l for l in done.stderr.splitlines() if l.startswith("VMHWM_KB")).split()[1])
    return seconds, kb / 1024, done.stdout
