"""The fit as a stepper: ladder steps → fit cycles → optimizer iterations (pacemaker_inventory §5–§6).

:class:`Fitter` is a generator underneath: :meth:`Fitter.step` runs exactly one optimizer iteration
and its bookkeeping (metrics, interim potential, callbacks, early stopping) and returns a record,
so a background thread can pause between iterations, resume, or stop; :meth:`Fitter.run` loops.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from paceui.ace.ladder import actual_ladder_step, empty_like, extend_basis
from paceui.ace.potential import ACEPotential
from paceui.fit.config import BackendConfig, FitConfig
from paceui.fit.loss import ACELoss, FitArrays, LossConfig, LossResult
from paceui.fit.metrics import FitMetrics, compute_metrics
from paceui.fit.optimizers import make_stepper

STOP_REASONS = {
    "maxiter": "maximum number of iterations reached",
    "converged": "optimizer converged",
    "early_stopping": "early stopping: relative loss change stayed above the threshold",
    "stalled": "the optimizer could not make further progress",
    "user": "stopped by the user",
    "finished": "fit finished",
    "error": "error",
}


@dataclass
class IterationRecord:
    """What one iteration produced (metrics in eV, eV/Å)."""

    ladder_step: int
    cycle: int
    iteration: int
    n_evals: int
    loss: float
    train: FitMetrics
    test: FitMetrics | None
    seconds_per_eval_atom: float
    nfuncs: int
    event: str = "iteration"  # iteration | cycle_end | ladder_end | finished


@dataclass
class FitState:
    """Mutable progress of a fit (history rows are flat dicts for a DataFrame)."""

    ladder_step: int = 0
    cycle: int = 0
    iteration: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_loss: float = math.inf
    best_potential: ACEPotential | None = None
    stop_reason: str | None = None
    stop_message: str = ""


def resolve_kappa(kappa: Any, data: FitArrays) -> float:
    """κ as given, or ``auto``: σ_E²/(σ_E²+σ_F²) from the training energies per atom and force norms."""
    if kappa != "auto":
        return float(kappa if kappa is not None else 0.0)
    epa = data.e_ref / data.n_atoms
    se2 = float(np.var(epa, ddof=1)) if len(epa) > 1 else 0.0
    sf2 = float(np.var(np.linalg.norm(data.f_ref, axis=1))) if len(data.f_ref) else 0.0
    return se2 / (se2 + sf2) if se2 + sf2 > 0 else 0.0


class Fitter:
    """Fits ``target`` (or grows it by the ladder from ``initial``) to ``train``."""

    def __init__(self, target: ACEPotential, train: FitArrays, fit: FitConfig, test: FitArrays | None = None,
                 backend: BackendConfig | None = None, initial: ACEPotential | None = None, seed: int = 42,
                 callbacks: list[Callable[..., Any]] | None = None,
                 on_potential: Callable[[ACEPotential, IterationRecord], None] | None = None) -> None:
        self.target, self.train, self.test, self.cfg = target, train, test, fit
        self.backend = backend or BackendConfig()
        loss = dict(fit.loss)
        loss["kappa"] = resolve_kappa(loss.get("kappa", 0.0), train)
        self.loss_cfg = LossConfig.from_dict(loss)
        self.rng = np.random.default_rng(seed)
        self.callbacks = list(callbacks or [])
        self.callback_errors: list[str] = []
        self.on_potential = on_potential
        self.state = FitState()
        if fit.ladder:
            self.current = initial.copy() if initial is not None else empty_like(target)
        else:
            self.current = (initial or target).copy()
        self._stop_requested = False
        self._gen: Iterator[IterationRecord] | None = None
        self.loss: ACELoss | None = None
        self.theta: np.ndarray | None = None

    # ------------------------------------------------------------------ public stepping API
    def step(self) -> IterationRecord | None:
        """One optimizer iteration (or None when the fit has finished)."""
        if self._gen is None:
            self._gen = self._run()
        try:
            return next(self._gen)
        except StopIteration:
            return None

    def run(self, max_iterations: int | None = None) -> FitState:
        """Run to the end (or for ``max_iterations`` more iterations)."""
        n = 0
        while max_iterations is None or n < max_iterations:
            rec = self.step()
            if rec is None:
                break
            n += rec.event == "iteration"
        return self.state

    def request_stop(self) -> None:
        """Stop at the next iteration boundary (the current best potential is kept)."""
        self._stop_requested = True

    @property
    def finished(self) -> bool:
        return self.state.stop_reason is not None

    def potential(self) -> ACEPotential:
        """The current potential (parameters of the current iterate)."""
        if self.loss is None or self.theta is None:
            return self.current.copy()
        return self.loss.pmap.apply(self.current, self.theta)

    # ------------------------------------------------------------------ the loops
    def _run(self) -> Iterator[IterationRecord]:
        cfg = self.cfg
        target_total = len(self.target.functions())
        while True:
            if cfg.ladder:
                n = actual_ladder_step(cfg.ladder_step, len(self.current.functions()), target_total)
                if n <= 0 and self.state.ladder_step > 0:
                    break
                if n > 0:
                    self.current = extend_basis(self.current, self.target, cfg.ladder_type, n)
            yield from self._cycles()
            if self.state.stop_reason == "user" or not cfg.ladder:
                break
            self.state.ladder_step += 1
            if len(self.current.functions()) >= target_total:
                break
        if self.state.stop_reason is None:
            self.state.stop_reason = getattr(self, "_last_cycle_reason", "finished")
        self.state.stop_message = self.state.stop_message or STOP_REASONS[self.state.stop_reason]

    def _cycles(self) -> Iterator[IterationRecord]:
        cfg = self.cfg
        self.loss = ACELoss(self.current, self.loss_cfg)
        pmap = self.loss.pmap
        mask = pmap.trainable_mask(cfg.trainable_parameters)
        theta0 = pmap.get(self.current)
        best: tuple[float, np.ndarray] | None = None
        for cycle in range(cfg.fit_cycles):
            self.state.cycle = cycle
            if cycle > 0:
                theta0 = self._randomize(best[1] if best else theta0, mask)
            theta = yield from self._minimize(theta0, mask)
            final = self.loss(theta, self.train, grad=False).loss
            if best is None or final < best[0]:
                best = (final, theta.copy())
            if self.state.stop_reason == "user":
                break
        assert best is not None
        self.theta = best[1]
        self.current = pmap.apply(self.current, self.theta)
        if best[0] < self.state.best_loss or self.cfg.ladder:
            self.state.best_loss = best[0]
            self.state.best_potential = self.current.copy()

    def _randomize(self, theta: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cfg, out = self.cfg, theta.copy()
        fm = mask & self.loss.pmap.func_mask()
        if cfg.randomize_func_coeffs:
            out[fm] = self.rng.normal(0.0, cfg.randomize_func_coeffs, fm.sum())
        elif cfg.noise_relative_sigma:
            out[mask] += self.rng.normal(size=mask.sum()) * cfg.noise_relative_sigma * np.maximum(np.abs(out[mask]), 1e-2)
        elif cfg.noise_absolute_sigma:
            out[mask] += self.rng.normal(size=mask.sum()) * cfg.noise_absolute_sigma
        return out

    def _minimize(self, theta0: np.ndarray, mask: np.ndarray) -> Iterator[IterationRecord]:
        """One cycle: iterate the optimizer; returns the final θ (generator return value)."""
        loss, cfg = self.loss, self.cfg
        assert loss is not None
        fixed = theta0.copy()
        cache: dict[str, Any] = {}

        def expand(x: np.ndarray) -> np.ndarray:
            t = fixed.copy()
            t[mask] = x
            return t

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            res = loss(expand(x), self.train)
            cache["x"], cache["res"] = x.copy(), res
            return res.loss, res.grad[mask]

        stepper = make_stepper(cfg.optimizer, fun, theta0[mask].copy(), cfg.options, cfg.maxiter,
                               residuals=lambda x: loss.residuals(expand(x), self.train),
                               jac_t=lambda x, y: loss.residuals_vjp(expand(x), self.train, y)[mask])
        self.theta = theta0
        try:
            yield self._record(theta0, loss(theta0, self.train), 0, 1, 0.0, event="initial")
            self._last_cycle_reason = "maxiter"
            train_losses: list[float] = []
            test_losses: list[float] = []
            for it in range(1, cfg.maxiter + 1):
                t0 = time.perf_counter()
                ev0 = cache.get("evals", 0)
                info = stepper.step()
                dt = time.perf_counter() - t0
                x = stepper.x
                res = cache["res"] if "x" in cache and np.array_equal(cache["x"], x) else loss(expand(x), self.train)
                self.theta = expand(x)
                nat = max(len(self.train.species), 1)
                rec = self._record(self.theta, res, it, info.n_evals, dt / max(info.n_evals - ev0, 1) / nat)
                cache["evals"] = info.n_evals
                yield rec
                reason = self._stop_check(info, rec, train_losses, test_losses)
                if reason:
                    self.state.stop_reason = None if reason != "user" else reason
                    self.state.stop_message = f"{STOP_REASONS[reason]} ({info.message})" if info.message and \
                        reason in ("converged", "stalled") else STOP_REASONS[reason]
                    self._last_cycle_reason = reason
                    break
        finally:
            close = getattr(stepper, "close", None)
            if close:
                close()
        return self.theta

    def _stop_check(self, info: Any, rec: IterationRecord, train_losses: list[float],
                    test_losses: list[float]) -> str | None:
        cfg = self.cfg
        if self._stop_requested:
            self.state.stop_reason = "user"
            return "user"
        if info.converged:
            if getattr(info, "success", True):
                return "converged"
            return "maxiter" if "iteration" in info.message.lower() else "stalled"
        train_losses.append(rec.loss)
        if rec.test is not None:
            test_losses.append(rec.test.loss)
        for thr, hist, every in ((cfg.min_relative_train_loss_per_iter, train_losses, 1),
                                 (cfg.min_relative_test_loss_per_iter, test_losses, self.backend.display_step)):
            if thr is None:
                continue
            window = math.ceil(cfg.early_stopping_patience / every)
            if len(hist) > window:
                last = np.asarray(hist[-window - 1:])
                d = np.diff(last) / np.where(last[:-1] == 0, 1.0, last[:-1]) / every
                if np.all(d > -abs(thr)):
                    return "early_stopping"
        return None

    # ------------------------------------------------------------------ metrics and callbacks
    def _metrics(self, theta: np.ndarray, res: LossResult | None, data: FitArrays) -> FitMetrics:
        assert self.loss is not None
        if res is None:
            res = self.loss(theta, data, grad=False)
        reg = {k: res.parts[k] for k in ("l1_reg_contrib", "l2_reg_contrib", "smooth_orth", "smooth_w1",
                                         "smooth_w2", "smooth_w3")}
        return compute_metrics(res.e_pred, data.e_ref, data.n_atoms, res.f_pred, data.f_ref, data.w_e, data.w_f,
                               self.loss_cfg.kappa, reg=reg, nfuncs=len(self.current.functions()),
                               ncoefs=int(self.loss.pmap.size))

    def _record(self, theta: np.ndarray, res: LossResult, it: int, n_evals: int, t_atom: float,
                event: str = "iteration") -> IterationRecord:
        st = self.state
        st.iteration = it
        train = self._metrics(theta, res, self.train)
        test = None
        if self.test is not None and self.test.n_struct and (it % self.backend.display_step == 0 or it == 0):
            test = self._metrics(theta, None, self.test)
        rec = IterationRecord(st.ladder_step, st.cycle, it, n_evals, train.loss, train, test, t_atom * 1e6,
                              len(self.current.functions()), event)
        row = {"ladder_step": st.ladder_step, "cycle": st.cycle, "iteration": it, "n_evals": n_evals,
               **{k: v for k, v in train.as_dict().items()}, "time_per_atom_us": t_atom * 1e6}
        if test is not None:
            row.update({f"test_{k}": v for k, v in test.as_dict().items()})
        st.history.append(row)
        if event == "iteration" and (self.callbacks or self.on_potential):
            pot = self.loss.pmap.apply(self.current, theta)
            if self.on_potential:
                self.on_potential(pot, rec)
            for cb in self.callbacks:
                try:
                    cb(potential=pot, basis_config=pot, metrics=train, test_metrics=test, current_fit_iteration=it,
                       current_fit_cycle=st.cycle, current_ladder_step=st.ladder_step)
                except Exception as exc:  # a user callback must not kill the fit
                    self.callback_errors.append(f"iteration {it}: {getattr(cb, '__name__', cb)}: "
                                                f"{type(exc).__name__}: {exc}")
        return rec
