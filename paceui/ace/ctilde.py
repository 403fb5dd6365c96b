"""C-tilde basis (ace_math.md §8) and the ``.yace`` format read by LAMMPS ``pair_style pace``.

B-functions are expanded over their m-combinations with the generalized CG coefficients; each
combination's factors are sorted by (species, n, l, m) and the pair (ms, -ms) is merged into one
representative (Re Π A is the same for both), which gives the half-basis with its factor 2.
Functions sharing the same sorted (species, n, l) factors are merged (their LS is lost).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from paceui._atomic import atomic_write_text
from paceui.ace.coupling import generalized_cg, ms_combinations
from paceui.ace.potential import RADIAL_BASES, ACEPotential, Bond, Embedding, PotentialError
from paceui.ace.yamlfmt import fmt_flow, fmt_scalar, load_yaml_file

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
    groups, ms_list = [], []
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


# ------------------------------------------------------------------------------------ .yace I/O
def ctilde_to_yace(ct: CTildePotential) -> str:
    """Serialise to the ``.yace`` text read by LAMMPS ``pair_style pace``."""
    out = [f"elements: {fmt_flow(ct.elements)}", f"E0: {fmt_flow([float(x) for x in ct.E0])}",
           f"deltaSplineBins: {fmt_scalar(float(ct.delta_spline_bins))}", "embeddings:"]
    for mu, e in sorted(ct.embeddings.items()):
        out.append(f"  {mu}: {{ndensity: {e.ndensity}, FS_parameters: {fmt_flow([float(x) for x in e.fs_parameters])}, "
                   f"npoti: {e.npoti}, rho_core_cutoff: {fmt_scalar(float(e.rho_core_cut))}, "
                   f"drho_core_cutoff: {fmt_scalar(float(e.drho_core_cut))}}}")
    out.append("bonds:")
    for (a, b), bd in sorted(ct.bonds.items()):
        out.append(f"  [{a}, {b}]: {{nradmax: {bd.nradmax}, lmax: {bd.lmax}, nradbasemax: {bd.nradbase}, "
                   f"radbasename: {bd.radbase}, radparameters: {fmt_flow([float(x) for x in bd.radparameters])}, "
                   f"radcoefficients: {fmt_flow(bd.crad.tolist())}, prehc: {fmt_scalar(float(bd.core_repulsion[0]))}, "
                   f"lambdahc: {fmt_scalar(float(bd.core_repulsion[1]))}, rcut: {fmt_scalar(float(bd.rcut))}, "
                   f"dcut: {fmt_scalar(float(bd.dcut))}, rcut_in: {fmt_scalar(float(bd.r_in))}, "
                   f"dcut_in: {fmt_scalar(float(bd.delta_in))}, inner_cutoff_type: {bd.inner_cutoff_type}}}")
    out.append("functions:")
    for mu, lst in sorted(ct.functions.items()):
        out.append(f"  {mu}:")
        for f in lst:
            nd = f.ctildes.shape[1]
            out.append(f"    - {{mu0: {f.mu0}, rank: {f.rank}, ndensity: {nd}, num_ms_combs: {len(f.ms_combs)}, "
                       f"mus: {fmt_flow(list(f.mus))}, ns: {fmt_flow(list(f.ns))}, ls: {fmt_flow(list(f.ls))}, "
                       f"ms_combs: {fmt_flow(f.ms_combs.ravel().tolist())}, "
                       f"ctildes: {fmt_flow(f.ctildes.ravel().tolist())}}}")
    return "\n".join(out) + "\n"


def save_yace(ct: CTildePotential | ACEPotential, path: str | os.PathLike[str]) -> Path:
    """Write a ``.yace`` file atomically (converting a B-basis potential first)."""
    if isinstance(ct, ACEPotential):
        ct = bbasis_to_ctilde(ct)
    return atomic_write_text(path, ctilde_to_yace(ct))


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise PotentialError(f"{where}: required field '{key}' is missing")
    return d[key]


def load_yace(path: str | os.PathLike[str]) -> CTildePotential:
    """Read a ``.yace`` (C-tilde) potential."""
    src = str(path)
    d = load_yaml_file(path)
    if not isinstance(d, dict):
        raise PotentialError(f"{src}: top level must be a mapping")
    elements = [str(e) for e in _req(d, "elements", src)]
    emb: dict[int, Embedding] = {}
    for mu, e in _req(d, "embeddings", src).items():
        w = f"{src}: embeddings[{mu}]"
        emb[int(mu)] = Embedding(ndensity=int(_req(e, "ndensity", w)), npoti=str(_req(e, "npoti", w)),
                                 fs_parameters=[float(x) for x in _req(e, "FS_parameters", w)],
                                 rho_core_cut=float(e.get("rho_core_cutoff", 100000.0)),
                                 drho_core_cut=float(e.get("drho_core_cutoff", 250.0)))
    bonds: dict[tuple[int, int], Bond] = {}
    for key, b in _req(d, "bonds", src).items():
        w = f"{src}: bonds[{key}]"
        if not (isinstance(key, tuple) and len(key) == 2):
            raise PotentialError(f"{w}: bond keys must be [i, j]")
        crad = np.asarray(_req(b, "radcoefficients", w), dtype=float)
        shape = (int(_req(b, "nradmax", w)), int(_req(b, "lmax", w)) + 1, int(_req(b, "nradbasemax", w)))
        if crad.size == 0 and 0 in shape:  # e.g. a pure pair potential: nradmax 0, radcoefficients []
            crad = np.zeros(shape)
        if crad.shape != shape:
            raise PotentialError(f"{w}: radcoefficients has shape {crad.shape}, expected {list(shape)}")
        rb = str(_req(b, "radbasename", w))
        if rb not in RADIAL_BASES:
            raise PotentialError(f"{w}: radbasename '{rb}' unknown, expected one of {list(RADIAL_BASES)}")
        bonds[(int(key[0]), int(key[1]))] = Bond(
            radbase=rb, radparameters=[float(x) for x in _req(b, "radparameters", w)],
            rcut=float(_req(b, "rcut", w)), dcut=float(_req(b, "dcut", w)), crad=crad,
            r_in=float(b.get("rcut_in", 0.0)), delta_in=float(b.get("dcut_in", 0.0)),
            inner_cutoff_type=str(b.get("inner_cutoff_type", "density")),
            core_repulsion=[float(b.get("prehc", 0.0)), float(b.get("lambdahc", 0.0))])
    functions: dict[int, list[CTildeFunction]] = {i: [] for i in range(len(elements))}
    for mu, lst in (d.get("functions") or {}).items():
        for j, f in enumerate(lst):
            w = f"{src}: functions[{mu}][{j}]"
            rank, nd, nc = int(_req(f, "rank", w)), int(_req(f, "ndensity", w)), int(_req(f, "num_ms_combs", w))
            ms = np.asarray(_req(f, "ms_combs", w), dtype=np.int64)
            cts = np.asarray(_req(f, "ctildes", w), dtype=float)
            if ms.size != nc * rank or cts.size != nc * nd:
                raise PotentialError(f"{w}: ms_combs/ctildes sizes do not match num_ms_combs={nc}, rank={rank}")
            functions[int(mu)].append(CTildeFunction(
                mu0=int(_req(f, "mu0", w)), mus=tuple(int(x) for x in _req(f, "mus", w)),
                ns=tuple(int(x) for x in _req(f, "ns", w)), ls=tuple(int(x) for x in _req(f, "ls", w)),
                ms_combs=ms.reshape(nc, rank), ctildes=cts.reshape(nc, nd)))
    types = {b.inner_cutoff_type for b in bonds.values()}
    return CTildePotential(elements=elements, embeddings=emb, bonds=bonds, functions=functions,
                           E0=np.asarray(d.get("E0", [0.0] * len(elements)), dtype=float),
                           delta_spline_bins=float(d.get("deltaSplineBins", 0.001)), source=src,
                           inner_cutoff_type=types.pop() if len(types) == 1 else "density")
