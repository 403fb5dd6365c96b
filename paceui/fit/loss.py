"""pacemaker's loss and its analytic gradient (ace_math.md §11, gradients.md).

L = (1−κ) Σ_s w_s (ΔE_s/N_s)² + κ Σ_i w_i |ΔF_i|² + L1 Σ|c| + L2 Σc² + w_orth·D + Σ_k w_k·S_k.
Pass 1 evaluates energies and forces (the evaluator kernel, analytic radial functions); pass 2 is
:func:`paceui.fit.kernels.grad_pass`. Gradients w.r.t. C-tilde coefficients are mapped back to the
B-function coefficients through the sparse CG matrix of the basis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numba
import numpy as np

from paceui.ace import kernels as K
from paceui.ace.ctilde import ctilde_from_template, ctilde_template
from paceui.ace.evaluator import ACEModel
from paceui.ace.potential import ACEPotential, PotentialError
from paceui.fit.kernels import grad_pass
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


@dataclass
class FitArrays:
    """One set of structures (train or test), packed: every atom and pair of every structure."""

    struct_off: np.ndarray  # int64[S+1] atom offsets
    species: np.ndarray     # int64[N]
    nbr_off: np.ndarray     # int64[N+1]
    nbr_j: np.ndarray       # int64[M] global atom index
    vec: np.ndarray         # float64[M,3] Å
    e_ref: np.ndarray       # float64[S] eV (energy_corrected)
    f_ref: np.ndarray       # float64[N,3] eV/Å
    w_e: np.ndarray         # float64[S]
    w_f: np.ndarray         # float64[N]

    @property
    def n_struct(self) -> int:
        return len(self.struct_off) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        return np.diff(self.struct_off)


@dataclass
class LossResult:
    loss: float
    grad: np.ndarray | None
    parts: dict[str, float]
    e_pred: np.ndarray
    f_pred: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class ACELoss:
    """Loss and gradient of a fixed basis over fixed data, as a function of θ."""

    def __init__(self, potential: ACEPotential, loss: LossConfig) -> None:
        self.potential = potential
        self.cfg = loss
        self.pmap = ParamMap.from_potential(potential)
        self.tpl = ctilde_template(potential)
        self.model = ACEModel(ctilde_from_template(potential, self.tpl), spline=False)
        self.ndmax = self.model._r1_ct.shape[1]
        self._build_comb_index()
        self.radial = RadialRegularizer(potential, self.pmap)

    def _build_comb_index(self) -> None:
        """Template comb index of every rank-1 entry and every combination of the kernel."""
        r1, combs = [], []
        for mu0, fac, sl in self.tpl.groups:
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
        m._r1_ct = np.ascontiguousarray(ct[self.r1_tidx]).reshape(len(self.r1_tidx), self.ndmax)
        m._c_ct = np.ascontiguousarray(ct[self.comb_tidx]).reshape(len(self.comb_tidx), self.ndmax)
        crad = m._crad
        crad[:] = 0.0
        S = len(m.elements)
        idx = {e: i for i, e in enumerate(m.elements)}
        for key, sl, shp in zip(self.pmap.bond_keys, self.pmap.bond_slices, self.pmap.bond_shapes):
            a, b = idx[key[0]], idx[key[1]]
            block = theta[sl].reshape(shp)
            crad[a, b, :shp[0], :shp[1], :shp[2]] = block
            crad[b, a, :shp[0], :shp[1], :shp[2]] = block
        assert crad.shape[0] == S
        return C

    # ------------------------------------------------------------------ evaluation
    def predict(self, theta: np.ndarray, data: FitArrays) -> tuple[np.ndarray, np.ndarray]:
        """Per-structure energies (eV) and forces (eV/Å) for θ."""
        self._load(theta)
        return self._pass1(data)

    def _pass1(self, data: FitArrays) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        n = len(data.species)
        energies = np.zeros(n)
        pairf = np.zeros((len(data.nbr_j), 3))
        K.ace_atoms(data.species, data.nbr_off, data.nbr_j, data.vec, m._b_int, m._b_par, m._crad, m.inner,
                    m._e_int, m._e_par, m._E0, m._sp_r1, m._r1_aidx, m._r1_ct, m._sp_fn, m._fn_c0, m._c_aidx,
                    m._c_m, m._c_rank, m._c_ct, False, m._sp_tab, m._sp_scale, m.nmax, m.lmax, m.kmax,
                    m._rmax, numba.get_num_threads(), energies, pairf)
        forces, _ = K.reduce_pair_forces(n, data.nbr_off, data.nbr_j, data.vec, pairf)
        e_struct = np.add.reduceat(energies, data.struct_off[:-1]) if n else np.zeros(0)
        return e_struct, forces

    def __call__(self, theta: np.ndarray, data: FitArrays, grad: bool = True) -> LossResult:
        t0 = time.perf_counter()
        C = self._load(theta)
        cfg = self.cfg
        e_pred, f_pred = self._pass1(data)
        nat = data.n_atoms.astype(float)
        de = (e_pred - data.e_ref) / nat
        df = f_pred - data.f_ref
        e_loss = float(np.sum(data.w_e * de * de))
        f_loss = float(np.sum(data.w_f * np.einsum("ij,ij->i", df, df)))
        parts = {"e_loss": e_loss, "f_loss": f_loss, "e_loss_contrib": (1 - cfg.kappa) * e_loss,
                 "f_loss_contrib": cfg.kappa * f_loss}
        g = np.zeros(self.pmap.size) if grad else None
        if grad:
            v = 2.0 * data.w_f[:, None] * df
            alpha = 2.0 * (1.0 - cfg.kappa) * data.w_e * de / nat
            self._pass2(data, v, alpha, cfg.kappa, g)
        self._regularize(theta, C, parts, g)
        loss = parts["e_loss_contrib"] + parts["f_loss_contrib"] + parts["reg_loss"]
        return LossResult(loss=loss, grad=g, parts=parts, e_pred=e_pred, f_pred=f_pred,
                          seconds=time.perf_counter() - t0)

    # ------------------------------------------------------------------ least-squares form
    def residuals(self, theta: np.ndarray, data: FitArrays) -> np.ndarray:
        """r = [√((1−κ)w_s) ΔE_s/N_s, √(κ w_i) ΔF_i, √L2 c]: Σ r² is the loss without L1/smoothness."""
        e_pred, f_pred = self.predict(theta, data)
        k = self.cfg.kappa
        re = np.sqrt((1 - k) * data.w_e) * (e_pred - data.e_ref) / data.n_atoms
        rf = (np.sqrt(k * data.w_f)[:, None] * (f_pred - data.f_ref)).ravel()
        rc = np.sqrt(self.cfg.L2_coeffs) * theta[self.pmap.func_mask()]
        return np.concatenate([re, rf, rc])

    def residuals_vjp(self, theta: np.ndarray, data: FitArrays, y: np.ndarray) -> np.ndarray:
        """Jᵀy of :meth:`residuals` by one pass of the gradient kernel (exact)."""
        self._load(theta)
        ns, na = data.n_struct, len(data.species)
        k = self.cfg.kappa
        alpha = y[:ns] * np.sqrt((1 - k) * data.w_e) / data.n_atoms
        v = np.sqrt(k * data.w_f)[:, None] * y[ns:ns + 3 * na].reshape(na, 3)
        g = np.zeros(self.pmap.size)
        self._pass2(data, v, alpha, 1.0, g)
        g[self.pmap.func_mask()] += np.sqrt(self.cfg.L2_coeffs) * y[ns + 3 * na:]
        return g

    def _pass2(self, data: FitArrays, v: np.ndarray, alpha: np.ndarray, kappa: float, g: np.ndarray) -> None:
        """Add ∂/∂θ Σ_i (α_s E_i − κ Ė_i) (Ė along v) to g."""
        m = self.model
        nchunk = max(1, min(data.n_struct, 4 * numba.get_num_threads()))
        g_r1 = np.zeros((nchunk,) + m._r1_ct.shape)
        g_comb = np.zeros((nchunk,) + m._c_ct.shape)
        g_crad = np.zeros((nchunk,) + m._crad.shape)
        grad_pass(data.struct_off, data.species, data.nbr_off, data.nbr_j, data.vec, v, alpha, kappa,
                  m._b_int, m._b_par, m._crad, m.inner, m._e_int, m._e_par, m._sp_r1, m._r1_aidx, m._r1_ct,
                  m._sp_fn, m._fn_c0, m._c_aidx, m._c_m, m._c_rank, m._c_ct, m.nmax, m.lmax, m.kmax, m._rmax,
                  nchunk, g_r1, g_comb, g_crad)
        g_ct = np.zeros((self.tpl.matrix.shape[1], self.ndmax))
        g_ct[self.r1_tidx] = g_r1.sum(axis=0)
        g_ct[self.comb_tidx] = g_comb.sum(axis=0)
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
            sgn = np.where(c == 0.0, 1.0, np.sign(c))  # pacemaker nudges exact zeros to +1e-32
            g[fm] += cfg.L1_coeffs * sgn + 2.0 * cfg.L2_coeffs * c
        extra = self.radial(theta, cfg, g)
        parts.update(extra)
        parts["reg_loss"] = (parts["l1_reg_contrib"] + parts["l2_reg_contrib"] + extra["smooth_orth"]
                             + extra["smooth_w1"] + extra["smooth_w2"] + extra["smooth_w3"])
