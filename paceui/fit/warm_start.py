"""The linear warm start of a non-linear fit: ``fit: warm_start: bayesian_ridge`` (or ``linear``, ``ard``).

With fs_parameters [w₁, 1, w₂, m₂, ...] (the first density linear, m₁ = 1) the atomic energy is

    E_i = f_i · (w₁ ρ₁,i + Σ_{p≥2} w_p F(ρ_p,i; m_p)) + ρ_core,i + E0,

ρ_p,i = Σ_k c_k,p B_k(i) (the B-basis functions B_k, shared by all densities; c_k,p the coefficient of function
k for density p). Every embedding of paceui has F(0) = 0 exactly (FinnisSinclairShiftedScaled: ν = 1/m,
x₀ = ν^(ν/(1−ν)), y₀ = ν^(1/(1−ν)) at ρ = 0 and F(0) = x₀^m − y₀ = 0 since x₀^m = y₀; FinnisSinclair: F = λρ
near 0). So with c_k,p = 0 for every p ≥ 2 (ρ_p ≡ 0, and ∂ρ_p/∂r ≡ 0) the energies, forces and virials are
exactly those of the one-density linear model E_i = f_i w₁ ρ₁,i + ρ_core,i + E0, whose loss is quadratic in
the c_k,1 and is minimised by one solve of the QR-reduced weighted design (:mod:`paceui.fit.design`, chunked,
memory bounded) with the fit's κ, weights and stress weight.

From there the non-linear optimizer needs a finite, non-zero gradient in the c_k,p (p ≥ 2):
∂E_i/∂c_k,p = f_i w_p F'(0) B_k(i). For FinnisSinclairShiftedScaled (docs/model.md
(M21)) F'(ρ) = y₀ + m (1 − x₀)(x₀ + |ρ|)^(m−1) with x₀, y₀ ∝ e^(−|ρ|); at ρ = 0, x₀^(m−1) = ν gives
F'(0) = 1 + y₀ − x₀, finite for every m (1.25 for m = 0.5), and F''(0±) = ±((m − 1) y₀ + m(m − 1)(1 − x₀)² x₀^(m−2))
is bounded (∓1.375 for m = 0.5): the shift x₀ exists so that F is smooth enough at ρ = 0, unlike √ρ (infinite
slope there). The plain FinnisSinclair has F'(0) = λ = w^(1−m) (1000 for m = 0.5, w = 1e6): finite but steep, so
the start is exact there too but the optimizer's first steps in the c_k,p are small.

What the solve ignores: L1_coeffs (not quadratic) and the radial smoothness / orthogonality terms (they
depend on the radial coefficients only, which the solve keeps fixed); the non-linear fit then has them all.
The radial coefficients are kept as they are (initialised, or from the initial potential). Every function
coefficient is set: density 1 from the solve, the other densities 0; so the warm start needs every function
coefficient trainable (``fit.trainable_parameters``). With a ladder it is the solve of the first ladder step's
functions (those the fit starts with); later steps add their functions at zero, as pacemaker does.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.errors import InputError
from paceui.fit.arrays import FitArrays
from paceui.fit.design import LinearSolveError, LinearSystem, assemble
from paceui.fit.linear_solve import LINEAR_SOLVERS, LinearSolution, solve, solver_name, with_coefficients
from paceui.fit.loss import LossConfig
from paceui.fit.params import ParamMap

WARM_STARTS = ("none", "bayesian_ridge", "linear", "ard")
"""Values of ``fit.warm_start`` (``none``: pacemaker's start; ``ridge`` is an alias of ``linear``)."""


def warm_start_name(value: Any, where: str = "fit.warm_start") -> str | None:
    """The canonical linear solver of a ``fit.warm_start`` value, None for none/null/false; else an
    :class:`InputError` naming ``where``."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    name = solver_name(value) if isinstance(value, str) else None
    if name is None:
        raise InputError(f"{where} must be none, bayesian_ridge, linear (alias ridge) or ard, got {value!r}")
    return name


@dataclass
class WarmStart:
    """The result of :func:`linear_warm_start`: θ of the full potential, the solve of the one-density system
    and its wall time (s)."""

    theta: np.ndarray
    system: LinearSystem
    solution: LinearSolution
    seconds: float

    def describe(self) -> str:
        s = self.solution
        return (f"linear warm start: {s.method} solve of {len(s.coef)} first-density coefficients "
                f"({self.system.n_rows} rows, {self.seconds:.1f} s; ridge parameter {s.lam:.3g}), "
                "other densities 0")


def first_density(pot: ACEPotential) -> ACEPotential:
    """A copy of ``pot`` with one density per element, F(ρ) = w₁ρ (its first; the radial basis as it is) and each
    function's first coefficient; :class:`LinearSolveError` when some element's first density is not linear."""
    bad = [f"{el} (fs_parameters {list(e.fs_parameters)})" for el, e in pot.embeddings().items()
           if len(e.fs_parameters) < 2 or abs(e.fs_parameters[1] - 1.0) > 1e-10]
    if bad:
        raise LinearSolveError("fit.warm_start needs the first density linear (fs_parameters [w1, 1, ...]); not "
                               "linear: " + ", ".join(bad))
    out = copy.deepcopy(pot)
    for b in out.blocks:
        if b.embedding is not None:
            b.embedding.ndensity = 1
            b.embedding.fs_parameters = [float(b.embedding.fs_parameters[0]), 1.0]
        for f in b.functions:
            f.coeffs = [float(f.coeffs[0]) if f.coeffs else 0.0]
    return out


def quadratic_part(cfg: LossConfig) -> LossConfig:
    """The loss terms the linear solve takes (κ, stress, L2); the others are constant or not quadratic."""
    return replace(cfg, L1_coeffs=0.0, w0_rad=0.0, w1_rad=0.0, w2_rad=0.0, w_orth=0.0)


def linear_warm_start(pot: ACEPotential, data: FitArrays, cfg: LossConfig, method: str,
                      chunk_bytes: int | None = None, between: Callable[[], None] | None = None) -> WarmStart:
    """θ of ``pot`` with the first-density coefficients solved on ``data`` (``method``: a linear solver name),
    the other densities' coefficients 0 and the radial coefficients of ``pot`` (see the module doc);
    ``between``: called after each chunk of the assembly (see :func:`paceui.fit.design.assemble`)."""
    t0 = time.perf_counter()
    name = solver_name(method)
    if name is None:
        raise ValueError(f"unknown linear solver {method!r} (known: {', '.join(LINEAR_SOLVERS)})")
    lin = first_density(pot)
    qcfg = quadratic_part(cfg)
    system = assemble(lin, data, qcfg, chunk_bytes=chunk_bytes, between=between)
    sol = solve(system, name, lam=qcfg.L2_coeffs)
    th1 = with_coefficients(system.theta0, system, sol.coef)
    full, one = ParamMap.from_potential(pot), ParamMap.from_potential(lin)
    assert full.n_crad == one.n_crad and len(full.func_slices) == len(one.func_slices)
    theta = full.get(pot)
    theta[:full.n_crad] = th1[:one.n_crad]
    for sl, sl1 in zip(full.func_slices, one.func_slices):
        theta[sl] = 0.0
        theta[sl.start] = th1[sl1.start]
    return WarmStart(theta, system, sol, time.perf_counter() - t0)


def warm_start_cycle(fitter: Any, cyc: Any) -> None:
    """Start the fitter's cycle ``cyc`` (not started yet) from the linear warm start of its potential
    (``fitter.cfg.warm_start``); records nothing (the cycle's iteration 0 shows the warm-started loss).
    A set ``fitter.interrupt`` (when honoured) abandons the assembly between chunks with FitInterrupted; the
    next step does the warm start again."""
    from paceui.fit.loss import ACELoss

    method = warm_start_name(fitter.cfg.warm_start)
    loss = fitter.loss
    if method is None or loss is None or solver_name(fitter.cfg.optimizer) is not None:
        cyc.warm = False
        return  # off, or the fit is a linear solve itself
    if not isinstance(loss, ACELoss):
        raise InputError("fit.warm_start: the linear solve runs in this process (backend.evaluator numba), not "
                         "on Dask")
    fm = loss.pmap.func_mask()
    if not cyc.mask[fm].all():
        raise InputError("fit.warm_start sets every function coefficient, but fit.trainable_parameters "
                         f"{fitter.cfg.trainable_parameters!r} keeps some fixed: train them all or set "
                         "fit.warm_start: none")
    pot = loss.pmap.apply(fitter.current, cyc.fixed)
    between = fitter.raise_if_interrupted if fitter.interruptible else None
    ws = linear_warm_start(pot, fitter.train, loss.cfg, method, between=between)
    cyc.warm, cyc.fixed = False, ws.theta.copy()
    fitter.theta = cyc.fixed
    fitter.warm_start = ws
    logging.getLogger("paceui.fit").info(ws.describe())
