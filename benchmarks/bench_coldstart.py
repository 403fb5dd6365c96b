"""Cold start of a first fit: numba compiles the kernels on first use (then caches them on disk).

Usage: python benchmarks/bench_coldstart.py
Runs a fresh process with an empty numba cache (NUMBA_CACHE_DIR) and an empty paceui cache, builds a
tiny Zuo Cu session and fits one iteration; then the same again with the caches now warm. Prints the
seconds of each phase and the kernels that took longest to compile (the goal: a first fit within ~20 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

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
print(f"session {t1 - t0:5.1f} s   first iteration {t2 - t1:5.1f} s   total {t2 - t0:5.1f} s   compiling: {top or 'none'}")
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba"), "PACEUI_CACHE_DIR": os.path.join(tmp, "pc")}
        for label in ("cold (empty caches)", "warm (cached kernels)"):
            out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-2000:])
            print(f"{label:22s} {out.stdout.strip()}")


if __name__ == "__main__":
    main()
