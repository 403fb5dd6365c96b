"""The controller of a session: one background thread that fits and applies commands between iterations.

Commands (start, pause, resume, stop, randomize, extend_ladder, change_settings, save, and the
active-learning ones: compute_active_set, gamma, load_candidates, select_candidates, add_structures) are queued
from any thread and return a :class:`~concurrent.futures.Future` at once. The engine thread takes
them at the next iteration boundary (so pause takes effect within one iteration), runs the fit
while it is running, and exits when there is nothing to do; it alone changes the session's fit
state. Other threads read what it publishes at each boundary (status, parameters, history length).
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from paceui.ace.ladder import actual_ladder_step
from paceui.errors import SessionError
from paceui.fit.fitter import IterationRecord
from paceui.fit.stages import FIRST_EVALUATION, FIRST_ITERATION
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
        self._pending: Counter[str] = Counter()  # user commands submitted and not yet done (status.pending)
        self._pending_t: tuple[str, ...] = ()
        self._iterated = False                   # an optimizer iteration was done by this engine
        self._heartbeat: Heartbeat | None = None

    USER_COMMANDS = frozenset({"start", "pause", "resume", "stop", "save", "randomize", "extend_ladder",
                               "change_settings", "close"})

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
        try:
            rec = s.fitter.step()
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

    def _cmd_randomize(self, sigma: float, relative: bool = True, seed: int | None = None,
                       what: str = "all") -> str:
        s = self.s
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
            raise SessionError(f"sigma must be a finite number >= 0, got {sigma!r}")
        if what not in ("all", "func", "radial"):
            raise SessionError(f"what must be 'all', 'func' or 'radial', got {what!r}")
        self._ensure_started()
        f = s.fitter
        assert f.loss is not None and f.theta is not None
        pmap = f.loss.pmap
        mask = pmap.trainable_mask(f.cfg.trainable_parameters)
        if what != "all":
            mask &= pmap.func_mask() if what == "func" else ~pmap.func_mask()
        rng = f.rng if seed is None else np.random.default_rng(seed)
        theta = f.theta.copy()
        noise = rng.normal(size=int(mask.sum())) * float(sigma)
        theta[mask] += noise * np.maximum(np.abs(theta[mask]), 1e-2) if relative else noise
        f.restart(theta=theta)
        self._reopened()
        self._advance()
        msg = (f"{'relative' if relative else 'absolute'} noise σ={sigma:g} on {int(mask.sum())} {what} parameters"
               f"{'' if seed is None else f' (seed {seed})'}; the optimizer restarts as cycle {f.state.cycle}")
        s.emit(Changed("randomize", msg))
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
        f.restart(extend=int(n))
        self._reopened()
        self._advance()
        added = len(f.current.functions()) - have
        s.emit(Changed("extend_ladder", f"added {added} functions: {have} → {have + added} of {total}; "
                                         f"ladder step {f.state.ladder_step} starts with a fresh optimizer"))
        return added

    def _cmd_change_settings(self, changes: dict[str, Any]) -> ChangeReport:
        report = self.s.apply_settings(changes)
        if report.restarts_optimizer:
            self._reopened()
            self._advance()
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
        self._reopened()
        self._advance()
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
        "add_structures": _cmd_add_structures}
    """The commands :meth:`submit` accepts, each with the handler that runs it on the engine thread (called with
    the engine); an action of :data:`paceui.session.ACTIONS` is a row there and its handler here."""
