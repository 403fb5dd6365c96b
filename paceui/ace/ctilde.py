"""C-tilde basis (docs/model.md (M18), (M19)): the form of a potential that LAMMPS ``pair_style pace`` evaluates.

B-functions are expanded over their m-combinations with the generalized CG coefficients; each
combination's factors are sorted by (species, n, l, m) and the pair (ms, -ms) is merged into one
representative (Re Π A is the same for both), which gives the half-basis with its factor 2.
Functions sharing the same sorted (species, n, l) factors are merged (their LS is lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from paceui.ace.coupling import generalized_cg, ms_combinations
from paceui.ace.potential import ACEPotential, Bond, Embedding

CG_DROP = 1e-15


@dataclass
class CTildeFunction:
    """Factors (mus, ns, ls) sorted; ms_combs [ncomb, rank]; ctildes [ncomb, ndensity]."""

    mu0: int
    mus: tuple[int, ...]
    ns: tuple[int, ...]
    ls: tuple[int, ...]
    ms_combs: np.ndarray
    ctildes: np.ndarray

    @property
    def rank(self) -> int:
        return len(self.ns)


@dataclass
class CTildePotential:
    """Evaluator-ready potential: per-species embeddings, per ordered pair bonds, C̃ functions."""

    elements: list[str]
    embeddings: dict[int, Embedding]
    bonds: dict[tuple[int, int], Bond]
    functions: dict[int, list[CTildeFunction]]
    E0: np.ndarray
    delta_spline_bins: float = 0.001
    source: str = "<memory>"
    inner_cutoff_type: str = field(default="density")

    @property
    def cutoff(self) -> float:
        return max((b.rcut for b in self.bonds.values()), default=0.0)

    def n_functions(self) -> int:
        return sum(len(v) for v in self.functions.values())


@lru_cache(maxsize=100000)
def coupling_terms(ls: tuple[int, ...], LS: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], float], ...]:
    """Non-zero (ms, generalized CG) over the full m-space of a coupling (cached per (ls, LS))."""
    out = []
    for ms in ms_combinations(ls):
        c = generalized_cg(ls, LS, ms)
        if c != 0.0:
            out.append((ms, c))
    return tuple(out)


def _canonical(factors: list[tuple[int, int, int, int]]) -> tuple[tuple[int, int, int, int], ...]:
    """Sorted factors; of ms and -ms the lexicographically larger sorted tuple represents both."""
    a = tuple(sorted(factors))
    b = tuple(sorted((mu, n, l, -m) for mu, n, l, m in factors))
    return max(a, b)


@dataclass
class CTildeTemplate:
    """The linear map from B-function coefficients to C-tilde coefficients of a fixed basis.

    ``matrix`` [n_functions, n_combs] holds the generalized CG (half-basis merged), so that
    ctildes[:, p] = matrixᵀ @ coeffs[:, p]; combs are grouped into C-tilde functions ``groups``
    (mu0, factors ((μ, n, l), ...), slice of combs) and ``ms`` [n_combs, rank] per comb.
    """

    functions: list
    groups: list[tuple[int, tuple[tuple[int, int, int], ...], slice]]
    ms: list[tuple[int, ...]]
    matrix: Any  # scipy.sparse.csr_matrix


# docs/model.md (M18)
def ctilde_template(pot: ACEPotential) -> CTildeTemplate:
    """Expand every (non-skipped) B-function over its m-combinations: the B -> C-tilde matrix."""
    from scipy.sparse import csr_matrix

    idx = {e: i for i, e in enumerate(pot.elements)}
    funcs = pot.functions()
    group_of: dict[tuple[int, tuple[tuple[int, int, int], ...]], dict[tuple[int, ...], int]] = {}
    rows, cols, vals = [], [], []
    n_comb = 0
    entries: list[tuple[tuple, tuple[int, ...], int]] = []
    for fi, f in enumerate(funcs):
        mu0 = idx[f.elements[0]]
        mus = [idx[e] for e in f.elements[1:]]
        per_ms: dict[tuple[tuple[int, int, int, int], ...], float] = {}
        for ms, c in coupling_terms(tuple(f.ls), tuple(f.LS)):
            key = _canonical([(mu, n, l, m) for mu, n, l, m in zip(mus, f.ns, f.ls, ms)])
            per_ms[key] = per_ms.get(key, 0.0) + c
        for key, c in per_ms.items():
            if abs(c) < CG_DROP:
                continue
            gkey = (mu0, tuple((mu, n, l) for mu, n, l, _ in key))
            ms = tuple(m for *_, m in key)
            g = group_of.setdefault(gkey, {})
            if ms not in g:
                g[ms] = n_comb
                entries.append((gkey, ms, n_comb))
                n_comb += 1
            rows.append(fi)
            cols.append(g[ms])
            vals.append(c)
    # renumber combs so that each group is contiguous, groups sorted like the evaluator expects
    order = sorted(group_of, key=lambda k: (k[0], len(k[1]), tuple(x[0] for x in k[1]),
                                             tuple(x[1] for x in k[1]), tuple(x[2] for x in k[1])))
    new_index: dict[int, int] = {}
    groups: list[tuple[int, tuple[tuple[int, int, int], ...], slice]] = []
    ms_list: list[tuple[int, ...]] = []
    for gkey in order:
        start = len(ms_list)
        for ms, old in group_of[gkey].items():
            new_index[old] = len(ms_list)
            ms_list.append(ms)
        groups.append((gkey[0], gkey[1], slice(start, len(ms_list))))
    cols = [new_index[c] for c in cols]
    mat = csr_matrix((vals, (rows, cols)), shape=(len(funcs), len(ms_list)))
    return CTildeTemplate(functions=funcs, groups=groups, ms=ms_list, matrix=mat)


def ctilde_from_template(pot: ACEPotential, tpl: CTildeTemplate, coeffs: np.ndarray | None = None) -> CTildePotential:
    """C-tilde potential of ``pot`` using a prepared template (coeffs [n_functions, ndensity_max])."""
    elements = pot.elements
    idx = {e: i for i, e in enumerate(elements)}
    emb = {idx[e]: v for e, v in pot.embeddings().items()}
    bonds = {(idx[a], idx[b]): v for (a, b), v in pot.bonds().items()}
    if coeffs is None:
        coeffs = function_coeff_matrix(tpl.functions, max(e.ndensity for e in emb.values()))
    ct_all = np.asarray(tpl.matrix.T @ coeffs)
    functions: dict[int, list[CTildeFunction]] = {i: [] for i in range(len(elements))}
    for mu0, fac, sl in tpl.groups:
        nd = emb[mu0].ndensity
        functions[mu0].append(CTildeFunction(
            mu0=mu0, mus=tuple(x[0] for x in fac), ns=tuple(x[1] for x in fac), ls=tuple(x[2] for x in fac),
            ms_combs=np.array(tpl.ms[sl], dtype=np.int64).reshape(sl.stop - sl.start, len(fac)),
            ctildes=ct_all[sl, :nd].copy()))
    return CTildePotential(elements=elements, embeddings=emb, bonds=bonds, functions=functions,
                           E0=np.zeros(len(elements)), delta_spline_bins=pot.delta_spline_bins,
                           source=pot.source, inner_cutoff_type=pot.inner_cutoff_type)


def function_coeff_matrix(funcs: list, ndmax: int) -> np.ndarray:
    """[n_functions, ndmax] coefficients, zero padded for elements with fewer densities."""
    out = np.zeros((len(funcs), ndmax))
    for i, f in enumerate(funcs):
        out[i, :len(f.coeffs)] = f.coeffs
    return out


def bbasis_to_ctilde(pot: ACEPotential) -> CTildePotential:
    """Convert a B-basis potential into its C-tilde form (energies are unchanged)."""
    return ctilde_from_template(pot, ctilde_template(pot))
