"""pacemaker's loss and its analytic gradient (docs/loss.md).

L = (1−κ) Σ_s w_s (ΔE_s/N_s)² + κ Σ_i w_i |ΔF_i|² + λ_σ Σ_s w^σ_s Σ_c (ΔW_sc/N_s)²
    + L1 Σ|c| + L2 Σc² + w_orth·D + Σ_k w_k·S_k,
with W_s = Ω_s σ_s (eV, ASE's stress sign) on the 6 Voigt components c (xx yy zz yz xz xy) of the structures
that have a reference stress; λ_σ (``stress``, default 0) leaves pacemaker's loss unchanged.
Pass 1 evaluates energies and forces (:func:`paceui.ace.kernels.ace_atoms`; radial functions from cubic
Hermite tables of step ``deltaSplineBins``, as pyace and LAMMPS evaluate the potential, or analytic with
``spline=False``); pass 2 is :func:`paceui.fit.kernels.grad_pass`, on the same radial functions.
Gradients w.r.t. C-tilde coefficients are mapped back to the B-function coefficients through the sparse
CG matrix of the basis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from paceui.ace import kernels as K
from paceui.ace.ctilde import ctilde_from_template, ctilde_template
from paceui.ace.evaluator import ACEModel
from paceui.ace.harmonics import n_lm
from paceui.ace.potential import ACEPotential, PotentialError
from paceui.fit.arrays import FitArrays, atom_structures, slice_structures
from paceui.fit.kernels import grad_pass, structure_virials
from paceui.fit.params import ParamMap
from paceui.fit.regularizers import RadialRegularizer


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms; kappa is a number in [0, 1] (``auto`` is resolved by the caller)."""

    kappa: float = 0.0
    L1_coeffs: float = 0.0
    L2_coeffs: float = 0.0
    w0_rad: float = 0.0
    w1_rad: float = 0.0
    w2_rad: float = 0.0
    w_orth: float = 0.0
    stress: float = 0.0
    """λ_σ: weight of the stress term (paceui; 0 = pacemaker's loss)."""

    @classmethod
    def from_dict(cls, d: dict | None) -> "LossConfig":
        d = dict(d or {})
        known = {f for f in cls.__dataclass_fields__}
        ignored = {"w1_coeffs", "w2_coeffs"}  # accepted by pacemaker's template, no effect
        bad = set(d) - known - ignored
        if bad:
            raise PotentialError(f"fit.loss: unknown keys {sorted(bad)} (known: {sorted(known)})")
        if isinstance(d.get("kappa"), str):
            raise PotentialError("fit.loss.kappa 'auto' must be resolved against the data first")
        return cls(**{k: float(v) for k, v in d.items() if k in known})


VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
"""(a, b) of the Voigt components xx yy zz yz xz xy of a 3×3 tensor."""


def voigt(w: np.ndarray) -> np.ndarray:
    """[..., 3, 3] → [..., 6] Voigt components (xx yy zz yz xz xy, the upper triangle)."""
    return np.stack([w[..., a, b] for a, b in VOIGT], axis=-1)


def stress_residuals(w_pred: np.ndarray, data: FitArrays) -> np.ndarray:
    """(W_pred − W_ref)/N per structure and Voigt component (eV/atom); 0 where no reference stress."""
    d = (w_pred - np.where(np.isfinite(data.s_ref), data.s_ref, 0.0)) / data.n_atoms[:, None]
    return np.where(data.has_stress[:, None], d, 0.0)


def strain_factors(w_pred: np.ndarray, data: FitArrays, scale: np.ndarray) -> np.ndarray:
    """M_s[a, b] = scale_s · r_sc (c = (a, b), upper triangle) for the kernel's strain tangent."""
    r = stress_residuals(w_pred, data) * scale[:, None]
    M = np.zeros((data.n_struct, 3, 3))
    for c, (a, b) in enumerate(VOIGT):
        M[:, a, b] = r[:, c]
    return M


CHUNK_BYTES = 24 * 2**20
"""Most memory kept for pair quantities between the two passes of one chunk of structures (bytes)."""


@dataclass
class LossResult:
    loss: float
    grad: np.ndarray | None
    parts: dict[str, float]
    e_pred: np.ndarray
    f_pred: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    w_pred: np.ndarray | None = None  # float64[S,6] predicted W = Ω·σ (eV, Voigt)


_NO_STRAIN = np.zeros((1, 3, 3))


def _no_check() -> None:
    """The default :attr:`ACELoss.checkpoint`: go on."""


class ACELoss:
    """Loss and gradient of a fixed basis over fixed data, as a function of θ.

    ``spline`` (default): the model is the tabulated one that pyace and LAMMPS evaluate (g_k, R_nl, φ from
    cubic Hermite tables of step ``deltaSplineBins`` Å; R_nl's rebuilt from crad at each θ, ~0.8 ms a bond),
    half the cost of pass 1 on the analytic functions; the two models differ by the spline error (docs/model.md
    (M12): on the Cu-I example over Zuo Cu 5e-12 of the loss, ≤ 2e-3 eV/Å in a force next to the 0.01 Å dcut
    taper). The tables take S²·(rc/Δ)·4·(kmax + nmax(lmax+1) + 1)·8 bytes (Cu-I 5.6 MB; five elements with
    nradbase 16, nradmax 8, lmax 4 at 5.5 Å ~250 MB). ``spline=False``: the analytic model, as pacemaker's
    TensorFlow fit."""

    def __init__(self, potential: ACEPotential, loss: LossConfig, spline: bool = True) -> None:
        self.potential = potential
        self.cfg = loss
        self.pmap = ParamMap.from_potential(potential)
        self.tpl = ctilde_template(potential)
        self.model = ACEModel(ctilde_from_template(potential, self.tpl), spline=spline, fit=True)
        self.ndmax = self.model.compiled.r1_ct.shape[1]
        self._build_comb_index()
        self.radial = RadialRegularizer(potential, self.pmap)
        self._pc: tuple[np.ndarray, np.ndarray] | None = None
        self._chunk_memo: dict[int, tuple[FitArrays, list]] = {}
        self.checkpoint: Callable[[], None] | None = None
        """Called between the chunks of a loss-and-gradient evaluation (every ~0.1 s on the demo): it may
        raise to abandon the evaluation, which leaves nothing half-done (the next call starts afresh)."""

    def _build_comb_index(self) -> None:
        """Template comb index of every rank-1 entry and every combination of the kernel."""
        r1, combs = [], []
        for _mu0, fac, sl in self.tpl.groups:
            if len(fac) == 1:
                r1.append(sl.start)
            else:
                combs.extend(range(sl.start, sl.stop))
        self.r1_tidx = np.array(r1, dtype=np.int64)
        self.comb_tidx = np.array(combs, dtype=np.int64)

    # ------------------------------------------------------------------ parameters into the model
    def _load(self, theta: np.ndarray) -> np.ndarray:
        C = self.pmap.coeff_matrix(theta, self.ndmax)
        ct = np.asarray(self.tpl.matrix.T @ C)
        m = self.model
        r1_ct = np.ascontiguousarray(ct[self.r1_tidx]).reshape(len(self.r1_tidx), self.ndmax)
        c_ct = np.ascontiguousarray(ct[self.comb_tidx]).reshape(len(self.comb_tidx), self.ndmax)
        crad = np.zeros_like(m.compiled.crad)
        idx = {e: i for i, e in enumerate(m.elements)}
        for key, sl, shp in zip(self.pmap.bond_keys, self.pmap.bond_slices, self.pmap.bond_shapes):
            a, b = idx[key[0]], idx[key[1]]
            block = theta[sl].reshape(shp)
            crad[a, b, :shp[0], :shp[1], :shp[2]] = block
            crad[b, a, :shp[0], :shp[1], :shp[2]] = block
        m.load_coefficients(r1_ct, c_ct, crad)
        return C

    # ------------------------------------------------------------------ evaluation
    def predict(self, theta: np.ndarray, data: FitArrays) -> tuple[np.ndarray, np.ndarray]:
        """Per-structure energies (eV) and forces (eV/Å) for θ."""
        self._load(theta)
        return self._pass1(data)

    def predict_virials(self, theta: np.ndarray, data: FitArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies (eV), forces (eV/Å) and W = Ω·σ per structure ([S, 6] Voigt, eV) for θ."""
        self._load(theta)
        w = np.zeros((data.n_struct, 3, 3))
        e, f = self._pass1(data, None, w)
        return e, f, voigt(w)

    def _pass1(self, data: FitArrays, pc: tuple[np.ndarray, np.ndarray] | None = None,
               w_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Energies and forces; with ``pc`` the pair quantities of pass 2 are kept there, with ``w_out``
        ([S, 3, 3]) the virial W of each structure is written there."""
        m = self.model
        n = len(data.species)
        energies = np.zeros(n)
        pairf = np.zeros((len(data.nbr_j), 3))
        store = pc is not None
        pc = pc if pc is not None else K.empty_pair_cache()
        K.ace_atoms(data.species, data.nbr_off, data.nbr_j, data.vec, *m.compiled, numba.get_num_threads(),
                    energies, pairf, store, *pc)
        forces, _ = K.reduce_pair_forces(n, data.nbr_off, data.nbr_j, data.vec, pairf)
        if w_out is not None:
            structure_virials(data.struct_off, data.nbr_off, data.vec, pairf, w_out)
        e_struct = np.add.reduceat(energies, data.struct_off[:-1]) if n else np.zeros(0)
        return e_struct, forces

    def __call__(self, theta: np.ndarray, data: FitArrays, grad: bool = True) -> LossResult:
        t0 = time.perf_counter()
        C = self._load(theta)
        cfg = self.cfg
        g = np.zeros(self.pmap.size) if grad else None
        w3 = np.zeros((data.n_struct, 3, 3))
        if g is not None:
            e_pred, f_pred = self._fused(data, g, w3)
        else:
            e_pred, f_pred = self._pass1(data, None, w3)
        w_pred = voigt(w3)
        nat = data.n_atoms.astype(float)
        de = (e_pred - data.e_ref) / nat
        df = f_pred - data.f_ref
        # docs/loss.md (L1)
        e_loss = float(np.sum(data.w_e * de * de))
        f_loss = float(np.sum(data.w_f * np.einsum("ij,ij->i", df, df)))
        ds = stress_residuals(w_pred, data)
        s_loss = float(np.sum(data.w_s * np.einsum("ij,ij->i", ds, ds)))
        parts = {"e_loss": e_loss, "f_loss": f_loss, "e_loss_contrib": (1 - cfg.kappa) * e_loss,
                 "f_loss_contrib": cfg.kappa * f_loss, "s_loss": s_loss, "s_loss_contrib": cfg.stress * s_loss}
        self._regularize(theta, C, parts, g)
        loss = parts["e_loss_contrib"] + parts["f_loss_contrib"] + parts["s_loss_contrib"] + parts["reg_loss"]
        return LossResult(loss=loss, grad=g, parts=parts, e_pred=e_pred, f_pred=f_pred,
                          seconds=time.perf_counter() - t0, w_pred=w_pred)

    # ------------------------------------------------------------------ least-squares form
    def residuals(self, theta: np.ndarray, data: FitArrays) -> np.ndarray:
        """r = [√((1−κ)w_s) ΔE_s/N_s, √(κ w_i) ΔF_i, (√(λ_σ w^σ_s) ΔW_sc/N_s,) √L2 c]: Σ r² is the loss
        without L1/smoothness (the stress block only with λ_σ > 0)."""
        k = self.cfg.kappa
        if self.cfg.stress > 0:
            e_pred, f_pred, w_pred = self.predict_virials(theta, data)
            rs = [(np.sqrt(self.cfg.stress * data.w_s)[:, None] * stress_residuals(w_pred, data)).ravel()]
        else:
            e_pred, f_pred = self.predict(theta, data)
            rs = []
        re = np.sqrt((1 - k) * data.w_e) * (e_pred - data.e_ref) / data.n_atoms
        rf = (np.sqrt(k * data.w_f)[:, None] * (f_pred - data.f_ref)).ravel()
        rc = np.sqrt(self.cfg.L2_coeffs) * theta[self.pmap.func_mask()]
        return np.concatenate([re, rf, *rs, rc])

    def residuals_vjp(self, theta: np.ndarray, data: FitArrays, y: np.ndarray) -> np.ndarray:
        """Jᵀy of :meth:`residuals` by one pass of the gradient kernel (exact)."""
        self._load(theta)
        ns, na = data.n_struct, len(data.species)
        k = self.cfg.kappa
        # docs/loss.md §7
        alpha = y[:ns] * np.sqrt((1 - k) * data.w_e) / data.n_atoms
        v = np.sqrt(k * data.w_f)[:, None] * y[ns:ns + 3 * na].reshape(na, 3)
        o = ns + 3 * na
        strain = None
        if self.cfg.stress > 0:
            ys = y[o:o + 6 * ns].reshape(ns, 6) * (np.sqrt(self.cfg.stress * data.w_s)
                                                   * data.has_stress / data.n_atoms)[:, None]
            strain = np.zeros((ns, 3, 3))
            for c, (a, b) in enumerate(VOIGT):
                strain[:, a, b] = ys[:, c]
            o += 6 * ns
        g = np.zeros(self.pmap.size)
        self._pass2(data, v, alpha, 1.0, g, strain)
        g[self.pmap.func_mask()] += np.sqrt(self.cfg.L2_coeffs) * y[o:]
        return g

    def _fused(self, data: FitArrays, g: np.ndarray, w_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both passes, chunk by chunk of whole structures (a structure's residuals need only its own
        forces): pass 1 keeps each pair's radial basis and harmonics, pass 2 reads them back instead of
        recomputing them. The kept data is bounded by :data:`CHUNK_BYTES`. Adds ∂(loss terms)/∂θ to g and
        writes each structure's virial W ([S, 3, 3]) to ``w_out``."""
        cfg = self.cfg
        e_pred, f_pred = np.empty(data.n_struct), np.empty((len(data.species), 3))
        acc = self._grad_acc(len(data.species))
        check = self.checkpoint or _no_check
        for s0, s1, a0, a1, sub, atom_struct in self._chunks(data):
            check()
            e, f = self._pass1(sub, self._pair_cache(len(sub.nbr_j)), w_out[s0:s1])
            e_pred[s0:s1], f_pred[a0:a1] = e, f
            check()
            # docs/loss.md (L7) v and (L6) α
            v = 2.0 * sub.w_f[:, None] * (f - sub.f_ref)
            alpha = 2.0 * (1.0 - cfg.kappa) * sub.w_e * (e - sub.e_ref) / sub.n_atoms.astype(float) ** 2
            strain = None
            if cfg.stress > 0 and np.any(sub.w_s * sub.has_stress > 0):
                nat = sub.n_atoms.astype(float)
                strain = strain_factors(voigt(w_out[s0:s1]), sub, 2.0 * cfg.stress * sub.w_s / nat)
            self._grad_kernel(sub, v, alpha, cfg.kappa, acc, self._pc, atom_struct, strain)
        self._grad_finish(acc, g)
        return e_pred, f_pred

    def _chunks(self, data: FitArrays) -> list[tuple[int, int, int, int, FitArrays, np.ndarray]]:
        """Runs of whole structures with at most as many pairs as the pair cache holds, with the structure of
        each of their atoms (cached per data)."""
        key = id(data)
        hit = self._chunk_memo.get(key)
        if hit is not None and hit[0] is data:
            return hit[1]
        m = self.model
        # docs/loss.md (L17)
        per_pair = 8 * (2 * m.kmax + 2) + 16 * 4 * n_lm(m.lmax)
        budget = max(1, CHUNK_BYTES // per_pair)
        so, no = data.struct_off, data.nbr_off
        out, s0 = [], 0
        while s0 < data.n_struct:
            s1 = s0 + 1
            while s1 < data.n_struct and no[so[s1 + 1]] - no[so[s0]] <= budget:
                s1 += 1
            sub = slice_structures(data, s0, s1)
            out.append((s0, s1, int(so[s0]), int(so[s1]), sub, atom_structures(sub)))
            s0 = s1
        self._chunk_memo = {key: (data, out)}
        return out

    def _pair_cache(self, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        nlm = n_lm(m.lmax)
        if self._pc is None or len(self._pc[0]) < n_pairs:
            self._pc = (np.empty((n_pairs, 2 * m.kmax + 2)), np.empty((n_pairs, 4, nlm), np.complex128))
        return self._pc

    def _pass2(self, data: FitArrays, v: np.ndarray, alpha: np.ndarray, kappa: float, g: np.ndarray,
               strain: np.ndarray | None = None) -> None:
        """Add ∂/∂θ Σ_i (α_s E_i − κ Ė_i) (Ė along v) to g (pair quantities recomputed); with ``strain``
        ([S, 3, 3]) the tangent also carries −M_s r_ij and κ multiplies v (see :func:`grad_pass`)."""
        acc = self._grad_acc(len(data.species))
        self._grad_kernel(data, v, alpha, kappa, acc, None, None, strain)
        self._grad_finish(acc, g)

    def _grad_acc(self, n_atoms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nchunk = max(1, min(n_atoms, 4 * numba.get_num_threads()))
        c = self.model.compiled
        return (np.zeros((nchunk,) + c.r1_ct.shape), np.zeros((nchunk,) + c.c_ct.shape),
                np.zeros((nchunk,) + c.crad.shape))

    def _grad_kernel(self, data: FitArrays, v: np.ndarray, alpha: np.ndarray, kappa: float,
                     acc: tuple[np.ndarray, np.ndarray, np.ndarray],
                     pc: tuple[np.ndarray, np.ndarray] | None, atom_struct: np.ndarray | None = None,
                     strain: np.ndarray | None = None) -> None:
        nchunk = max(1, min(len(data.species), len(acc[0])))
        cached = pc is not None
        pc = pc if pc is not None else K.empty_pair_cache()
        atom_struct = atom_structures(data) if atom_struct is None else atom_struct
        c = self.model.compiled
        grad_pass(atom_struct, data.species, data.nbr_off, data.nbr_j, data.vec, v, alpha, kappa,
                  c.b_int, c.b_par, c.crad, c.inner, c.e_int, c.e_par, c.sp_r1, c.r1_aidx, c.r1_ct,
                  c.sp_fn, c.fn_c0, c.c_aidx, c.c_m, c.c_rank, c.c_ct, c.nmax, c.lmax, c.kmax, c.rmax,
                  nchunk, *acc, cached, *pc, c.radial, c.sp_tab, c.sp_scale, strain is not None,
                  _NO_STRAIN if strain is None else np.ascontiguousarray(strain))

    def _grad_finish(self, acc: tuple[np.ndarray, np.ndarray, np.ndarray], g: np.ndarray) -> None:
        """Map the kernel's C-tilde and crad accumulators onto θ and add them to g."""
        g_r1, g_comb, g_crad = acc
        m = self.model
        g_ct = np.zeros((self.tpl.matrix.shape[1], self.ndmax))
        g_ct[self.r1_tidx] = g_r1.sum(axis=0)
        g_ct[self.comb_tidx] = g_comb.sum(axis=0)
        # docs/loss.md (L4)
        gC = np.asarray(self.tpl.matrix @ g_ct)
        for i, (sl, nd) in enumerate(zip(self.pmap.func_slices, self.pmap.func_nd)):
            g[sl] += gC[i, :nd]
        gc = g_crad.sum(axis=0)
        idx = {e: i for i, e in enumerate(m.elements)}
        for key, sl, shp in zip(self.pmap.bond_keys, self.pmap.bond_slices, self.pmap.bond_shapes):
            a, b = idx[key[0]], idx[key[1]]
            blk = gc[a, b, :shp[0], :shp[1], :shp[2]]
            if a != b:
                blk = blk + gc[b, a, :shp[0], :shp[1], :shp[2]]
            g[sl] += blk.ravel()

    def _regularize(self, theta: np.ndarray, C: np.ndarray, parts: dict[str, float], g: np.ndarray | None) -> None:
        cfg = self.cfg
        fm = self.pmap.func_mask()
        c = theta[fm]
        parts["l1_reg_contrib"] = cfg.L1_coeffs * float(np.abs(c).sum())
        parts["l2_reg_contrib"] = cfg.L2_coeffs * float(np.dot(c, c))
        if g is not None:
            # docs/loss.md (L1): L1 and L2 terms
            sgn = np.where(c == 0.0, 1.0, np.sign(c))  # pacemaker nudges exact zeros to +1e-32
            g[fm] += cfg.L1_coeffs * sgn + 2.0 * cfg.L2_coeffs * c
        extra = self.radial(theta, cfg, g)
        parts.update(extra)
        parts["reg_loss"] = (parts["l1_reg_contrib"] + parts["l2_reg_contrib"] + extra["smooth_orth"]
                             + extra["smooth_w1"] + extra["smooth_w2"] + extra["smooth_w3"])
