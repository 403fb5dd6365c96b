"""Small fit problems for tests: random structures with random reference data, packed for the loss."""

from __future__ import annotations

import numpy as np

from paceui.ace.neighbors import neighbor_list
from paceui.fit.arrays import FitArrays
from tests.conftest import random_cluster


def pack(structs, elements, cutoff, e_ref, f_ref, rng) -> FitArrays:
    so, sp, no, nj, vv = [0], [], [0], [], []
    for at in structs:
        nl = neighbor_list(at.positions, at.cell.array, at.pbc, cutoff)
        base = so[-1]
        sp += [elements.index(s) for s in at.get_chemical_symbols()]
        no += list(nl.offsets[1:] + no[-1])
        nj += list(nl.j + base)
        vv.append(nl.vec)
        so.append(base + len(at))
    wf = rng.uniform(0.5, 1.5, so[-1])
    we = rng.uniform(0.5, 1.5, len(structs))
    return FitArrays(np.array(so), np.array(sp), np.array(no), np.array(nj), np.vstack(vv), np.asarray(e_ref, float),
                     np.vstack(f_ref), we / we.sum(), wf / wf.sum())


def random_problem(pot, n_struct: int = 2, n_atoms: int = 8, seed: int = 0, symbols=None) -> FitArrays:
    rng = np.random.default_rng(seed)
    els = pot.elements
    syms = symbols or els
    structs = [random_cluster([syms[k % len(syms)] for k in range(n_atoms)], seed=seed + s, density=0.06, dmin=1.9)
               for s in range(n_struct)]
    return pack(structs, els, pot.cutoff, [rng.normal() * len(a) for a in structs],
                [rng.normal(size=(len(a), 3)) for a in structs], rng)
