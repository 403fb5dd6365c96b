"""Solves of a :class:`~paceui.fit.design.LinearSystem`: ridge, Bayesian ridge (evidence) and ARD.

All work on the QR factor R (P×P) and qb = Qᵀb of the weighted design X, never on XᵀX formed from X:
‖X c − b‖² = ‖R c − qb‖² + rss0. With the SVD R = U diag(s) Vᵀ:

* ridge, min ‖Xc − b‖² + λ‖c‖²:  c = V diag(s/(s² + λ)) Uᵀ qb.
* Bayesian ridge (MacKay's evidence approximation): prior c ~ N(0, α⁻¹ I), noise precision β on the
  weighted rows; iterate γ = Σ βs²/(βs² + α), α = γ/‖m‖², β = (n − γ)/‖Xm − b‖² to the fixed point;
  posterior N(m, Σ), Σ = V diag(1/(βs² + α)) Vᵀ, m the ridge solution with λ = α/β.
* ARD (Tipping's relevance vector updates): one α_i per coefficient, α_i = γ_i/m_i², γ_i = 1 − α_i Σ_ii,
  with Σ = (β RᵀR + diag α)⁻¹ (a P×P system formed from R, i.e. the normal matrix; P is small);
  coefficients with α_i above ``alpha_max`` are pruned to 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from paceui._blas import LAPACK
from paceui.fit.config import is_kappa_grid
from paceui.fit.design import LinearSystem, assemble, assemble_parts, at_kappa, pooled_at_kappa

LINEAR_SOLVERS = ("linear", "bayesian_ridge", "ard")
"""``fit: optimizer:`` names of the linear solves (``ridge`` is an alias of ``linear``)."""
ALIASES = {"ridge": "linear", "linear_ridge": "linear", "brr": "bayesian_ridge", "bayes": "bayesian_ridge"}


def solver_name(name: str) -> str | None:
    """The canonical linear solver for an optimizer name, or None for an iterative optimizer."""
    n = name.strip().lower()
    n = ALIASES.get(n, n)
    return n if n in LINEAR_SOLVERS else None


@dataclass
class LinearSolution:
    """Coefficients (in the system's column order) and, for the Bayesian solves, the posterior."""

    coef: np.ndarray
    method: str
    lam: float                       # effective ridge parameter (α/β for Bayesian ridge)
    rss: float                       # ‖X c − b‖²
    alpha: float | np.ndarray | None = None
    beta: float | None = None
    iterations: int = 0
    log_evidence: float | None = None
    cov_factor: np.ndarray | None = None  # L with Σ = L Lᵀ (posterior covariance; + extra["null_rows"] part)
    extra: dict = field(default_factory=dict)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` coefficient vectors drawn from the posterior N(coef, Σ) ([n, P])."""
        if self.cov_factor is None:
            raise ValueError(f"the {self.method} solve has no posterior; use bayesian_ridge or ard")
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, self.cov_factor.shape[1]))
        out = self.coef[None, :] + z @ self.cov_factor.T
        if "null_rows" in self.extra:  # Σ = L Lᵀ + (I − VVᵀ)/α: the directions no data row sees keep the prior
            V = self.extra["null_rows"]
            w = rng.normal(size=(n, V.shape[1]))
            out += (w - (w @ V.T) @ V) / np.sqrt(self.extra["null_alpha"])
        return out


def _svd(system: LinearSystem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """U, s, Vᵀ of R's rows that are not all zero (R = U diag(s) Vᵀ; fewer rows than columns: Vᵀ is r × P, and
    the SVD costs r²P instead of P³) and z = Uᵀ qb. Below those rows R and qb are zero (a design of r < P rows
    reduced by QR)."""
    R = system.R
    nz = np.flatnonzero(np.any(R != 0.0, axis=1))
    r = int(nz[-1]) + 1 if len(nz) else 0
    P = R.shape[1]
    with LAPACK.block("svd", 8.0 * P * min(r, P) ** 2):  # one or all threads, whichever is faster now
        U, s, Vt = np.linalg.svd(R[:r], full_matrices=False)
    return U, s, Vt, U.T @ system.qb[:r]


def _rss(system: LinearSystem, c: np.ndarray) -> float:
    r = system.R @ c - system.qb
    return float(r @ r) + system.rss0


def ridge(system: LinearSystem, lam: float) -> LinearSolution:
    """min ‖X c − b‖² + λ‖c‖² (λ ≥ 0; λ = 0 gives the minimum-norm least-squares solution)."""
    U, s, Vt, z = _svd(system)
    if lam > 0:
        d = s / (s * s + lam)
    else:
        cut = s.max() * max(system.R.shape) * np.finfo(float).eps if s.size else 0.0
        d = np.where(s > cut, 1.0 / np.where(s > 0, s, 1.0), 0.0)
    c = Vt.T @ (d * z)
    return LinearSolution(c, "linear", float(lam), _rss(system, c))


def bayesian_ridge(system: LinearSystem, max_iter: int = 300, tol: float = 1e-10,
                   alpha0: float | None = None, beta0: float | None = None) -> LinearSolution:
    """Evidence-maximised α (prior precision) and β (noise precision); posterior mean and covariance."""
    U, s, Vt, z = _svd(system)
    n, P = system.n_rows, len(system.qb)
    s2 = s * s
    b2 = float(system.qb @ system.qb) + system.rss0
    beta = beta0 if beta0 is not None else n / max(b2, 1e-300)
    alpha = alpha0 if alpha0 is not None else 1.0
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        d = beta * s / (beta * s2 + alpha)
        mz = d * z  # the mean in V coordinates
        m2 = float(mz @ mz)
        rss = float(np.sum((s * mz - z) ** 2)) + system.rss0
        gamma = float(np.sum(beta * s2 / (beta * s2 + alpha)))
        a_new = gamma / max(m2, 1e-300)
        b_new = max(n - gamma, 1e-12) / max(rss, 1e-300)
        done = abs(np.log(a_new / alpha)) < tol and abs(np.log(b_new / beta)) < tol
        alpha, beta = a_new, b_new
        if done:
            break
    d = beta * s / (beta * s2 + alpha)
    c = Vt.T @ (d * z)
    rss = _rss(system, c)
    lam_post = beta * s2 + alpha
    # the P - r directions no row sees keep the prior precision α (lam_post = α there)
    log_ev = 0.5 * (P * np.log(alpha) + n * np.log(beta) - beta * rss - alpha * float(c @ c)
                    - float(np.sum(np.log(lam_post))) - (P - len(s)) * np.log(alpha) - n * np.log(2 * np.pi))
    L = Vt.T / np.sqrt(lam_post)[None, :]
    extra = {"null_rows": Vt, "null_alpha": alpha} if len(s) < P else {}
    return LinearSolution(c, "bayesian_ridge", alpha / beta, rss, alpha, beta, it, float(log_ev), L, extra)


def ard(system: LinearSystem, max_iter: int = 300, tol: float = 1e-8, alpha_max: float = 1e12) -> LinearSolution:
    """Automatic relevance determination: one prior precision per coefficient (see module doc)."""
    first = bayesian_ridge(system)
    n, P = system.n_rows, len(system.qb)
    A = system.R.T @ system.R
    h = system.R.T @ system.qb
    alpha = np.full(P, float(first.alpha))
    beta = float(first.beta)
    keep = np.ones(P, bool)
    c = first.coef.copy()
    it = 0
    Sig = np.zeros((P, P))
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        k = np.flatnonzero(keep)
        H = beta * A[np.ix_(k, k)] + np.diag(alpha[k])
        w_h, V_h = np.linalg.eigh(0.5 * (H + H.T))
        Sk = (V_h / np.maximum(w_h, 1e-300)[None, :]) @ V_h.T
        mk = beta * Sk @ h[k]
        c = np.zeros(P)
        c[k] = mk
        gamma = np.clip(1.0 - alpha[k] * np.diag(Sk), 1e-12, 1.0)
        a_new = np.minimum(gamma / np.maximum(mk * mk, 1e-300), alpha_max)
        rss = _rss(system, c)
        b_new = max(n - float(gamma.sum()), 1e-12) / max(rss, 1e-300)
        change = float(np.max(np.abs(np.log(a_new / alpha[k])))) if len(k) else 0.0
        change = max(change, abs(float(np.log(b_new / beta))))
        alpha[k] = a_new
        beta = b_new
        keep = alpha < alpha_max * (1 - 1e-12)
        Sig = np.zeros((P, P))
        Sig[np.ix_(k, k)] = Sk
        if change < tol:
            break
    alpha = np.where(keep, alpha, np.inf)
    c[~keep] = 0.0
    w, V = np.linalg.eigh(0.5 * (Sig + Sig.T))
    L = V * np.sqrt(np.maximum(w, 0.0))[None, :]
    return LinearSolution(c, "ard", float(np.median(alpha[keep]) / beta) if keep.any() else np.inf, _rss(system, c),
                          alpha, beta, it, None, L, {"n_pruned": int((~keep).sum())})


def with_coefficients(base: np.ndarray, system: LinearSystem, coef: np.ndarray) -> np.ndarray:
    """θ: a copy of ``base`` with the system's columns (the solved function coefficients) set to ``coef``."""
    theta = base.copy()
    theta[system.cols] = coef
    return theta


def solve(system: LinearSystem, method: str, lam: float = 0.0) -> LinearSolution:
    """Dispatch on the canonical name (:func:`solver_name`)."""
    name = solver_name(method)
    if name == "linear":
        return ridge(system, lam)
    if name == "bayesian_ridge":
        return bayesian_ridge(system)
    if name == "ard":
        return ard(system)
    raise ValueError(f"unknown linear solver {method!r} (known: {', '.join(LINEAR_SOLVERS)})")


def committee(potential: Any, system: LinearSystem, solution: LinearSolution, n: int,
              seed: int | None = 0) -> list[Any]:
    """``n`` potentials whose function coefficients are drawn from the posterior of a Bayesian solve
    (radial coefficients as in ``potential``): a committee for an ensemble calculator's uncertainty."""
    from paceui.fit.params import ParamMap

    pmap = ParamMap.from_potential(potential)
    out = []
    for c in solution.sample(n, seed):
        pot = pmap.apply(potential, with_coefficients(system.theta0, system, c))
        pot.metadata["committee"] = f"{solution.method} posterior draw (seed {seed})"
        out.append(pot)
    return out


def run_cycle(fitter: Any, cyc: Any) -> Iterator[Any]:
    """The rest of a fit cycle: :func:`linear_cycle` for a linear solver name, else the fitter's optimizer."""
    method = solver_name(fitter.cfg.optimizer)
    return linear_cycle(fitter, cyc, method) if method is not None else fitter._minimize(cyc)


def linear_cycle(fitter: Any, cyc: Any, method: str) -> Iterator[Any]:
    """A cycle of a linear solve (``fit: optimizer: linear | bayesian_ridge | ard``): the initial record,
    then one record at the exact minimiser over the function coefficients (radial ones kept)."""
    from paceui.fit.fitter import STOP_REASONS
    from paceui.fit.loss import ACELoss

    loss, st = fitter.loss, fitter.state
    assert loss is not None
    if not isinstance(loss, ACELoss):
        raise ValueError(f"fit.optimizer {fitter.cfg.optimizer}: the linear solves run in this process "
                         "(backend.evaluator numba), not on Dask")
    if not cyc.started:
        fitter.theta = cyc.fixed
        cyc.started, fitter._last_reason = True, "maxiter"
        # the records need errors, not gradients (a gradient pass of a large basis takes as long as the loss)
        yield fitter._record(cyc.fixed, loss(cyc.fixed, fitter.train, grad=False), 0, 1, 0.0, event="initial")
    if fitter._stop_requested or cyc.pending:
        return fitter.theta
    t0 = time.perf_counter()
    pot = loss.pmap.apply(fitter.current, cyc.fixed)
    options = fitter.cfg.options or {}
    grid = options.get("kappa_grid")
    choice = ""
    fitter.linear_refit = False
    if grid and fitter.test is not None and fitter.test.n_struct:
        sel = select_kappa(loss, pot, fitter.train, fitter.test, cyc.fixed, method, [float(k) for k in grid],
                           refit=bool(options.get("refit_all", False)))
        system, sol, theta = sel.system, sel.solution, sel.theta
        choice = f"; kappa {sel.kappa:g} chosen on the validation set from {sel.table}"
        fitter.linear_refit = sel.refit
        if sel.refit:
            choice += f"; then solved at that kappa on training + validation ({system.n_rows} rows)"
    else:
        system = assemble(pot, fitter.train, loss.cfg)
        sol = solve(system, method, lam=loss.cfg.L2_coeffs)
        theta = with_coefficients(cyc.fixed, system, sol.coef)
    fitter.linear_solution, fitter.linear_system = sol, system
    fitter.theta = theta
    dt = time.perf_counter() - t0
    rec = fitter._record(theta, loss(theta, fitter.train, grad=False), st.iteration + 1, 2,
                       dt / max(int(fitter.train.struct_off[-1]), 1))
    cyc.pending, fitter._last_reason = "converged", "converged"
    st.stop_message = (f"{STOP_REASONS['converged']} ({method} solve of {len(sol.coef)} coefficients, "
                       f"{system.n_rows} rows, {dt:.2f} s; ridge parameter {sol.lam:.3g}{choice})")
    yield rec
    return theta


@dataclass
class KappaChoice:
    """The result of :func:`select_kappa`: the chosen κ, its system, solve and θ, and every κ's
    validation errors (energy MAE meV/atom, force-component MAE meV/Å)."""

    kappa: float
    system: LinearSystem
    solution: LinearSolution
    theta: np.ndarray
    table: dict[float, tuple[float, float]]
    refit: bool = False  # system, solution and θ are those of the refit on train + validation


def refit_all(loss: Any, pot: Any, parts: Any, train: Any, val: Any, theta_fixed: np.ndarray, method: str,
              kappa0: float, kappa: float) -> tuple[LinearSystem, LinearSolution, np.ndarray]:
    """The solve at κ on the rows of ``train`` (its parts at κ0, already assembled) and of ``val`` (assembled
    here: ~ val's share of a pass), weighted as one data set (:func:`~paceui.fit.design.pooled_at_kappa`):
    what a fit of the whole training file at the κ the validation split chose gives, without a second
    pass over the training part. Returns (system, solution, θ)."""
    t0 = time.perf_counter()
    vparts = assemble_parts(pot, val, replace(loss.cfg, kappa=kappa0))
    n_s, n_a = train.n_struct + val.n_struct, int(train.struct_off[-1]) + int(val.struct_off[-1])
    shares = [(p, d.n_struct / n_s, int(d.struct_off[-1]) / n_a) for p, d in ((parts, train), (vparts, val))]
    system = pooled_at_kappa(shares, kappa0, kappa)
    sol = solve(system, method, lam=loss.cfg.L2_coeffs)
    theta = with_coefficients(theta_fixed, system, sol.coef)
    logging.getLogger("paceui.fit").info(
        f"refit at kappa {kappa:g} on training + validation: {system.n_rows} rows, validation pass and solve "
        f"{time.perf_counter() - t0:.1f} s")
    return system, sol, theta


KAPPA_PATIENCE = 2
"""The κ walk stops once this many κ in a row, after the best so far, score worse than it: the validation
product E MAE × F MAE falls and then rises along the κ axis (every Zuo grid recorded in
``assets/zuo/README.md``), so the κ beyond cannot win, and each solve of a large basis takes seconds
(P = 3970: ~17 s)."""


def select_kappa(loss: Any, pot: Any, train: Any, val: Any, theta_fixed: np.ndarray, method: str,
                 kappas: list[float], patience: int = KAPPA_PATIENCE, refit: bool = False) -> KappaChoice:
    """The linear solve for κ of ``kappas`` (ascending) from one pass over ``train``
    (:func:`assemble_parts`), keeping the κ whose solution has the smallest product of the energy and
    force MAE on ``val`` (a scale-free balance of the two; the validation split, never the test set).
    The walk stops after ``patience`` κ in a row worse than the best (0: solve every κ); ``table``
    holds the κ solved. ``refit``: the choice's system, solution and θ are then those of :func:`refit_all`
    at the chosen κ (``table`` keeps the validation errors of the training-only solves)."""
    if not is_kappa_grid(kappas):
        raise ValueError(f"fit.options.kappa_grid must be numbers in (0, 1), got {kappas}")
    k0 = 0.5
    log = logging.getLogger("paceui.fit")
    t0 = time.perf_counter()
    parts = assemble_parts(pot, train, replace(loss.cfg, kappa=k0))
    log.info(f"linear pass: {sum(p.n_rows for p in parts)} rows x {len(parts[0].cols)} columns assembled in "
             f"{time.perf_counter() - t0:.1f} s")
    best: KappaChoice | None = None
    best_score = np.inf
    table: dict[float, tuple[float, float]] = {}
    worse = 0
    for k in sorted(kappas):
        if patience and worse >= patience and best is not None:
            log.info(f"kappa walk stopped before {k:g}: {worse} kappa in a row worse than {best.kappa:g}")
            break
        t0 = time.perf_counter()
        system = at_kappa(parts, k0, k)
        sol = solve(system, method, lam=loss.cfg.L2_coeffs)
        theta = with_coefficients(theta_fixed, system, sol.coef)
        e, f, _ = loss.predict_virials(theta, val)
        de, df = (e - val.e_ref) / val.n_atoms * 1e3, (f - val.f_ref) * 1e3
        e_mae, f_mae = float(np.mean(np.abs(de))), float(np.mean(np.abs(df)))
        table[k] = (round(e_mae, 3), round(f_mae, 2))
        log.info(f"kappa {k:g}: validation MAE {e_mae:.3f} meV/atom, {f_mae:.2f} meV/A; RMSE "
                 f"{float(np.sqrt(np.mean(de ** 2))):.3f}, {float(np.sqrt(np.mean(df ** 2))):.2f} "
                 f"(solve and prediction {time.perf_counter() - t0:.1f} s)")
        if e_mae * f_mae < best_score:
            best, best_score, worse = KappaChoice(k, system, sol, theta, table), e_mae * f_mae, 0
        else:
            worse += 1
    assert best is not None
    if refit:
        system, sol, theta = refit_all(loss, pot, parts, train, val, theta_fixed, method, k0, best.kappa)
        best = replace(best, system=system, solution=sol, theta=theta, refit=True)
    loss._load(best.theta)
    return best
