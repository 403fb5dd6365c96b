"""The ACE evaluator: energy (eV), per-atom energies, forces (eV/Å) and virial stress (eV/Å³).

:class:`ACEModel` flattens a C-tilde potential into arrays for the numba kernel:
A-basis index of (μ, n, l, m>=0) = (μ·nmax + n−1)·nlm + l(l+1)/2 + m, rank-1 index μ·kmax + k−1.
With ``spline=True`` (default, as pyace and LAMMPS) radial functions come from cubic Hermite tables
of step ``DeltaSplineBins``; ``spline=False`` evaluates them analytically. ``fit=True`` is the fit's model:
its coefficients can be replaced (:meth:`ACEModel.load_coefficients`) and, with splines, its tables hold the
g_k columns beside R_nl and φ (the pair cache of the loss gradient needs g_k), R_nl = Σ_k crad_nlk g_k
rebuilt from them at each load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from paceui.ace import eval_kernels as EK
from paceui.ace import kernels as K
from paceui.ace.chunks import run_chunks
from paceui.ace.compiled import CompiledModel
from paceui.ace.ctilde import CTildePotential, CTildeTemplate, ctilde_from_template, ctilde_template
from paceui.ace.harmonics import n_lm
from paceui.ace.neighbors import NeighborList, neighbor_list_threads
from paceui.ace.potential import ACEPotential, PotentialError
from paceui.ace.radial import INNER_CODES, NPOTI_CODES, RADBASE_CODES
from paceui.ace.yace import load_yace


@dataclass
class EvalResult:
    """Result of one evaluation; stress (Voigt xx yy zz yz xz xy, eV/Å³) only for a 3-D periodic cell."""

    energy: float
    energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray
    stress: np.ndarray | None


def load_any(path: str | os.PathLike[str]) -> ACEPotential | CTildePotential:
    """Load a ``.yaml`` (B-basis) or ``.yace`` (C-tilde) potential by its suffix."""
    from paceui.ace.potential import PotentialError
    from paceui.ace.yaml_io import load_potential

    try:
        return load_yace(path) if str(path).endswith(".yace") else load_potential(path)
    except (TypeError, KeyError, IndexError, AttributeError) as exc:  # a YAML file of another shape
        raise PotentialError(f"{path}: not a paceui/pacemaker potential ({type(exc).__name__}: {exc})") from None


class ACEModel:
    """A compiled potential ready for fast evaluation of many structures."""

    def __init__(self, potential: ACEPotential | CTildePotential | str | os.PathLike[str],
                 spline: bool = True, fit: bool = False) -> None:
        if isinstance(potential, (str, os.PathLike)):
            potential = load_any(potential)
        self.bbasis = potential if isinstance(potential, ACEPotential) else None
        self._tpl: CTildeTemplate | None = None
        """The B → C-tilde template of a B-basis potential (reused by the projection layout), else None."""
        if isinstance(potential, ACEPotential):
            self._tpl = ctilde_template(potential)
            ct = ctilde_from_template(potential, self._tpl)
        else:
            ct = potential
        self.ctilde = ct
        self.spline = spline
        self.fit = fit
        self.elements = list(ct.elements)
        self.cutoff = ct.cutoff
        self._compile(ct)
        self.compiled = self._record()
        """The kernels' arrays (:class:`~paceui.ace.compiled.CompiledModel`); pass as ``*model.compiled``."""
        self._z2s = self._z_lookup()
        self._pairs_per_atom = 0.0
        """Pairs per atom of the last neighbour list built here: the one-pass builder's buffer guess."""

    def load_coefficients(self, r1_ct: np.ndarray, c_ct: np.ndarray, crad: np.ndarray) -> None:
        """New C-tilde coefficients (shapes of ``compiled.r1_ct`` / ``c_ct``) and radial coefficients (the
        shape of ``compiled.crad``, both orders of every bond, zero beyond a bond's nradmax, lmax, nradbase) for
        an analytic model or a fit's (``spline=False`` or ``fit=True``). ``crad`` is copied into the compiled
        array; a fit's spline table gets the R_nl columns of the new crad (:meth:`_table_rnl`)."""
        if self.spline and not self.fit:
            raise ValueError("load_coefficients needs an analytic model or a fit's (ACEModel(..., spline=False) "
                             "or fit=True)")
        c = self.compiled
        if r1_ct.shape != c.r1_ct.shape or c_ct.shape != c.c_ct.shape or crad.shape != c.crad.shape:
            raise ValueError(f"coefficient shapes {r1_ct.shape}, {c_ct.shape}, {crad.shape} do not match the model's "
                             f"{c.r1_ct.shape}, {c.c_ct.shape}, {c.crad.shape}")
        np.copyto(c.crad, crad)
        if self.spline:
            self._table_rnl()
        self._r1_ct, self._c_ct = r1_ct, c_ct
        self.compiled = c._replace(r1_ct=r1_ct, c_ct=c_ct)

    # ---------------------------------------------------------------- compilation
    def _compile(self, ct: CTildePotential) -> None:
        from ase.data import atomic_numbers

        S = len(ct.elements)
        for mu in range(S):
            if mu not in ct.embeddings:
                raise PotentialError(f"{ct.source}: no embedding for element {ct.elements[mu]}")
            if ct.embeddings[mu].npoti not in NPOTI_CODES:
                raise PotentialError(f"{ct.source}: embedding '{ct.embeddings[mu].npoti}' of "
                                     f"{ct.elements[mu]} is not supported")
        bonds = ct.bonds
        nmax = max([b.nradmax for b in bonds.values()] + [1])
        lmax = max([b.lmax for b in bonds.values()] + [0])
        kmax = max([b.nradbase for b in bonds.values()] + [1])
        self.nmax, self.lmax, self.kmax = nmax, lmax, kmax
        inner = INNER_CODES.get(ct.inner_cutoff_type)
        if inner is None:
            raise PotentialError(f"{ct.source}: inner_cutoff_type '{ct.inner_cutoff_type}' unknown")
        self.inner = inner
        b_int = np.zeros((S, S, 4), np.int64)
        b_par = np.zeros((S, S, 9))
        b_par[:, :, K.BP_RC] = 0.0  # no bond: no neighbours
        crad = np.zeros((S, S, nmax, lmax + 1, kmax))
        Z = [float(atomic_numbers.get(e, 0)) for e in ct.elements]
        for (a, b), bd in bonds.items():
            if bd.radbase not in RADBASE_CODES:
                raise PotentialError(f"{ct.source}: bond {ct.elements[a]}-{ct.elements[b]}: radial basis "
                                     f"'{bd.radbase}' is unknown, expected one of {list(RADBASE_CODES)}")
            b_int[a, b] = (RADBASE_CODES[bd.radbase], bd.nradmax, bd.lmax, bd.nradbase)
            lam = bd.radparameters[0] if bd.radparameters else 0.0
            b_par[a, b] = (lam, bd.rcut, bd.dcut, bd.r_in, bd.delta_in, bd.core_repulsion[0],
                           bd.core_repulsion[1], Z[a], Z[b])
            crad[a, b, :bd.nradmax, :bd.lmax + 1, :bd.nradbase] = bd.crad
        dmax = max(e.ndensity for e in ct.embeddings.values())
        e_int = np.zeros((S, 2), np.int64)
        e_par = np.zeros((S, 2 * dmax + 2))
        for mu, e in ct.embeddings.items():
            e_int[mu] = (NPOTI_CODES[e.npoti], e.ndensity)
            e_par[mu, :2 * e.ndensity] = e.fs_parameters
            e_par[mu, 2 * dmax:] = (e.rho_core_cut, e.drho_core_cut)
        self._b_int, self._b_par, self._crad, self._e_int, self._e_par = b_int, b_par, crad, e_int, e_par
        self._E0 = np.asarray(ct.E0, dtype=float)
        self._compile_functions(ct, S, nmax, lmax, kmax, dmax)
        self._build_splines(ct, S)

    def _compile_functions(self, ct: CTildePotential, S: int, nmax: int, lmax: int, kmax: int,
                           dmax: int) -> None:
        nlm = n_lm(lmax)
        sp_r1, sp_fn, r1_aidx, r1_ct, fn_c0 = [0], [0], [], [], [0]
        c_aidx, c_m, c_rank, c_ct = [], [], [], []
        rmax = max([f.rank for fs in ct.functions.values() for f in fs] + [1])
        for mu in range(S):
            for f in ct.functions.get(mu, []):
                nd = f.ctildes.shape[1]
                if nd != ct.embeddings[mu].ndensity:
                    raise PotentialError(f"{ct.source}: function of {ct.elements[mu]} has {nd} densities, "
                                         f"embedding has {ct.embeddings[mu].ndensity}")
                row = np.zeros(dmax)
                if f.rank == 1:
                    r1_aidx.append(f.mus[0] * kmax + f.ns[0] - 1)
                    row[:nd] = f.ctildes.sum(axis=0)
                    r1_ct.append(row)
                    continue
                for ms, cts in zip(f.ms_combs, f.ctildes):
                    ai = np.zeros(rmax, np.int64)
                    mm = np.zeros(rmax, np.int64)
                    for t, (mu_t, n, l, m) in enumerate(zip(f.mus, f.ns, f.ls, ms)):
                        ai[t] = (mu_t * nmax + n - 1) * nlm + l * (l + 1) // 2 + abs(int(m))
                        mm[t] = m
                    c_aidx.append(ai)
                    c_m.append(mm)
                    c_rank.append(f.rank)
                    r = np.zeros(dmax)
                    r[:nd] = cts
                    c_ct.append(r)
                fn_c0.append(len(c_ct))
            sp_r1.append(len(r1_ct))
            sp_fn.append(len(fn_c0) - 1)
        i64 = np.int64
        self._rmax = rmax
        self._sp_r1, self._sp_fn = np.array(sp_r1, i64), np.array(sp_fn, i64)
        self._r1_aidx = np.array(r1_aidx, i64)
        self._r1_ct = np.array(r1_ct, float).reshape(len(r1_ct), dmax)
        self._fn_c0 = np.array(fn_c0, i64)
        self._c_aidx = np.array(c_aidx, i64).reshape(len(c_aidx), rmax)
        self._c_m = np.array(c_m, i64).reshape(len(c_m), rmax)
        self._c_rank = np.array(c_rank, i64)
        self._c_ct = np.array(c_ct, float).reshape(len(c_ct), dmax)

    def _build_splines(self, ct: CTildePotential, S: int) -> None:
        nf = self.kmax + self.nmax * (self.lmax + 1) + 1
        if not self.spline:
            self._sp_tab = np.zeros((S * S, 1, 4, nf))
            self._sp_scale = np.zeros(S * S)
            self._sp_tab_e = self._sp_tab
            return
        dx = ct.delta_spline_bins
        nluts = [int(bd.rcut / dx) for bd in ct.bonds.values()]
        nl = max(nluts + [1])
        tab = np.zeros((S * S, nl + 1, 4, nf))
        scale = np.zeros(S * S)
        for (a, b), bd in ct.bonds.items():
            nlut = int(bd.rcut / dx)
            scale[a * S + b] = nlut / bd.rcut
            p = self._b_par[a, b]
            sub = np.zeros((nlut + 1, 4, nf))
            K.build_spline_table(int(self._b_int[a, b, 0]), p[0], p[1], p[2], p[3], p[4], self.inner,
                                 bd.nradbase, bd.nradmax, bd.lmax, self._crad[a, b], p[5], p[6], p[7], p[8],
                                 self.kmax, self.nmax, self.lmax + 1, nlut, sub)
            tab[a * S + b, :nlut + 1] = sub
            # rows beyond this bond's own table stay zero: r >= rcut is filtered before lookup
        self._sp_tab, self._sp_scale = tab, scale
        self._rlo = 1.0 / max(float(scale.max()), 1e-300)
        """The spline step (Å): structures with a pair closer than this are rejected."""
        if self.fit:
            self._table_rnl()
            return
        self._sp_tab_e = K.fold_rank1(tab, self.kmax, self._sp_r1, self._r1_aidx, self._r1_ct)
        self._core = bool(np.any(tab[..., -1] != 0.0))
        """Whether any bond has core repulsion (else the φ column is left out of the evaluator's table)."""
        self._vtab = EK.value_table(self._sp_tab_e, self._r1_ct.shape[1], self._core)
        self._c_sr, self._c_si = EK.factor_signs(self._c_m)

    def _table_rnl(self) -> None:
        """A fit's table: the R_nl columns' Hermite coefficients as Σ_k crad_nlk × those of g_k (docs/model.md
        (M12): they are linear in the function), so that the tabulated R_nl is the crad sum of the tabulated
        g_k that the gradient pass reads, to rounding (:func:`~paceui.ace.kernels.table_rnl`, node ranges on
        the numba threads: ~0.8 ms for Cu-I's 7001 nodes on two)."""
        tab, nr = self._sp_tab, self.nmax * (self.lmax + 1)
        ctr = K.crad_by_k(self._crad, self._b_int, nr)
        nodes = tab.shape[1]
        nchunk = 4 * numba.get_num_threads()
        run_chunks(lambda c: K.table_rnl(tab, ctr, self.kmax, nr, c * nodes // nchunk, (c + 1) * nodes // nchunk),
                   nchunk, numba.get_num_threads())

    def _record(self) -> CompiledModel:
        return CompiledModel(
            self._b_int, self._b_par, self._crad, self.inner, self._e_int, self._e_par, self._E0, self._sp_r1,
            self._r1_aidx, self._r1_ct, self._sp_fn, self._fn_c0, self._c_aidx, self._c_m, self._c_rank, self._c_ct,
            self._radial_mode(), self._sp_tab if self.fit else self._sp_tab_e, self._sp_scale, self.nmax,
            self.lmax, self.kmax, self._rmax)

    def _radial_mode(self) -> int:
        if not self.spline:
            return K.RADIAL_ANALYTIC
        return K.RADIAL_TABLE if self.fit else K.RADIAL_FOLDED

    def _z_lookup(self) -> np.ndarray | None:
        """int64[119] species id by atomic number (−1: not in the potential), or None where the elements are
        not distinct chemical symbols (then :meth:`species_of` maps the symbols)."""
        from ase.data import atomic_numbers

        zs = [atomic_numbers.get(e, 0) for e in self.elements]
        if 0 in zs or len(set(zs)) != len(zs):
            return None
        out = np.full(119, -1, dtype=np.int64)
        out[zs] = np.arange(len(zs), dtype=np.int64)
        return out

    def _species_of_atoms(self, atoms: Any) -> np.ndarray:
        """Species ids of an ``ase.Atoms`` from its atomic numbers (symbols only for the error message)."""
        z = getattr(atoms, "numbers", None)
        if self._z2s is not None and isinstance(z, np.ndarray) and z.ndim == 1 and len(z):
            if int(z.min()) >= 0 and int(z.max()) < len(self._z2s):
                sp = self._z2s[z]
                if int(sp.min()) >= 0:
                    return sp
        return self.species_of(atoms.get_chemical_symbols())

    # ---------------------------------------------------------------- evaluation
    def species_of(self, symbols: list[str] | np.ndarray) -> np.ndarray:
        idx = {e: i for i, e in enumerate(self.elements)}
        missing = sorted({s for s in symbols if s not in idx})
        if missing:
            raise ValueError(f"structure contains elements {missing} that the potential "
                             f"({', '.join(self.elements)}) does not describe")
        return np.array([idx[s] for s in symbols], dtype=np.int64)

    def evaluate(self, atoms: Any, nl: NeighborList | None = None) -> EvalResult:
        """Evaluate an ``ase.Atoms`` (neighbour list built with the potential's cutoff if not given)."""
        if len(atoms) == 0:
            raise ValueError("the structure has no atoms")
        species = self._species_of_atoms(atoms)
        pbc = np.asarray(atoms.get_pbc(), dtype=bool)
        cell = np.asarray(atoms.get_cell(), dtype=float)
        pos = atoms.positions
        if not (np.isfinite(pos).all() and np.isfinite(cell).all()):
            raise ValueError("the positions or the cell contain NaN/inf")
        vol = abs(np.linalg.det(cell)) if pbc.any() else 0.0
        if pbc.any() and vol < 1e-10:
            raise ValueError(f"the cell is periodic ({pbc.tolist()}) but has no volume: {cell.tolist()}")
        if nl is None:
            nl = neighbor_list_threads(pos, cell, pbc, self.cutoff, numba.get_num_threads(), self._pairs_per_atom)
            self._pairs_per_atom = len(nl) / len(species)
        res = self.evaluate_arrays(species, nl)
        if pbc.all():
            s = res.virial / vol
            res.stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        return res

    def evaluate_arrays(self, species: np.ndarray, nl: NeighborList) -> EvalResult:
        """Evaluate from species ids and a neighbour list (rows r_j − r_i, Å)."""
        n = len(species)
        energies = np.zeros(n)
        pairf = np.zeros((len(nl), 3))
        if self.spline and not self.fit:
            if n:
                dmin = self._spline_kernel(species, nl, energies, pairf)
                if len(nl) and float(dmin.min()) < self._rlo:
                    self._too_close(nl, ": closer than the spline step DeltaSplineBins")
        else:
            if len(nl):
                r = np.sqrt(np.einsum("ij,ij->i", nl.vec, nl.vec))
                if self.spline and float(r.min()) < self._rlo:  # a fit's table
                    self._too_close(nl, ": closer than the spline step DeltaSplineBins")
                if not float(r.min()) > 1e-8:
                    self._too_close(nl, " (coincident): no finite energy")
            if n:
                K.ace_atoms(species, nl.offsets, nl.j, nl.vec, *self.compiled, numba.get_num_threads(), energies,
                            pairf, False, *K.empty_pair_cache())
        forces, vir = K.reduce_pair_forces(n, nl.offsets, nl.j, nl.vec, pairf)
        if not (np.isfinite(energies).all() and np.isfinite(forces).all()):
            bad = np.flatnonzero(~np.isfinite(energies))
            raise ValueError(f"the energy or forces are not finite (atom(s) {bad[:5].tolist()}): atoms far closer "
                             "than the potential's inner cutoff, or huge coordinates")
        return EvalResult(energy=float(energies.sum()), energies=energies, forces=forces, virial=vir,
                          stress=None)

    def _spline_kernel(self, species: np.ndarray, nl: NeighborList, energies: np.ndarray,
                       pairf: np.ndarray) -> np.ndarray:
        """Energies and pair forces (into the arrays) by :func:`~paceui.ace.eval_kernels.eval_atom_range`
        over chunks of atoms on the numba thread count; returns each atom's shortest pair distance (Å)."""
        c = self.compiled
        n = len(species)
        dmin = np.empty(n)
        nthreads = numba.get_num_threads()
        nchunk = 1 if nthreads <= 1 else max(1, min(n // K.MIN_CHUNK_ATOMS, 4 * nthreads))
        args = (species, nl.offsets, nl.j, nl.vec, c.b_int, c.b_par, c.inner, c.e_int, c.e_par, c.E0, c.sp_fn,
                c.fn_c0, c.c_aidx, self._c_sr, self._c_si, c.c_rank, c.c_ct, self._vtab, c.sp_scale,
                self._vtab.shape[2] // 2 - 2 * c.c_ct.shape[1], self._core, c.nmax, c.lmax, c.rmax, self._rlo,
                energies, pairf, dmin)
        run_chunks(lambda k: EK.eval_atom_range(k * n // nchunk, (k + 1) * n // nchunk, *args), nchunk, nthreads)
        return dmin

    @staticmethod
    def _too_close(nl: NeighborList, what: str) -> None:
        """Raise the ValueError of the closest pair of ``nl``."""
        r = np.sqrt(np.einsum("ij,ij->i", nl.vec, nl.vec))
        k = int(np.argmin(r))
        raise ValueError(f"atoms {int(nl.i[k])} and {int(nl.j[k])} are {r[k]:.2e} Å apart{what}")
