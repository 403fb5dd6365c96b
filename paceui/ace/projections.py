"""Per-atom B-basis projections, grouped by species (shared/spec/active_learning.md §1).

The features of species s are the B-functions whose central element is s: rank-1 first, then the
higher ranks, each in the potential's order (all blocks with that central element).
- ``linear``: b_ik = B_k(i) (dimensionless basis values, no coefficient, no embedding);
- ``full``: d_i[k·P + p] = ∂E_i/∂c_{k,p} = w_p F_p'(ρ_p(i)) B_k(i) (eV per unit coefficient).
Structures are processed in batches of at most ``batch_atoms`` atoms, so memory stays bounded.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from paceui.ace.ctilde import ctilde_template, function_coeff_matrix
from paceui.ace.evaluator import ACEModel
from paceui.ace.neighbors import neighbor_lists
from paceui.ace.potential import ACEPotential, PotentialError
from paceui.ace.projection_kernels import projection_rows

KINDS = ("linear", "full")
DEFAULT_BATCH_ATOMS = 20000


@dataclass(frozen=True)
class Projections:
    """Projections of a set of structures: per element the rows and where each row came from."""

    kind: str
    rows: dict[str, np.ndarray]
    structure: dict[str, np.ndarray]
    atom: dict[str, np.ndarray]

    @property
    def elements(self) -> list[str]:
        return list(self.rows)

    def n_rows(self) -> dict[str, int]:
        return {e: int(r.shape[0]) for e, r in self.rows.items()}


@dataclass(frozen=True)
class ProjectionLayout:
    """Compiled B-function → m-combination map of a potential (arrays for the projection kernel)."""

    elements: tuple[str, ...]
    n_functions: dict[str, int]
    n_densities: dict[str, int]
    sp_c0: np.ndarray
    cb_rank: np.ndarray
    cb_aidx: np.ndarray
    cb_m: np.ndarray
    sp_f0: np.ndarray
    f_ptr: np.ndarray
    f_comb: np.ndarray
    f_coef: np.ndarray
    f_c: np.ndarray

    def width(self, kind: str) -> dict[str, int]:
        """Number of features per element (linear: n_s, full: n_s·P)."""
        if kind == "linear":
            return dict(self.n_functions)
        return {e: self.n_functions[e] * self.n_densities[e] for e in self.elements}


_LAYOUTS: "weakref.WeakKeyDictionary[ACEModel, ProjectionLayout]" = weakref.WeakKeyDictionary()


def as_model(model: ACEModel | ACEPotential | str | os.PathLike[str]) -> ACEModel:
    """An ACEModel of a B-basis potential (``.yaml``); a ``.yace`` has no B-functions to project on."""
    m = model if isinstance(model, ACEModel) else ACEModel(model)
    if m.bbasis is None:
        raise PotentialError(f"{m.ctilde.source}: projections need the B-basis potential (.yaml), "
                             f"a C-tilde .yace file does not hold the B-functions")
    return m


def layout(model: ACEModel) -> ProjectionLayout:
    """The projection layout of a model (computed once per model)."""
    lay = _LAYOUTS.get(model)
    if lay is None:
        lay = _build_layout(model)
        _LAYOUTS[model] = lay
    return lay


def _build_layout(model: ACEModel) -> ProjectionLayout:
    pot = model.bbasis
    assert pot is not None
    tpl = model._tpl if model._tpl is not None else ctilde_template(pot)  # the model's own: built once
    elements = tuple(model.elements)
    idx = {e: i for i, e in enumerate(elements)}
    S = len(elements)
    nmax, lmax, kmax, rmax = model.nmax, model.lmax, model.kmax, model._rmax
    nlm = (lmax + 1) * (lmax + 2) // 2
    n_comb = len(tpl.ms)
    cb_rank = np.zeros(n_comb, np.int64)
    cb_aidx = np.zeros((n_comb, rmax), np.int64)
    cb_m = np.zeros((n_comb, rmax), np.int64)
    comb_mu = np.zeros(n_comb, np.int64)
    for mu0, fac, sl in tpl.groups:
        for c in range(sl.start, sl.stop):
            ms = tpl.ms[c]
            cb_rank[c] = len(fac)
            comb_mu[c] = mu0
            if len(fac) == 1:
                mu, n, _ = fac[0]
                cb_aidx[c, 0] = mu * kmax + n - 1
                continue
            for t, ((mu, n, l), m) in enumerate(zip(fac, ms)):
                cb_aidx[c, t] = (mu * nmax + n - 1) * nlm + l * (l + 1) // 2 + abs(int(m))
                cb_m[c, t] = m
    if n_comb and np.any(np.diff(comb_mu) < 0):
        raise AssertionError("C-tilde template combinations are not grouped by central species")
    sp_c0 = np.searchsorted(comb_mu, np.arange(S + 1)).astype(np.int64)
    # functions per species: by rank, then by the neighbour species (as pyace orders them), potential order
    order: list[list[int]] = [[] for _ in range(S)]
    for fi, f in enumerate(tpl.functions):
        order[idx[f.elements[0]]].append(fi)
    for s in range(S):
        order[s].sort(key=lambda fi: (tpl.functions[fi].rank, [idx[e] for e in tpl.functions[fi].elements[1:]]))
    flat = [fi for s in range(S) for fi in order[s]]
    sp_f0 = np.cumsum([0] + [len(o) for o in order]).astype(np.int64)
    csr = tpl.matrix.tocsr()
    f_ptr, f_comb, f_coef = [0], [], []
    for fi in flat:
        lo, hi = csr.indptr[fi], csr.indptr[fi + 1]
        f_comb.extend(csr.indices[lo:hi].tolist())
        f_coef.extend(csr.data[lo:hi].tolist())
        f_ptr.append(len(f_comb))
    emb = pot.embeddings()
    ndmax = max(e.ndensity for e in emb.values())
    f_c = function_coeff_matrix([tpl.functions[fi] for fi in flat], ndmax)
    return ProjectionLayout(
        elements=elements, n_functions={e: len(order[idx[e]]) for e in elements},
        n_densities={e: emb[e].ndensity for e in elements}, sp_c0=sp_c0, cb_rank=cb_rank, cb_aidx=cb_aidx,
        cb_m=cb_m, sp_f0=sp_f0, f_ptr=np.array(f_ptr, np.int64), f_comb=np.array(f_comb, np.int64),
        f_coef=np.array(f_coef, float), f_c=np.ascontiguousarray(f_c, dtype=float))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"projection kind {kind!r} unknown, expected one of {list(KINDS)}")


def batches(structures: Sequence[Any], batch_atoms: int) -> Iterator[range]:
    """Consecutive ranges of structures with at most ``batch_atoms`` atoms each (at least one structure)."""
    start, n = 0, 0
    for k, a in enumerate(structures):
        if n and n + len(a) > batch_atoms:
            yield range(start, k)
            start, n = k, 0
        n += len(a)
    if start < len(structures):
        yield range(start, len(structures))


def batch_rows(model: ACEModel, structures: Sequence[Any], kind: str = "linear"
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Projections of a few structures in one kernel call: rows, local structure and atom index per element."""
    _check_kind(kind)
    lay = layout(model)
    species_l, offs, js, vecs = [], [0], [], []
    n0, p0 = 0, 0
    sidx, aidx = [], []
    nls = neighbor_lists(list(structures), model.cutoff)
    for k, (a, nl) in enumerate(zip(structures, nls)):
        sp = model.species_of(a.get_chemical_symbols())
        species_l.append(sp)
        offs.append(nl.offsets[1:] + p0)
        js.append(nl.j + n0)
        vecs.append(nl.vec)
        sidx.append(np.full(len(a), k, np.int64))
        aidx.append(np.arange(len(a), dtype=np.int64))
        n0 += len(a)
        p0 += len(nl)
    species = np.concatenate(species_l) if species_l else np.zeros(0, np.int64)
    offsets = np.concatenate([np.zeros(1, np.int64)] + offs[1:]).astype(np.int64)
    nbr_j = np.concatenate(js).astype(np.int64) if js else np.zeros(0, np.int64)
    vec = np.ascontiguousarray(np.concatenate(vecs) if vecs else np.zeros((0, 3)))
    widths = lay.width(kind)
    wmax = max(list(widths.values()) + [1])
    out = np.zeros((len(species), wmax))
    if len(species):
        if model.spline and len(vec):
            d2 = np.einsum("ij,ij->i", vec, vec)
            k = int(np.argmin(d2))
            if float(np.sqrt(d2[k])) < 1.0 / max(model._sp_scale.max(), 1e-300):
                raise ValueError(f"two atoms are {float(np.sqrt(d2[k])):.2e} Å apart: closer than the spline step")
        nchunk = min(len(species), 8 * numba.get_num_threads())
        projection_rows(species, offsets, nbr_j, vec, model._b_int, model._b_par, model._crad, model.inner,
                        model._e_int, model._e_par, model.spline, model._sp_tab, model._sp_scale, model.nmax,
                        model.lmax, model.kmax, model._rmax, lay.sp_c0, lay.cb_rank, lay.cb_aidx, lay.cb_m,
                        lay.sp_f0, lay.f_ptr, lay.f_comb, lay.f_coef, lay.f_c, kind == "full", nchunk, out)
    s_all = np.concatenate(sidx) if sidx else np.zeros(0, np.int64)
    a_all = np.concatenate(aidx) if aidx else np.zeros(0, np.int64)
    rows, st, at = {}, {}, {}
    for mu, el in enumerate(lay.elements):
        sel = species == mu
        if widths[el] == wmax and bool(sel.all()):  # one element of full width: the kernel output itself
            rows[el], st[el], at[el] = out, s_all, a_all
            continue
        rows[el] = out[sel, :widths[el]]
        st[el] = s_all[sel]
        at[el] = a_all[sel]
    return rows, st, at


def iter_projections(model: ACEModel, structures: Sequence[Any], kind: str = "linear",
                     batch_atoms: int = DEFAULT_BATCH_ATOMS) -> Iterator[Projections]:
    """Projections batch by batch (structure indices global), for memory-bounded passes over big data."""
    for rg in batches(structures, batch_atoms):
        rows, st, at = batch_rows(model, [structures[k] for k in rg], kind)
        yield Projections(kind=kind, rows=rows, structure={e: v + rg.start for e, v in st.items()}, atom=at)


def concat(parts: Sequence[Projections], kind: str, elements: Sequence[str],
           widths: dict[str, int]) -> Projections:
    """Join projections of several batches."""
    rows, st, at = {}, {}, {}
    for e in elements:
        rows[e] = np.concatenate([p.rows[e] for p in parts] + [np.zeros((0, widths[e]))])
        st[e] = np.concatenate([p.structure[e] for p in parts] + [np.zeros(0, np.int64)])
        at[e] = np.concatenate([p.atom[e] for p in parts] + [np.zeros(0, np.int64)])
    return Projections(kind=kind, rows=rows, structure=st, atom=at)


def compute_projections(model: ACEModel | ACEPotential | str | os.PathLike[str], structures: Sequence[Any],
                        kind: str = "linear", max_rows: int | None = None,
                        batch_atoms: int = DEFAULT_BATCH_ATOMS) -> Projections:
    """Projections of all atoms of ``structures`` (``ase.Atoms``), grouped by element.

    ``max_rows`` caps the rows kept per element (the first ones); the kernel runs on batches of at
    most ``batch_atoms`` atoms.
    """
    _check_kind(kind)
    m = as_model(model)
    lay = layout(m)
    parts = []
    kept = dict.fromkeys(lay.elements, 0)
    for p in iter_projections(m, structures, kind, batch_atoms):
        if max_rows is not None:
            p = Projections(kind=kind, rows={e: r[:max(0, max_rows - kept[e])] for e, r in p.rows.items()},
                            structure={e: v[:max(0, max_rows - kept[e])] for e, v in p.structure.items()},
                            atom={e: v[:max(0, max_rows - kept[e])] for e, v in p.atom.items()})
            for e in lay.elements:
                kept[e] += len(p.rows[e])
        parts.append(p)
        if max_rows is not None and all(v >= max_rows for v in kept.values()):
            break
    return concat(parts, kind, lay.elements, lay.width(kind))
