"""Energy+forces speed of the paceui evaluator, side by side with pyace when its venv exists.

Usage: python benchmarks/bench_evaluator.py [--repeat 10] [--refenv /tmp/refenv]
Prints µs/atom for Cu-I_active_learning.yaml (82 functions, rc 7 Å) on a rattled 4×4×4 fcc Cu cell and
for ethanol.yaml on a periodic box of 30 molecules (270 atoms); paceui with all numba threads and with
one thread, pyace (C++, one thread) in a subprocess of the reference venv (shared/reference/REFERENCE_TOOLS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from ase import Atoms
from ase.build import bulk, molecule

ROOT = Path(__file__).resolve().parents[1]
POT = ROOT.parent / "shared" / "reference" / "potentials"

PYACE_SCRIPT = r"""
import sys, time, json, ase.io
from pyace import PyACECalculator
at = ase.io.read(sys.argv[1]); at.calc = PyACECalculator(sys.argv[2]); n = int(sys.argv[3])
at.get_forces()
best = 1e99
for k in range(n):
    at.positions[0, 0] += 1e-6 * (-1) ** k  # invalidate the cache; back to the start for even n
    t = time.perf_counter(); at.get_forces(); best = min(best, time.perf_counter() - t)
print(json.dumps({"s": best, "e": float(at.get_potential_energy())}))
"""


def structures() -> dict[str, tuple[str, Atoms]]:
    cu = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((4, 4, 4))
    cu.rattle(0.05, seed=1)
    rng = np.random.default_rng(0)
    box = Atoms(cell=np.eye(3) * 18.0, pbc=True)
    centers: list[np.ndarray] = []
    while len(centers) < 30:
        c = rng.uniform(0, 18.0, 3)
        if all(np.linalg.norm((c - d + 9.0) % 18.0 - 9.0) > 5.0 for d in centers):
            centers.append(c)
            m = molecule("CH3CH2OH")
            m.rotate(rng.uniform(0, 360), rng.normal(size=3))
            m.translate(c - m.get_center_of_mass())
            box += m
    return {"Cu-I (256 at, rc 7)": ("Cu-I_active_learning.yaml", cu),
            "ethanol (270 at, rc 4)": ("ethanol.yaml", box)}


def time_paceui(pot: str, at: Atoms, repeat: int, threads: int) -> tuple[float, float]:
    from paceui.ace.evaluator import ACEModel

    numba.set_num_threads(threads)
    model = ACEModel(POT / pot)
    res = model.evaluate(at)
    best = 1e99
    for _ in range(repeat):
        t = time.perf_counter()
        model.evaluate(at)
        best = min(best, time.perf_counter() - t)
    return best, res.energy


def time_pyace(refenv: Path, pot: str, at: Atoms, repeat: int) -> tuple[float, float] | None:
    py = refenv / "bin" / "python"
    if not py.exists():
        return None
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.extxyz"
        at.write(f)
        out = subprocess.run([str(py), "-c", PYACE_SCRIPT, str(f), str(POT / pot), str(repeat)],
                             capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if out.returncode:
            print(f"pyace failed: {out.stderr[-500:]}", file=sys.stderr)
            return None
        r = json.loads(out.stdout.strip().splitlines()[-1])
        return r["s"], r["e"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=10, help="even number of timed calls")
    ap.add_argument("--refenv", default=os.environ.get("PACEUI_REFENV", "/tmp/refenv"))
    args = ap.parse_args()
    if not POT.exists():
        sys.exit(f"reference potentials not found in {POT}")
    nthreads = numba.config.NUMBA_NUM_THREADS
    print(f"{'case':24s} {'paceui ' + str(nthreads) + 'T':>12s} {'paceui 1T':>10s} {'pyace 1T':>10s} "
          f"{'ratio':>7s} {'ratio 1T':>8s} {'|ΔE| eV':>9s}   (µs/atom, best of {args.repeat})")
    for name, (pot, at) in structures().items():
        n = len(at)
        tp, ep = time_paceui(pot, at, args.repeat, nthreads)
        t1, _ = time_paceui(pot, at, args.repeat, 1)
        numba.set_num_threads(nthreads)
        ref = time_pyace(Path(args.refenv), pot, at, args.repeat)
        us, us1 = tp / n * 1e6, t1 / n * 1e6
        if ref:
            ur = ref[0] / n * 1e6
            print(f"{name:24s} {us:12.1f} {us1:10.1f} {ur:10.1f} {us / ur:7.2f} {us1 / ur:8.2f} {abs(ep - ref[1]):9.1e}")
        else:
            print(f"{name:24s} {us:12.1f} {us1:10.1f} {'n/a':>10s}   (no reference venv at {args.refenv})")


if __name__ == "__main__":
    main()
