"""Cold start of a first fit: numba compiles the kernels on first use (then caches them on disk).

Usage: python benchmarks/bench_coldstart.py [--rounds N]
Each round runs fresh processes with an empty numba cache (NUMBA_CACHE_DIR) and an empty paceui cache, builds
a tiny Zuo Cu session and fits one iteration: once with the fit kernels compiled in child processes alongside
(paceui.ace.precompile, the default) and once without (PACEUI_PRECOMPILE=0), in alternating order; then once
with the caches warm. Prints the seconds of each phase, the load average, the kernels that took longest to
compile in the parent, and the medians (the goal: a first fit within 15 s on the idle 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import time
from numba.core import event as ev
spent, started = {}, {}
class Timer(ev.Listener):
    def on_start(self, e):
        started[id(e.data['dispatcher'])] = time.perf_counter()
    def on_end(self, e):
        d = e.data['dispatcher']
        spent[d.py_func.__qualname__] = spent.get(d.py_func.__qualname__, 0.0) + time.perf_counter() - started[id(d)]
ev.register('numba:compile', Timer())
t0 = time.perf_counter()
from paceui.session.testing import tiny_session
s = tiny_session()
t1 = time.perf_counter()
s.run(iterations=1)
t2 = time.perf_counter()
s.close()
top = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(spent.items(), key=lambda kv: -kv[1])[:4])
print(f"session {t1 - t0:5.1f} s   first iteration {t2 - t1:5.1f} s   total {t2 - t0:5.1f} s   "
      f"compiling: {top or 'none'}")
"""


def _run(env: dict[str, str]) -> tuple[str, float]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return out.stdout.strip(), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1, help="cold runs of each kind, alternating (default 1)")
    args = ap.parse_args()
    walls: dict[str, list[float]] = {"precompile": [], "serial": []}
    for r in range(args.rounds):
        order = ("precompile", "serial") if r % 2 == 0 else ("serial", "precompile")
        for kind in order:
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba"),
                       "PACEUI_CACHE_DIR": os.path.join(tmp, "pc"),
                       "PACEUI_PRECOMPILE": "1" if kind == "precompile" else "0"}
                load = os.getloadavg()[0]
                line, wall = _run(env)
                walls[kind].append(wall)
                print(f"cold {kind:10s} load {load:4.1f}  process {wall:5.1f} s  {line}", flush=True)
                if r == args.rounds - 1 and kind == order[-1]:
                    line, wall = _run(env)
                    print(f"warm (cached kernels)  process {wall:5.1f} s  {line}", flush=True)
    for kind, w in walls.items():
        print(f"median cold process wall, {kind:10s}: {statistics.median(w):5.1f} s  ({len(w)} runs)")


if __name__ == "__main__":
    main()
