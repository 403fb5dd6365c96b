"""Exact linear least squares for potentials whose energy is affine in the function coefficients.

With linear embeddings (every F(ρ) = ρ: FinnisSinclairShiftedScaled or FinnisSinclair with m = 1) and
fixed radial coefficients, E_i = f_i Σ_p w_p ρ_p + ρ_core,i is affine in c (the inner-cutoff factor f_i
and the core repulsion depend on the geometry only). The loss without L1 and smoothness terms is then
a quadratic in c whose minimiser is one ridge solve of the weighted residual system
[√((1−κ)w_s)/N_s (E_s − E_ref); √(κ w_i) (F_i − F_ref); √L2 c]. pacemaker has no such path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.fit.arrays import FitArrays
from paceui.fit.loss import ACELoss, LossConfig


@dataclass
class LinearFitResult:
    potential: ACEPotential
    loss: float
    n_params: int
    rank: int


def is_linear(pot: ACEPotential) -> bool:
    """True when every embedding is F(ρ) = ρ (all densities m = 1)."""
    return all(abs(m - 1.0) < 1e-10 for e in pot.embeddings().values() for m in e.fs_parameters[1::2])


def linear_fit(pot: ACEPotential, data: FitArrays, cfg: LossConfig) -> LinearFitResult:
    """Function coefficients minimising the loss exactly (radial coefficients kept fixed)."""
    if not is_linear(pot):
        raise ValueError("linear_fit needs linear embeddings (every fs_parameters m = 1); "
                         "use an iterative optimizer for non-linear embeddings")
    if cfg.L1_coeffs or cfg.w0_rad or cfg.w1_rad or cfg.w2_rad or cfg.w_orth:
        raise ValueError("linear_fit supports kappa and L2_coeffs only (L1 and smoothness are not quadratic in c)")
    loss = ACELoss(pot, cfg)
    theta = loss.pmap.get(pot)
    fm = np.flatnonzero(loss.pmap.func_mask())
    theta[fm] = 0.0
    k = cfg.kappa
    sw_e = np.sqrt((1.0 - k) * data.w_e) / data.n_atoms
    sw_f = np.sqrt(k * data.w_f)[:, None]

    def rows(th: np.ndarray) -> np.ndarray:
        e, f = loss.predict(th, data)
        return np.concatenate([sw_e * e, (sw_f * f).ravel()])

    base = rows(theta)
    A = np.empty((base.size, fm.size))
    for col, idx in enumerate(fm):  # the energy is affine in c: each column is one evaluation
        theta[idx] = 1.0
        A[:, col] = rows(theta) - base
        theta[idx] = 0.0
    b = np.concatenate([sw_e * data.e_ref, (sw_f * data.f_ref).ravel()]) - base
    if cfg.L2_coeffs:
        A = np.vstack([A, np.sqrt(cfg.L2_coeffs) * np.eye(fm.size)])
        b = np.concatenate([b, np.zeros(fm.size)])
    c, _, rank, _ = np.linalg.lstsq(A, b, rcond=None)
    theta[fm] = c
    out = loss.pmap.apply(pot, theta)
    return LinearFitResult(potential=out, loss=loss(theta, data, grad=False).loss, n_params=int(fm.size),
                           rank=int(rank))
