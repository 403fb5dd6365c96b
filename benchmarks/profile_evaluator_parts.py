"""Where one energy+forces call spends its time: neighbour list, energy/force kernel, force reduction, whole call.

Usage: python benchmarks/profile_evaluator_parts.py
µs/atom, best of 10 calls each, on one and two numba threads, for the structures of bench_evaluator.py: the
evaluator's own path (the threaded one-pass neighbour list, :mod:`paceui.ace.eval_kernels`), and for comparison
the general kernel the fit uses (``ace_atoms``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_evaluator import POT, structures  # noqa: E402

from paceui.ace import kernels as K  # noqa: E402
from paceui.ace.evaluator import ACEModel  # noqa: E402
from paceui.ace.neighbors import neighbor_list, neighbor_list_threads  # noqa: E402


def best(f: Callable[[], object], n: int, k: int = 10) -> float:
    b = 1e99
    for _ in range(k):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b / n * 1e6


def profile(name: str, pot: str, at: object, th: int) -> None:
    m = ACEModel(POT / pot)
    sp = m.species_of(at.get_chemical_symbols())  # type: ignore[attr-defined]
    pos, cell, pbc = at.get_positions(), at.get_cell().array, at.get_pbc()  # type: ignore[attr-defined]
    numba.set_num_threads(th)
    m.evaluate(at)  # sets the one-pass builder's pairs-per-atom guess
    ppa = m._pairs_per_atom
    nl = neighbor_list_threads(pos, cell, pbc, m.cutoff, th, ppa)
    n = len(sp)
    e = np.zeros(n)
    pf = np.zeros((len(nl), 3))
    t_nl0 = best(lambda: neighbor_list(pos, cell, pbc, m.cutoff), n)
    t_nl = best(lambda: neighbor_list_threads(pos, cell, pbc, m.cutoff, th, ppa), n)
    gen = best(lambda: K.ace_atoms(sp, nl.offsets, nl.j, nl.vec, *m.compiled, th, e, pf, False,
                                   *K.empty_pair_cache()), n)
    kern = best(lambda: m._spline_kernel(sp, nl, e, pf), n)
    red = best(lambda: K.reduce_pair_forces(n, nl.offsets, nl.j, nl.vec, pf), n)
    tot = best(lambda: m.evaluate(at), n)
    print(f"{name} {th}T: neighbour list {t_nl:.1f} (serial two-pass {t_nl0:.1f}), kernel {kern:.1f} (general "
          f"{gen:.1f}), reduce {red:.1f}, evaluate {tot:.1f} µs/atom; {len(nl) / n:.0f} pairs/atom")


def main() -> None:
    for name, (pot, at) in structures().items():
        for th in (1, 2):
            profile(name, pot, at, th)


if __name__ == "__main__":
    main()
