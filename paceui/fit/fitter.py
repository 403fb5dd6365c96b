"""The fit as a stepper: ladder steps → fit cycles → optimizer iterations (as pacemaker's).

:meth:`Fitter.step` runs one optimizer iteration and its bookkeeping (metrics, callbacks, early stopping)
and returns a record; :meth:`Fitter.run` loops. Between steps, :meth:`Fitter.state_dict` is the whole fit,
:meth:`Fitter.from_state_dict` continues from it (bit-identically for the own optimizers), and
:meth:`Fitter.update` / :meth:`Fitter.restart` change settings, θ or the basis.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from paceui.ace.ladder import actual_ladder_step, empty_like, extend_basis
from paceui.ace.potential import ACEPotential
from paceui.fit.arrays import FitArrays
from paceui.fit.callbacks import run_callbacks
from paceui.fit.config import BackendConfig, FitConfig
from paceui.fit.evaluation import attach, fit_metrics, make_loss, resolve_kappa  # noqa: F401 (re-exported)
from paceui.fit.finite import NonFiniteLossError, check_finite  # noqa: F401 (re-exported)
from paceui.fit.linear_solve import run_cycle
from paceui.fit.loss import ACELoss, LossConfig, LossResult
from paceui.fit.metrics import FitMetrics
from paceui.fit.optim import Stepper, make_stepper
from paceui.fit.optim.own import OWN_STEPPERS
from paceui.fit.warm_start import WarmStart, warm_start_cycle

STOP_REASONS = {"maxiter": "maximum number of iterations reached", "converged": "optimizer converged",
                "early_stopping": "early stopping: relative loss change stayed above the threshold",
                "stalled": "the optimizer could not make further progress", "user": "stopped by the user",
                "finished": "fit finished", "error": "error"}
STATE_VERSION = 1  # version of the :meth:`Fitter.state_dict` layout
_KEEP: Any = object()  # "unchanged" for :meth:`Fitter.update`


class FitInterrupted(Exception):
    """:attr:`Fitter.interrupt` was set during an iteration: it was abandoned at its next loss evaluation or
    between two chunks of structures of the running one, and the fit stands at the boundary before it (the
    next :meth:`Fitter.step` redoes it exactly)."""


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
    us_per_eval_atom: float  # µs per loss evaluation and atom
    nfuncs: int
    event: str = "iteration"  # iteration | initial (iteration 0 of a cycle)


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


@dataclass
class _Cycle:
    """Position inside a ladder step: mask, θ at the cycle start, best of its cycles, a saved optimizer,
    early-stopping windows, the stop reason of the last record (acted on at the next step)."""

    mask: np.ndarray
    fixed: np.ndarray
    n_cycles: int
    best_loss: float | None = None
    best_theta: np.ndarray | None = None
    started: bool = False
    stepper_state: dict[str, Any] | None = None
    train_losses: list[float] = field(default_factory=list)
    test_losses: list[float] = field(default_factory=list)
    pending: str | None = None
    n_evals: int = 0
    warm: bool = False  # start from the linear warm start (fit.warm_start) before iteration 0


def _copy(v: Any) -> Any:
    """A copy of a state value (arrays, potentials, lists, tuples, dicts); scalars as they are."""
    if isinstance(v, (list, tuple)):
        return type(v)(_copy(x) for x in v)
    return v.copy() if isinstance(v, (np.ndarray, ACEPotential, dict)) else v


class Fitter:
    """Fits ``target`` (or grows it by the ladder from ``initial``) to ``train``."""

    def __init__(self, target: ACEPotential, train: FitArrays, fit: FitConfig, test: FitArrays | None = None,
                 backend: BackendConfig | None = None, initial: ACEPotential | None = None, seed: int = 42,
                 callbacks: list[Callable[..., Any]] | None = None,
                 on_potential: Callable[[ACEPotential, IterationRecord], None] | None = None) -> None:
        self.target, self.rng, self.on_potential = target, np.random.default_rng(seed), on_potential
        self.callbacks, self.callback_errors, self.state = list(callbacks or []), [], FitState()
        self.current = (initial if initial is not None else empty_like(target) if fit.ladder else target).copy()
        self._stop_requested, self._done, self._last_reason = False, False, "finished"
        self.structure_names: Any = None  # names of the training structures, for error messages
        self._gen: Iterator[IterationRecord] | None = None
        self._cyc: _Cycle | None = None
        self._last_train: tuple[Any, np.ndarray, float] | None = None  # (loss, θ, train loss) of the last record
        self._stepper: Stepper | None = None
        self.loss: ACELoss | None = None
        self.theta: np.ndarray | None = None
        self._evaluator: Any = None  # the Dask evaluator of ``backend: {evaluator: dask}``, else None
        self.warm_start: WarmStart | None = None  # the last linear warm start (fit.warm_start)
        self.interrupt = threading.Event()
        """Set from any thread to abandon the running iteration within its loss evaluation (own optimizers
        only: their state is restored to the iteration's start, so the fit continues bit-identically);
        :meth:`step` then raises :class:`FitInterrupted`. The caller clears it."""
        self.interruptible = False
        """Whether :attr:`interrupt` is honoured (a session's engine turns it on; each iteration then keeps a
        copy of the optimizer state of its start)."""
        self.update(fit, train, test, backend or BackendConfig())

    # ------------------------------------------------------------------ public stepping API
    def step(self) -> IterationRecord | None:
        """One optimizer iteration (or None when the fit has finished)."""
        if self._done:
            return None
        self._gen = self._gen or self._run()
        try:
            return next(self._gen)
        except StopIteration:
            self._done, self._gen = True, None
            return None
        except BaseException:  # the cycle goes on with a fresh optimizer from the current θ next time
            self._gen = None
            raise

    def run(self, max_iterations: int | None = None) -> FitState:
        """Run to the end (or for ``max_iterations`` more iterations)."""
        n = 0
        while (max_iterations is None or n < max_iterations) and (rec := self.step()) is not None:
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

    # ------------------------------------------------------------------ settings and resumable state
    def update(self, fit: FitConfig | None = None, train: FitArrays | None = None, test: Any = _KEEP,
               backend: BackendConfig | None = None) -> None:
        """New settings or data, taking effect at the next :meth:`step` (the optimizer keeps its state,
        built again with the new options; a changed loss needs :meth:`restart` to be consistent)."""
        self._suspend()
        self.cfg: FitConfig = fit or self.cfg
        self.train: FitArrays = train if train is not None else self.train
        self.test: FitArrays | None = self.test if test is _KEEP else test
        self.backend: BackendConfig = backend or self.backend
        ev = self._evaluator
        self.train, self.test, self._evaluator = attach(self.backend, self.train, self.test, ev)
        loss = dict(self.cfg.loss)
        loss["kappa"] = resolve_kappa(loss.get("kappa", 0.0), self.train)
        self.loss_cfg = LossConfig.from_dict(loss)
        if self.loss is not None:  # a new evaluator: the same basis, evaluated elsewhere
            if self._evaluator is not ev:
                self.loss = make_loss(self.loss.potential, self.loss_cfg, self._evaluator)
            self.loss.cfg = self.loss_cfg

    def raise_if_interrupted(self) -> None:
        """:class:`FitInterrupted` when :attr:`interrupt` is set (callers check :attr:`interruptible` first)."""
        if self.interrupt.is_set():
            raise FitInterrupted

    def restart(self, theta: np.ndarray | None = None, extend: int = 0, warm: bool = False) -> None:
        """A fresh optimizer from θ (default: the current parameters) as a new cycle, at a boundary;
        ``extend`` > 0 first grows the basis by that many functions per block (a new ladder step);
        ``warm``: the new cycle starts from the linear warm start of ``fit.warm_start`` (when set).
        Reopens a finished fit."""
        self._suspend()
        st, cyc, loss, cur = self.state, self._cyc, self.loss, self.theta
        if loss is not None and cur is not None and cyc is not None and cyc.started:  # the interrupted cycle's result
            final = loss(cur, self.train, grad=False).loss
            if cyc.best_loss is None or final < cyc.best_loss:
                cyc.best_loss, cyc.best_theta = final, cur.copy()
        theta = cur if theta is None else np.array(theta, dtype=float)
        self._done, st.stop_reason, st.stop_message, self._stop_requested = False, None, "", False
        if extend > 0:
            pot = self.current if loss is None or theta is None else loss.pmap.apply(self.current, theta)
            if cyc is not None and cyc.best_theta is not None and (cyc.best_loss < st.best_loss or self.cfg.ladder):
                st.best_loss, st.best_potential = cyc.best_loss, loss.pmap.apply(self.current, cyc.best_theta)
            self.current = extend_basis(pot, self.target, self.cfg.ladder_type, extend)
            st.ladder_step += cyc is not None
            self._begin_step(None)
        elif cyc is None or loss is None:
            self._begin_step(theta)
        else:
            st.cycle += cyc.started
            cyc.n_cycles = max(cyc.n_cycles, st.cycle + 1)
            cyc.mask = loss.pmap.trainable_mask(self.cfg.trainable_parameters)
            self._new_cycle(theta if theta is not None else cyc.fixed, warm)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (call between steps; the fit is not disturbed)."""
        cyc, live = self._cyc, self._stepper.state() if self._stepper is not None else None
        cs = None if cyc is None else {**vars(cyc), "stepper_state": live or cyc.stepper_state}
        return {"version": STATE_VERSION, "phase": "done" if self._done else ("start" if cyc is None else "running"),
                "current": self.current.copy(), "theta": _copy(self.theta), "last_reason": self._last_reason,
                "rng": self.rng.bit_generator.state, "callback_errors": list(self.callback_errors),
                "cycle_state": None if cs is None else {k: _copy(v) for k, v in cs.items()},
                **{k: _copy(v) for k, v in vars(self.state).items()}}

    @classmethod
    def from_state_dict(cls, sd: dict[str, Any], target: ACEPotential, train: FitArrays, fit: FitConfig,
                        test: FitArrays | None = None, backend: BackendConfig | None = None, **kw: Any) -> "Fitter":
        """A fitter that continues from :meth:`state_dict` output (without re-extending or re-randomising);
        ``kw``: ``callbacks``, ``on_potential`` as for the constructor."""
        if sd.get("version") != STATE_VERSION:
            raise ValueError(f"fitter state version {sd.get('version')!r} is not {STATE_VERSION}")
        self = cls(target, train, fit, test, backend, initial=sd["current"], **kw)
        self.rng.bit_generator.state = sd["rng"]
        for k in vars(self.state):
            setattr(self.state, k, _copy(sd[k]))
        self.callback_errors, self._last_reason = list(sd["callback_errors"]), sd["last_reason"]
        self.theta, self._done = _copy(sd["theta"]), sd["phase"] == "done"
        if sd["cycle_state"] is not None:
            self.loss = make_loss(self.current, self.loss_cfg, self._evaluator)
            self._cyc = _Cycle(**{k: _copy(v) for k, v in sd["cycle_state"].items()})
        return self

    def close(self) -> None:
        """Release the Dask evaluator (its shards and, for the last user, the cluster); no-op in process."""
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None

    def _suspend(self) -> None:
        """Close the suspended generator, keeping the optimizer's state for the next step."""
        if self._gen is not None:
            if self._stepper is not None and self._cyc is not None:
                self._cyc.stepper_state = self._stepper.state()
            gen, self._gen = self._gen, None
            gen.close()

    # ------------------------------------------------------------------ the loops
    def _run(self) -> Iterator[IterationRecord]:
        cfg, target_total = self.cfg, len(self.target.functions())
        while True:
            if self._cyc is None:
                if cfg.ladder:
                    n = actual_ladder_step(cfg.ladder_step, len(self.current.functions()), target_total)
                    if n <= 0 and self.state.ladder_step > 0:
                        break
                    if n > 0:
                        self.current = extend_basis(self.current, self.target, cfg.ladder_type, n)
                self._begin_step(None)
            yield from self._cycles()
            if self.state.stop_reason == "user" or not cfg.ladder or len(self.current.functions()) >= target_total:
                break
            self._cyc = None
            self.state.ladder_step += 1
        self.state.stop_reason = self.state.stop_reason or self._last_reason
        self.state.stop_message = self.state.stop_message or STOP_REASONS[self.state.stop_reason]

    def _begin_step(self, theta: np.ndarray | None) -> None:
        """A new basis (or the first one): loss, mask and cycle 0 from ``theta`` or the current parameters;
        the first ladder step (or the one basis) starts from the linear warm start when ``fit.warm_start`` is set."""
        self.loss = make_loss(self.current, self.loss_cfg, self._evaluator)
        pmap, self.state.cycle = self.loss.pmap, 0
        self._cyc = _Cycle(pmap.trainable_mask(self.cfg.trainable_parameters), np.zeros(0), self.cfg.fit_cycles)
        self._new_cycle(pmap.get(self.current) if theta is None else theta, self.state.ladder_step == 0)

    def _new_cycle(self, theta: np.ndarray, warm: bool = False) -> None:
        c = self._cyc
        assert c is not None
        c.fixed, c.started, c.stepper_state, c.pending, c.n_evals, c.train_losses, c.test_losses = (
            theta.copy(), False, None, None, 0, [], [])
        c.warm = warm and self.cfg.warm_start is not None
        self.theta = c.fixed

    def _cycles(self) -> Iterator[IterationRecord]:
        cyc, st = self._cyc, self.state
        assert cyc is not None and self.loss is not None
        while True:
            if cyc.warm and not cyc.started:
                warm_start_cycle(self, cyc)  # θ of the cycle start: the linear solve (fit.warm_start)
            theta = yield from run_cycle(self, cyc)  # the optimizer's iterations, or an exact linear solve
            final = self._train_loss(theta)
            if cyc.best_loss is None or final < cyc.best_loss:
                cyc.best_loss, cyc.best_theta = final, theta.copy()
            if st.stop_reason == "user" or st.cycle + 1 >= cyc.n_cycles:
                break
            st.cycle += 1
            self._new_cycle(self._randomize(cyc.best_theta, cyc.mask))
        assert cyc.best_loss is not None and cyc.best_theta is not None
        self.theta = cyc.best_theta
        self.current = self.loss.pmap.apply(self.current, self.theta)
        if cyc.best_loss < st.best_loss or self.cfg.ladder:
            st.best_loss, st.best_potential = cyc.best_loss, self.current.copy()

    def _randomize(self, theta: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cfg, out = self.cfg, theta.copy()
        assert self.loss is not None
        fm = mask & self.loss.pmap.func_mask()
        if cfg.randomize_func_coeffs:
            out[fm] = self.rng.normal(0.0, cfg.randomize_func_coeffs, fm.sum())
        elif cfg.noise_relative_sigma:
            scale = cfg.noise_relative_sigma * np.maximum(np.abs(out[mask]), 1e-2)
            out[mask] += self.rng.normal(size=mask.sum()) * scale
        elif cfg.noise_absolute_sigma:
            out[mask] += self.rng.normal(size=mask.sum()) * cfg.noise_absolute_sigma
        return out

    def _minimize(self, cyc: _Cycle) -> Iterator[IterationRecord]:
        """The rest of one cycle: iterate the optimizer; returns the final θ (generator return value)."""
        loss, cfg, st, mask, fixed = self.loss, self.cfg, self.state, cyc.mask, cyc.fixed
        assert loss is not None
        cache: dict[str, Any] = {}

        def expand(x: np.ndarray) -> np.ndarray:
            t = fixed.copy()
            t[mask] = x
            return t

        interruptible = [False]  # True inside stepper.step() of an own (exactly restorable) optimizer

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            if interruptible[0]:  # also between the chunks of structures of the evaluation (see ACELoss)
                self.raise_if_interrupted()
                loss.checkpoint = self.raise_if_interrupted
            try:
                res = loss(t := expand(x), self.train)
            finally:
                loss.checkpoint = None
            check_finite(res, t, self.train, self.structure_names, allow_inf=True)
            cache["x"], cache["res"] = x.copy(), res
            return res.loss, res.grad[mask]

        self._stepper = stepper = make_stepper(
            cfg.optimizer, fun, (self.theta if cyc.started else fixed)[mask].copy(), cfg.options, cfg.maxiter,
            state=cyc.stepper_state, residuals=lambda x: loss.residuals(expand(x), self.train),
            jac_t=lambda x, y: loss.residuals_vjp(expand(x), self.train, y)[mask])
        cyc.stepper_state = None
        own = self.interruptible and type(stepper) in OWN_STEPPERS.values()
        try:
            if not cyc.started:
                self.theta = fixed
                check_finite(res0 := loss(fixed, self.train), fixed, self.train, self.structure_names)
                rec = self._record(fixed, res0, 0, 1, 0.0, event="initial")
                cyc.started, self._last_reason = True, "maxiter"
                yield rec
            while True:
                reason = "user" if self._stop_requested else cyc.pending
                if reason:
                    msg = stepper.info().message if reason in ("converged", "stalled") else ""
                    st.stop_reason, self._last_reason = (reason if reason == "user" else None), reason
                    st.stop_message = f"{STOP_REASONS[reason]} ({msg})" if msg else STOP_REASONS[reason]
                    break
                if (it := st.iteration + 1) > cfg.maxiter:
                    break
                t0, ev0 = time.perf_counter(), cyc.n_evals
                if own and self.interrupt.is_set():
                    cyc.stepper_state = stepper.state()
                    raise FitInterrupted
                before = stepper.state() if own else None  # own steppers change state before evaluating (Adam)
                interruptible[0] = own
                try:
                    info = stepper.step()
                except FitInterrupted:
                    cyc.stepper_state = before  # the next step() restores the iteration's start
                    raise
                finally:
                    interruptible[0] = False
                dt, x = time.perf_counter() - t0, stepper.x
                res = cache["res"] if "x" in cache and np.array_equal(cache["x"], x) else loss(expand(x), self.train)
                self.theta, nat = expand(x), max(int(self.train.struct_off[-1]), 1)
                rec = self._record(self.theta, res, it, info.n_evals, dt / max(info.n_evals - ev0, 1) / nat)
                cyc.n_evals = info.n_evals
                cyc.pending = self._stop_check(info, rec, cyc.train_losses, cyc.test_losses)
                yield rec
        finally:
            self._stepper = None
            stepper.close()
        return self.theta

    def _stop_check(self, info: Any, rec: IterationRecord, train_losses: list[float],
                    test_losses: list[float]) -> str | None:
        cfg = self.cfg
        if info.converged:
            return "converged" if getattr(info, "success", True) else \
                "maxiter" if "iteration" in info.message.lower() else "stalled"
        train_losses.append(rec.loss)
        if rec.test is not None:
            test_losses.append(rec.test.loss)
        for thr, hist, every in ((cfg.min_relative_train_loss_per_iter, train_losses, 1),
                                 (cfg.min_relative_test_loss_per_iter, test_losses, self.backend.display_step)):
            window = math.ceil(cfg.early_stopping_patience / every)
            if thr is not None and len(hist) > window:
                last = np.asarray(hist[-window - 1:])
                d = np.diff(last) / np.where(last[:-1] == 0, 1.0, last[:-1]) / every
                if np.all(d > -abs(thr)):
                    return "early_stopping"
        return None

    # ------------------------------------------------------------------ metrics and callbacks
    def _metrics(self, theta: np.ndarray, res: LossResult | None, data: FitArrays) -> FitMetrics:
        assert self.loss is not None
        res = res if res is not None else self.loss(theta, data, grad=False)
        return fit_metrics(res, data, self.loss_cfg.kappa, len(self.current.functions()), int(self.loss.pmap.size))

    def _train_loss(self, theta: np.ndarray) -> float:
        """The training loss at θ: the last record's when it was taken at this θ with this loss (a cycle's end
        would otherwise evaluate the whole training set once more: 12 s for Zuo Ni's 3106 functions)."""
        assert self.loss is not None
        last = self._last_train
        if last is not None and last[0] is self.loss and np.array_equal(last[1], theta):
            return last[2]
        return float(self.loss(theta, self.train, grad=False).loss)

    def _record(self, theta: np.ndarray, res: LossResult, it: int, n_evals: int, t_atom: float,
                event: str = "iteration") -> IterationRecord:
        st = self.state
        assert self.loss is not None
        self._last_train = (self.loss, np.array(theta, dtype=float, copy=True), float(res.loss))
        st.iteration, train, test = it, self._metrics(theta, res, self.train), None
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
            self.callback_errors += run_callbacks(self.callbacks, potential=pot, basis_config=pot, metrics=train,
                                                  test_metrics=test, current_fit_iteration=it,
                                                  current_fit_cycle=st.cycle, current_ladder_step=st.ladder_step)
        return rec

