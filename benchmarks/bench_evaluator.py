"""Energy+forces speed of the paceui evaluator, side by side with pyace when its venv exists.

Usage: python benchmarks/bench_evaluator.py [--repeat 10] [--rounds 3] [--refenv /tmp/refenv]
Prints µs/atom for Cu-I_active_learning.yaml (82 functions, rc 7 Å) on a rattled 4×4×4 fcc Cu cell and
for ethanol.yaml on a periodic box of 30 molecules (270 atoms); paceui with all numba threads and with
one thread, pyace (C++, one thread) in a subprocess of the reference venv (shared/reference/REFERENCE_TOOLS.md).
The three are alternated ``--rounds`` times (best of ``--repeat`` calls each); the table gives the
median of each and the median of the per-round ratios, and the load average before and after.

GFLOP/s: floating-point operations of the algorithm counted by hand per pair inside the cutoff and per
atom (an FMA is 2; index arithmetic, compares, sqrt and divisions not counted), from the potential's
shapes and the structure's pairs (:func:`flop_count`), divided by the measured time; the peak is
cores × clock × 16 (AVX2: two 4-wide FP64 FMA pipes per core, e.g. Zen 3), clock from /proc/cpuinfo.
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


def flop_count(model: object, species: np.ndarray, nl: object) -> float:
    """Floating-point operations of one energy+forces evaluation (see the module docstring).

    Per pair inside the cutoff: r and r̂ (10); radial functions from the spline table, value and
    derivative of each of the nf columns (12 each); Ŷ_lm and ∇Ŷ_lm (≈ 33 per stored harmonic); the
    A-basis (4 per (n, l, m)) and the pair force (16 per (n, l, m), 8 per (n, l), 2 per density column,
    6 at the end). Per atom: every m-combination of rank r with nd densities: prefix/suffix/adjoint
    products 3·6·r, adjoints r·nd·4, density 2·nd; the density contraction of the adjoint 4·nd per A entry;
    the rank-1 part 4·nd per function; the embedding ≈ 20 per density.
    """
    c = model.compiled  # type: ignore[attr-defined]
    S = c.b_int.shape[0]
    nlm_all = (c.lmax + 1) * (c.lmax + 2) // 2
    dmax = c.r1_ct.shape[1]
    r = np.sqrt(np.einsum("ij,ij->i", nl.vec, nl.vec))  # type: ignore[attr-defined]
    mu_i = species[nl.i]  # type: ignore[attr-defined]
    mu_j = species[nl.j]  # type: ignore[attr-defined]
    inside = r < c.b_par[mu_i, mu_j, 1]
    flops = 0.0
    for a in range(S):
        for b in range(S):
            npairs = int(np.sum(inside & (mu_i == a) & (mu_j == b)))
            nrad, lb = int(c.b_int[a, b, 1]), int(c.b_int[a, b, 2])
            nlm_b = (lb + 1) * (lb + 2) // 2
            nf = dmax + c.nmax * (c.lmax + 1) + 1
            per = 10 + 12 * nf + 33 * nlm_b + 20 * nrad * nlm_b + 8 * nrad * (lb + 1) + 2 * dmax + 6
            flops += npairs * per
    for a in range(S):
        n_at = int(np.sum(species == a))
        nd = int(c.e_int[a, 1])
        per = 20 * nd + 4 * nd * S * c.nmax * nlm_all
        per += 4 * nd * (int(c.sp_r1[a + 1]) - int(c.sp_r1[a]))
        for f in range(int(c.sp_fn[a]), int(c.sp_fn[a + 1])):
            for cc in range(int(c.fn_c0[f]), int(c.fn_c0[f + 1])):
                rk = int(c.c_rank[cc])
                per += 18 * rk + 4 * rk * nd + 2 * nd
        flops += n_at * per
    return flops


def peak_gflops(cores: int) -> tuple[float, float]:
    """(clock GHz, FP64 peak GFLOP/s of ``cores`` cores at 16 flops per cycle)."""
    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    except OSError:
        pass
    ghz = mhz / 1000 if mhz else float("nan")
    return ghz, cores * ghz * 16


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
    ap.add_argument("--rounds", type=int, default=3, help="alternations of paceui all-threads, 1 thread, pyace")
    ap.add_argument("--refenv", default=os.environ.get("PACEUI_REFENV", "/tmp/refenv"))
    args = ap.parse_args()
    if not POT.exists():
        sys.exit(f"reference potentials not found in {POT}")
    from paceui.ace.evaluator import ACEModel
    from paceui.ace.neighbors import neighbor_list

    nthreads = int(getattr(numba.config, "NUMBA_NUM_THREADS"))  # noqa: B009
    ghz, peak = peak_gflops(os.cpu_count() or 1)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; peak {peak:.1f} GFLOP/s "
          f"({os.cpu_count()} cores × {ghz:.2f} GHz × 16)")
    print(f"{'case':24s} {'paceui ' + str(nthreads) + 'T':>12s} {'paceui 1T':>10s} {'pyace 1T':>10s} "
          f"{'ratio':>7s} {'ratio 1T':>8s} {'GF/s ' + str(nthreads) + 'T':>9s} {'GF/s 1T':>8s} {'% peak':>7s} "
          f"{'|ΔE| eV':>9s}   (µs/atom: medians of {args.rounds} rounds of best of {args.repeat})")
    for name, (pot, at) in structures().items():
        n = len(at)
        model = ACEModel(POT / pot)
        nl = neighbor_list(at.get_positions(), at.get_cell().array, at.get_pbc(), model.cutoff)
        gflop = flop_count(model, model.species_of(at.get_chemical_symbols()), nl) / 1e9
        tps, t1s, trs, r_all, r_1 = [], [], [], [], []
        ep = er = float("nan")
        for _ in range(args.rounds):
            tp, ep = time_paceui(pot, at, args.repeat, nthreads)
            t1, _ = time_paceui(pot, at, args.repeat, 1)
            numba.set_num_threads(nthreads)
            ref = time_pyace(Path(args.refenv), pot, at, args.repeat)
            tps.append(tp)
            t1s.append(t1)
            if ref:
                trs.append(ref[0])
                er = ref[1]
                r_all.append(tp / ref[0])
                r_1.append(t1 / ref[0])
        us, us1 = float(np.median(tps)) / n * 1e6, float(np.median(t1s)) / n * 1e6
        gf, gf1 = gflop / float(np.median(tps)), gflop / float(np.median(t1s))
        if trs:
            ur = float(np.median(trs)) / n * 1e6
            print(f"{name:24s} {us:12.1f} {us1:10.1f} {ur:10.1f} {np.median(r_all):7.2f} {np.median(r_1):8.2f} "
                  f"{gf:9.2f} {gf1:8.2f} {100 * gf / peak:6.1f}% {abs(ep - er):9.1e}")
        else:
            print(f"{name:24s} {us:12.1f} {us1:10.1f} {'n/a':>10s} {'':7s} {'':8s} {gf:9.2f} {gf1:8.2f} "
                  f"{100 * gf / peak:6.1f}%   (no reference venv at {args.refenv})")
        print(f"{'':24s} per round µs/atom: paceui {nthreads}T {[round(t / n * 1e6, 1) for t in tps]}, "
              f"1T {[round(t / n * 1e6, 1) for t in t1s]}, pyace {[round(t / n * 1e6, 1) for t in trs]}; "
              f"{gflop * 1e3:.2f} MFLOP per evaluation")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
