"""The controller of a session: one background thread that fits and applies commands between iterations.

Commands (start, pause, resume, stop, randomize, extend_ladder, change_settings, save, and the
active-learning ones: compute_active_set, gamma, load_candidates, select_candidates, add_structures) are queued
from any thread and return a :class:`~concurrent.futures.Future` at once. The engine thread takes
them at the next iteration boundary, runs the fit
while it is running, and exits when there is nothing to do; it alone changes the session's fit
state. Pause, stop, save and the changing commands do not wait for a long iteration's end: they
abandon it at its next loss evaluation (:class:`~paceui.fit.fitter.FitInterrupted`; own optimizers, whose
state is restored to the iteration's start, so the fit continues bit-identically; others finish it).
Other threads read what it publishes at each boundary (status, parameters, history length).
An exception in an iteration or a command becomes an :class:`~paceui.session.events.Failed` event
(and, for an iteration, the ``error`` stop reason), never an exception in the caller's thread.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from paceui.ace.ladder import actual_ladder_step
from paceui.errors import SessionError
from paceui.fit.fitter import FitInterrupted, Fitter, IterationRecord
from paceui.fit.stages import FIRST_EVALUATION, FIRST_ITERATION
from paceui.session.curves import ChangeMark, change_label
from paceui.session.events import (
    CallbackFailed,
    Changed,
    Failed,
    FitStarted,
    Paused,
    Resumed,
    Saved,
    StageChanged,
    Stopped,
)
from paceui.session.heartbeat import Heartbeat
from paceui.session.settings import ChangeReport
from paceui.session.status import STOP_MESSAGES, Phase, SessionStatus

if TYPE_CHECKING:
    from paceui.session.host import EngineHost


@dataclass(frozen=True)
class _UndoPoint:
    """The fit as it was before the last randomize / extend (what :meth:`Engine._cmd_undo` goes back to)."""

    label: str
    fit_state: dict[str, Any]
    total_iterations: int
    best: Any
    status: SessionStatus
    n_changes: int


@dataclass(frozen=True)
class RandomizePreview:
    """What :meth:`~paceui.session.Session.randomize` with the same arguments would do (exactly: the
    same noise): train loss before and after, and the relative change of the noised parameters
    (‖Δθ‖ / ‖θ‖ over them)."""

    sigma: float
    relative: bool
    n_params: int
    loss_before: float
    loss_after: float
    relative_change: float

    def describe(self) -> str:
        factor = self.loss_after / self.loss_before if self.loss_before > 0 else math.inf
        return (f"σ={self.sigma:g} ({'relative' if self.relative else 'absolute'}) on {self.n_params} parameters: "
                f"loss {self.loss_before:.4g} → {self.loss_after:.4g} (×{factor:.3g}), "
                f"parameters change by {100 * self.relative_change:.3g}%")


@dataclass
class _Command:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)


class Engine:
    """Command queue and fit thread of one :class:`~paceui.session.Session`, which it sees only through its
    :class:`~paceui.session.host.EngineHost` (``s``)."""

    def __init__(self, host: "EngineHost") -> None:
        self.s: EngineHost = host
        self._n_callback_errors = len(host.fitter.callback_errors)  # those reported before (a loaded session)
        self._cv = threading.Condition()
        self._queue: deque[_Command] = deque()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._running = False
        self._target: int | None = None          # total_iterations at which run(N) halts
        self._halts: list[Future[SessionStatus]] = []
        self._closed = False
        self.commands_done = 0                   # commands taken from the queue (for tests)
        self.interrupted = 0                     # iterations abandoned for a command (for tests)
        self._pending: Counter[str] = Counter()  # user commands submitted and not yet done (status.pending)
        self._pending_t: tuple[str, ...] = ()
        self._iterated = False                   # an optimizer iteration was done by this engine
        self._heartbeat: Heartbeat | None = None
        self._undo: _UndoPoint | None = None
        self._interrupt = threading.Event()      # the fitter's interrupt (given to each fitter the session has)

    INTERRUPTING = frozenset({"pause", "stop", "close", "save", "randomize", "extend_ladder", "change_settings"})
    """Commands that abandon a running iteration at its next loss evaluation (own optimizers; the fit
    continues exactly from the boundary before it) instead of waiting for its end."""

    USER_COMMANDS = frozenset({"start", "pause", "resume", "stop", "save", "randomize", "extend_ladder",
                               "change_settings", "close", "undo"})

    @property
    def pending(self) -> tuple[str, ...]:
        """User commands queued or running (in submission order of their names); read by any thread."""
        return self._pending_t

    # ------------------------------------------------------------------ any thread
    def submit(self, name: str, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue command ``name``; its Future gets the result (or the exception) once it has run."""
        cmd = _Command(name, args, kwargs)
        with self._cv:
            if self._closed:
                cmd.future.set_exception(SessionError("the session is closed"))
                return cmd.future
            self._queue.append(cmd)
            if name in self.USER_COMMANDS and not kwargs.get("autosave"):
                self._pending[name] += 1
                self._pending_t = tuple(self._pending)
            self._idle.clear()
            if name in self.INTERRUPTING and self._running and not kwargs.get("autosave"):
                self._interrupt.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"paceui-session-{self.s.name}",
                                                daemon=True)
                self._thread.start()
        return cmd.future

    def check_not_engine_thread(self, what: str) -> None:
        """Blocking calls from an event callback (the engine thread) would wait for themselves."""
        if threading.current_thread() is self._thread:
            raise SessionError(f"{what}() blocks until the fit thread has done it, so it cannot be called from "
                               f"an event callback (which runs in that thread); use the Future-returning commands")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no fit runs and no command is queued (False on timeout)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop a running fit, save what is not saved yet (with a folder), and refuse further commands."""
        self.submit("close")
        self.wait_idle(timeout)
        with self._cv:
            self._closed = True

    # ------------------------------------------------------------------ engine thread
    def _loop(self) -> None:
        try:
            while True:
                with self._cv:
                    cmds = list(self._queue)
                    self._queue.clear()
                    self._interrupt.clear()  # set by these commands: they run now
                    if not cmds and not self._running:
                        self._thread = None
                        self._idle.set()
                        return
                for cmd in cmds:
                    self._execute(cmd)
                if self._running:
                    self._advance(run=True)
        except BaseException as exc:  # a bug or an interpreter exit: never leave callers waiting
            with self._cv:
                self._thread, self._running, pending = None, False, list(self._queue)
                self._queue.clear()
                self._idle.set()
            for f in [c.future for c in pending] + self._halts:
                if not f.done():
                    f.set_exception(SessionError(f"the session's fit thread failed: {exc!r}"))
            self._halts = []
            raise

    def _execute(self, cmd: _Command) -> None:
        try:
            handler = self.HANDLERS.get(cmd.name)
            if handler is None:
                raise SessionError(f"no command {cmd.name!r}; known: {', '.join(self.HANDLERS)}")
            result = handler(self, *cmd.args, **cmd.kwargs)
        except Exception as exc:
            self.s.emit(Failed(f"{cmd.name}: {exc}", traceback.format_exc()))
            cmd.future.set_exception(exc)
        else:
            cmd.future.set_result(result)
        finally:
            if cmd.name in self.USER_COMMANDS and not cmd.kwargs.get("autosave"):
                with self._cv:
                    self._pending[cmd.name] -= 1
                    if self._pending[cmd.name] <= 0:
                        del self._pending[cmd.name]
                    self._pending_t = tuple(self._pending)
        self.commands_done += 1

    def _advance(self, run: bool = False) -> IterationRecord | None:
        """One fitter step with its bookkeeping; ``run``: part of a running fit (halts at its end)."""
        s = self.s
        stage = self._stage()
        if stage:
            s.set_status(stage=stage, stage_since=time.monotonic(), stage_done=None, stage_total=None)
            s.emit(StageChanged(stage))
        s.fitter.interrupt, s.fitter.interruptible = self._interrupt, True
        try:
            rec = s.fitter.step()
        except FitInterrupted:  # a command is queued: the loop runs it at this (earlier) boundary
            if stage:
                s.set_status(stage="")
            self.interrupted += 1
            return None
        except Exception as exc:
            msg = f"{type(exc).__name__}: {exc}"
            s.set_status(stage="")
            s.emit(Failed(msg, traceback.format_exc()))
            self._halt(Phase.ERROR, "error", f"{STOP_MESSAGES['error']}: {msg}", error=msg)
            return None
        if stage:
            s.set_status(stage="")
            s.emit(StageChanged("", time.monotonic() - s.status.stage_since))
        if rec is not None and rec.event == "iteration":
            self._iterated = True
        if rec is None:  # the fit ended on its best cycle's parameters
            st = s.fitter.state
            s.publish()
            self._halt(Phase.FINISHED, st.stop_reason or "finished", st.stop_message, finished=True)
            return None
        s.record(rec)
        if s.path is not None and self._running:
            if self._heartbeat is None or self._heartbeat.file.parent != s.path:
                self._heartbeat = Heartbeat(s.path)
            self._heartbeat.beat(s.total_iterations)
        errs = s.fitter.callback_errors
        for msg in errs[min(getattr(self, "_n_callback_errors", 0), len(errs)):]:
            s.emit(CallbackFailed(msg))
        self._n_callback_errors = len(errs)
        every = s.autosave_every
        if run and self._target is not None and s.total_iterations >= self._target:
            self._halt(Phase.STOPPED, "iterations", STOP_MESSAGES["iterations"])
        elif rec.event == "iteration" and every and s.total_iterations % every == 0:
            self._autosave()
        return rec

    def _stage(self) -> str:
        """The cold-start stage the next fitter step is in ('' once the fit iterates)."""
        if self.s.fitter.loss is None:
            return FIRST_EVALUATION
        if not self._iterated and self._running:
            return FIRST_ITERATION
        return ""

    def _halt(self, phase: Phase, reason: str | None, message: str, finished: bool = False,
              error: str | None = None) -> None:
        """Leave the running state (or record an end while halted): event, autosave, wake run() callers."""
        self._running = False
        if phase is not Phase.PAUSED:
            self._target = None
        s = self.s
        s.set_status(phase=phase, stop_reason=reason, stop_message=message, error=error)
        if phase is Phase.PAUSED:
            s.emit(Paused(s.total_iterations))
        else:
            s.emit(Stopped(reason or "", message, s.total_iterations, finished))
        self._autosave()
        halts, self._halts = self._halts, []
        for f in halts:
            f.set_result(s.status)

    def _autosave(self) -> None:
        if self.s.path is None:
            return
        try:
            self._cmd_save(None, autosave=True)
        except Exception as exc:  # a full disk must not stop the fit: report it
            self.s.emit(Failed(f"autosave to {self.s.path} failed: {exc}", traceback.format_exc()))

    def _reopened(self) -> None:
        """After a change that reopened a finished (or failed) fit: halted, start() continues."""
        if self.s.status.phase in (Phase.FINISHED, Phase.ERROR):
            self.s.set_status(phase=Phase.STOPPED, stop_reason=None, error=None,
                               stop_message="the fit was changed; start() continues it")

    def _ensure_started(self) -> None:
        """Make the fit's first record (builds the first ladder step) so parameters exist."""
        if self.s.fitter.loss is None:
            self._advance()
            if self.s.fitter.loss is None:
                raise SessionError("the fit could not start (see the error event)")

    # ------------------------------------------------------------------ commands (engine thread)
    def _cmd_start(self, iterations: int | None = None, halt: Future[SessionStatus] | None = None,
                   resume: bool = False) -> bool:
        s = self.s
        if iterations is not None and (isinstance(iterations, bool) or int(iterations) < 0):
            raise SessionError(f"iterations must be a count >= 0, got {iterations!r}")
        phase = s.status.phase
        if resume and phase is Phase.READY and s.total_iterations == 0 and s.fitter.loss is None:
            raise SessionError("resume(): this session was never started, so there is nothing to resume; "
                               "call start()")
        if halt is not None:
            self._halts.append(halt)
        if iterations is not None:
            self._target = s.total_iterations + int(iterations)
        elif not (resume and phase is Phase.PAUSED):
            self._target = None
        if self._running:
            return False
        if phase is Phase.FINISHED:
            s.fitter.restart()  # a finished fit goes on: a fresh optimizer from the current parameters
        self._running = True
        s.set_status(phase=Phase.RUNNING, stop_reason=None, stop_message="", error=None)
        s.emit(Resumed(s.total_iterations) if phase is Phase.PAUSED else
                FitStarted(s.total_iterations, s.status.ladder_step, s.status.cycle))
        if self._target is not None and s.total_iterations >= self._target:
            self._halt(Phase.STOPPED, "iterations", STOP_MESSAGES["iterations"])
        return True

    def _cmd_pause(self) -> bool:
        if not self._running:
            return False
        self._halt(Phase.PAUSED, None, "paused")
        return True

    def _cmd_stop(self) -> bool:
        if not self._running and self.s.status.phase is not Phase.PAUSED:
            return False
        self._halt(Phase.STOPPED, "user", STOP_MESSAGES["user"])
        return True

    def _noised(self, sigma: float, relative: bool, seed: int | None, what: str, rng: Any = None
                ) -> tuple[np.ndarray, int]:
        """θ with the noise of randomize (from ``rng``, default the fitter's or ``seed``'s) and the count of
        noised parameters."""
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
            raise SessionError(f"sigma must be a finite number >= 0, got {sigma!r}")
        if what not in ("all", "func", "radial"):
            raise SessionError(f"what must be 'all', 'func' or 'radial', got {what!r}")
        self._ensure_started()
        f = self.s.fitter
        assert f.loss is not None and f.theta is not None
        pmap = f.loss.pmap
        mask = pmap.trainable_mask(f.cfg.trainable_parameters)
        if what != "all":
            mask &= pmap.func_mask() if what == "func" else ~pmap.func_mask()
        rng = rng if rng is not None else f.rng if seed is None else np.random.default_rng(seed)
        theta = f.theta.copy()
        noise = rng.normal(size=int(mask.sum())) * float(sigma)
        theta[mask] += noise * np.maximum(np.abs(theta[mask]), 1e-2) if relative else noise
        return theta, int(mask.sum())

    def _cmd_preview_randomize(self, sigma: float, relative: bool = True, seed: int | None = None,
                               what: str = "all") -> RandomizePreview:
        f = self.s.fitter
        self._ensure_started()
        rng = np.random.default_rng(seed) if seed is not None else np.random.default_rng()
        if seed is None:
            rng.bit_generator.state = f.rng.bit_generator.state  # the very noise randomize() would draw
        theta, n = self._noised(sigma, relative, seed, what, rng)
        assert f.loss is not None and f.theta is not None
        before = f.loss(f.theta, f.train, grad=False).loss
        after = f.loss(theta, f.train, grad=False).loss
        changed = theta != f.theta
        norm = float(np.linalg.norm(f.theta[changed])) if changed.any() else 0.0
        rel = float(np.linalg.norm((theta - f.theta)[changed])) / norm if norm > 0 else 0.0
        return RandomizePreview(float(sigma), bool(relative), n, float(before), float(after), rel)

    def _remember(self, label: str) -> None:
        """Keep the fit as it is now for :meth:`_cmd_undo` (one level)."""
        s = self.s
        self._undo = _UndoPoint(label, s.fitter.state_dict(), s.total_iterations, s.best, s.status,
                                len(s.changes))
        s.set_status(undo=label)

    def _forget_undo(self) -> None:
        self._undo = None
        self.s.set_status(undo="")

    def _mark(self, action: str, label: str) -> None:
        """A curve marker at the initial record the command just made."""
        hist = self.s.fitter.state.history
        if hist and hist[-1].get("iteration") == 0:
            self.s.changes.append(ChangeMark(len(hist) - 1, action, label))

    def _cmd_randomize(self, sigma: float, relative: bool = True, seed: int | None = None,
                       what: str = "all") -> str:
        s = self.s
        self._ensure_started()
        f = s.fitter
        theta, n = self._noised(sigma, relative, seed, what)
        label = change_label("randomize", sigma)
        self._remember(label)
        f.restart(theta=theta)
        self._reopened()
        self._advance()
        self._mark("randomize", label)
        msg = (f"{'relative' if relative else 'absolute'} noise σ={sigma:g} on {n} {what} parameters"
               f"{'' if seed is None else f' (seed {seed})'}; the optimizer restarts as cycle {f.state.cycle}")
        s.emit(Changed("randomize", msg))
        return msg

    def _cmd_undo(self) -> str:
        """Back to the fit as it was before the last randomize / extend (the iterations since are dropped)."""
        s, u = self.s, self._undo
        if u is None:
            raise SessionError("nothing to undo: undo goes back over the last randomize or extend_ladder "
                               "(a settings change or added structures forget it)")
        if self._running:
            raise SessionError("undo: pause or stop the fit first")
        old = s.fitter
        old.update()  # closes its optimizer
        new = Fitter.from_state_dict(u.fit_state, old.target, old.train, old.cfg, old.test, old.backend,
                                     callbacks=old.callbacks, on_potential=old.on_potential)
        new.structure_names = old.structure_names
        s.restore(new, u.total_iterations, u.best)
        old.close()
        del s.changes[u.n_changes:]
        st = u.status
        phase = Phase.READY if st.phase is Phase.READY else Phase.STOPPED
        s.set_status(phase=phase, total_iterations=u.total_iterations, ladder_step=st.ladder_step,
                      cycle=st.cycle, iteration=st.iteration, loss=st.loss, nfuncs=st.nfuncs,
                      best_loss=st.best_loss, stop_reason=None, error=None, undo="",
                      stop_message=f"undid {u.label}; start() continues from there")
        self._undo = None
        s.publish()
        msg = f"undid {u.label}: back to total iteration {u.total_iterations} ({st.nfuncs} functions)"
        s.emit(Changed("undo", msg))
        return msg

    def _cmd_extend_ladder(self, n: int | None = None) -> int:
        s = self.s
        self._ensure_started()
        f = s.fitter
        have, total = len(f.current.functions()), len(f.target.functions())
        if have >= total:
            raise SessionError(f"the basis already has all {total} target functions")
        if n is None:
            n = actual_ladder_step(f.cfg.ladder_step, have, total) if f.cfg.ladder else total - have
        if isinstance(n, bool) or int(n) <= 0:
            raise SessionError(f"n must be a positive number of functions, got {n!r}")
        self._remember(f"extend (+{int(n)})")
        f.restart(extend=int(n))
        self._reopened()
        self._advance()
        added = len(f.current.functions()) - have
        self._mark("extend_ladder", change_label("extend_ladder", added))
        if self._undo is not None:
            self._undo = replace(self._undo, label=change_label("extend_ladder", added))
            s.set_status(undo=self._undo.label)
        s.emit(Changed("extend_ladder", f"added {added} functions: {have} → {have + added} of {total}; "
                                         f"ladder step {f.state.ladder_step} starts with a fresh optimizer"))
        return added

    def _cmd_change_settings(self, changes: dict[str, Any]) -> ChangeReport:
        report = self.s.apply_settings(changes)
        if not report.empty:
            self._forget_undo()  # the saved state was of other settings
        if report.restarts_optimizer:
            self._reopened()
            self._advance()
            self._mark("settings", change_label("settings", report.changes))
        if not report.empty:
            self.s.emit(Changed("settings", str(report)))
        return report

    def _cmd_compute_active_set(self, kind: str, tol: float, max_iters: int, memory_limit_mb: float) -> Any:
        state = self.s.compute_active_set(kind, tol, max_iters, memory_limit_mb)
        self.s.emit(Changed("active_set", state.describe()))
        return state

    def _cmd_gamma(self, subset: str) -> Any:
        table = self.s.gamma(subset)
        self.s.emit(Changed("gamma", table.describe()))
        return table

    def _cmd_load_candidates(self, source: Any) -> int:
        n = self.s.load_candidates(source)
        self.s.emit(Changed("candidates", f"{n} candidate structures loaded"))
        return n

    def _cmd_select_candidates(self, max_structures: int | None) -> Any:
        table = self.s.select_candidates(max_structures)
        g = table["gamma"].to_numpy(float)
        top = f"; γ {np.nanmax(g):.4g} … {np.nanmin(g):.4g}" if len(g) and np.isfinite(g).any() else ""
        self.s.emit(Changed("select", f"D-optimal selection: {len(table)} of {self.s.status.n_candidates} "
                                       f"candidates{top}"))
        return table

    def _cmd_add_structures(self, structures: Any, weight: float | None) -> int:
        added, msg = self.s.add_structures(structures, weight)
        self._forget_undo()
        self._reopened()
        self._advance()
        self._mark("add_structures", f"+{added} structures")
        self.s.emit(Changed("add_structures", msg))
        return added

    def _cmd_save(self, path: Any = None, autosave: bool = False) -> Any:
        s = self.s
        out, gen = s.write(path)
        s.emit(Saved(str(out), gen, s.total_iterations, autosave))
        return out

    def _cmd_close(self) -> None:
        if not self._cmd_stop() and self.s.dirty:
            self._autosave()
        if self._heartbeat is not None or (self.s.unclean_exit and self.s.path is not None):
            (self._heartbeat or Heartbeat(self.s.path)).clear()  # type: ignore[arg-type]  # a clean end

    def _cmd_call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the engine thread at a boundary (reads consistent with the fit)."""
        return fn()

    HANDLERS: dict[str, Callable[..., Any]] = {
        "start": _cmd_start, "pause": _cmd_pause, "stop": _cmd_stop, "randomize": _cmd_randomize,
        "extend_ladder": _cmd_extend_ladder, "change_settings": _cmd_change_settings, "save": _cmd_save,
        "close": _cmd_close, "call": _cmd_call, "compute_active_set": _cmd_compute_active_set, "gamma": _cmd_gamma,
        "load_candidates": _cmd_load_candidates, "select_candidates": _cmd_select_candidates,
        "add_structures": _cmd_add_structures, "undo": _cmd_undo, "preview_randomize": _cmd_preview_randomize}
    """The commands :meth:`submit` accepts, each with the handler that runs it on the engine thread (called with
    the engine); an action of :data:`paceui.session.ACTIONS` is a row there and its handler here."""
