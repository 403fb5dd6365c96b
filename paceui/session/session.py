"""``paceui.Session``: basis, dataset, settings and fit state behind every front end (and plain scripts).

>>> s = Session.from_input("input.yaml", path="sessions/cu")      # doctest: +SKIP
>>> s.run(iterations=50)                                         # doctest: +SKIP
>>> s.start(); s.pause(); s.resume(); s.stop()                   # doctest: +SKIP
>>> s.save(); t = Session.load("sessions/cu")                    # doctest: +SKIP

Commands return :class:`~concurrent.futures.Future` objects at once and take effect at the next
iteration boundary; :meth:`Session.run` and :meth:`Session.save` block. Events: :meth:`subscribe`.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from paceui.ace.potential import ACEPotential
from paceui.fit.config import BackendConfig, FitConfig, InputConfig
from paceui.fit.fitter import Fitter, IterationRecord
from paceui.fit.params import ParamMap
from paceui.session import front_ends
from paceui.session.actions import Action, enabled_actions
from paceui.session.analysis import Predictions, predict_set, structures_table
from paceui.session.build import (
    Parts,
    effective_settings,
    move_sources,
    parts_from_input,
    parts_from_objects,
    rebuild_data,
    saved_parts,
    with_cutoff,
)
from paceui.session.curves import ChangeMark
from paceui.session.engine import Engine, RandomizePreview, SessionError
from paceui.session.events import CycleChanged, Event, EventBus, LadderStepChanged, Progress, Subscription
from paceui.session.heartbeat import unclean_exit_message
from paceui.session.host import SessionHost
from paceui.session.learning import ActiveLearning
from paceui.session.lock import SessionLock, lock_folder, released_on_error, relock
from paceui.session.session_data import SessionData
from paceui.session.settings import LOSS_KEYS, ChangeReport, plan_change
from paceui.session.status import Phase, SessionStatus
from paceui.session.store import Snapshot, save_snapshot

DEFAULT_AUTOSAVE = 20  # iterations


@dataclass(frozen=True)
class _View:
    """What readers in other threads see: consistent references taken at an iteration boundary."""

    current: ACEPotential
    pmap: ParamMap | None
    theta: np.ndarray | None
    history: list[dict[str, Any]]
    n_history: int
    best: tuple[float, ACEPotential, np.ndarray | None] | None  # (loss, basis, θ) or (loss, potential, None)


class Session(ActiveLearning):
    """A fitting session; create with :meth:`from_input`, :meth:`from_objects` or :meth:`load`."""

    def __init__(self, parts: Parts, name: str, path: str | os.PathLike[str] | None = None,
                 options: Mapping[str, Any] | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 status: SessionStatus | None = None, total_iterations: int = 0,
                 best: tuple[float, ACEPotential, np.ndarray | None] | None = None,
                 temp_dir: str | None = None, lock: SessionLock | None = None, read_only: bool = False,
                 recovered_from: str | None = None, changes: Any = ()) -> None:
        self.name = name
        self.path: Path | None = None if path is None else Path(path).resolve()
        self.read_only, self.recovered_from = read_only, recovered_from  # see load()
        self.lock: SessionLock | None = lock if lock is not None or read_only else lock_folder(self.path)
        self._settings, self.base_dir, self.target = parts.settings, parts.base_dir, parts.target
        self.data: SessionData = parts.data
        self.fitter: Fitter = parts.fitter
        self._callbacks = parts.callbacks
        self.options: dict[str, Any] = {"autosave_every": DEFAULT_AUTOSAVE, "weight_factors": {}, **(options or {})}
        self.cache_dir, self._temp_dir = cache_dir, temp_dir
        self.total_iterations = total_iterations
        self.changes: list[ChangeMark] = [c if isinstance(c, ChangeMark) else ChangeMark.from_list(c)
                                          for c in changes or ()]
        """The commands that began a curve segment (randomize, extend, settings, …), for curve markers."""
        self.unclean_exit: str | None = None  # set by load(): what the last run lost when it ended uncleanly
        self._best, self._dirty = best, False  # dirty: changed since the last save
        self.events = EventBus()
        self._engine = Engine(SessionHost(self))
        st = self.fitter.state
        self._status = replace(status or SessionStatus(), path=None if self.path is None else str(self.path),
                               ladder=self.fitter.cfg.ladder, target_nfuncs=len(self.target.functions()),
                               total_iterations=total_iterations, ladder_step=st.ladder_step, cycle=st.cycle,
                               iteration=st.iteration, nfuncs=len(self.fitter.current.functions()),
                               best_loss=math.inf if best is None else best[0])
        self._publish()
        self._dirty = status is None  # a loaded session is saved as it is

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_input(cls, input_file: str | os.PathLike[str], *, name: str | None = None,
                   path: str | os.PathLike[str] | None = None, autosave_every: int = DEFAULT_AUTOSAVE,
                   cache_dir: str | os.PathLike[str] | None = None) -> "Session":
        """A session for pacemaker's ``input.yaml`` (basis built, data prepared; nothing fitted yet)."""
        with released_on_error(lock := lock_folder(path)):
            parts = parts_from_input(input_file, cache_dir)
        return cls(parts, name or Path(input_file).resolve().parent.name, path, {"autosave_every": autosave_every},
                   cache_dir, lock=lock)

    @classmethod
    def from_objects(cls, potential: ACEPotential | Mapping[str, Any] | str | os.PathLike[str],
                     data: pd.DataFrame | str | os.PathLike[str] | Sequence[str] | Mapping[str, Any],
                     fit: FitConfig | Mapping[str, Any] | None = None,
                     backend: BackendConfig | Mapping[str, Any] | None = None, *, initial: ACEPotential | None = None,
                     data_config: Mapping[str, Any] | None = None, seed: int = 42, name: str = "session",
                     path: str | os.PathLike[str] | None = None, autosave_every: int = DEFAULT_AUTOSAVE,
                     cache_dir: str | os.PathLike[str] | None = None,
                     callbacks: Sequence[Callable[..., Any]] = ()) -> "Session":
        """A session from Python objects: ``potential`` (target basis, a basis dict as in input.yaml, or a
        file), ``data`` (a DataFrame, file name(s) or a ``data:`` dict; ``data_config`` adds keys such as
        ``reference_energy``, ``test_size``), ``fit`` / ``backend`` (config objects or input.yaml dicts).
        A DataFrame is copied into the session (``source/``); ``callbacks`` are not saved."""
        temp = None
        if isinstance(data, pd.DataFrame) and path is None:
            temp = tempfile.mkdtemp(prefix="paceui-session-")
        folder = Path(temp or path or ".").resolve()
        with released_on_error(lock := lock_folder(path)):
            parts = parts_from_objects(potential, data, fit, backend, initial, data_config, seed, folder, cache_dir,
                                       callbacks)
        return cls(parts, name, path, {"autosave_every": autosave_every}, cache_dir, temp_dir=temp, lock=lock)

    @classmethod
    def load(cls, path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None, *,
             read_only: bool = False, take_over: bool = False) -> "Session":
        """A saved session (see :mod:`paceui.session.store`); it continues exactly where it was saved. Locks the
        folder (SessionLockedError names a live holder) unless ``read_only`` or ``take_over``; a damaged commit
        falls back to the newest intact snapshot (RecoveredSessionWarning, ``recovered_from``)."""
        root = Path(path).resolve()
        with released_on_error(lock := None if read_only else lock_folder(root, take_over, existing=True)):
            parts, kw, got = saved_parts(root)
            s = cls(parts, path=root, cache_dir=cache_dir, lock=lock, read_only=read_only, **kw).restored(got)
        s.unclean_exit = unclean_exit_message(root, s.total_iterations)
        return s

    # ------------------------------------------------------------------ reading (any thread)
    @property
    def status(self) -> SessionStatus:
        """Where the fit stands (taken at the last iteration boundary or command); ``pending`` lists the
        commands submitted and not yet done, at once (a front end shows "pausing…" in the same tick)."""
        pending = self._engine.pending
        return replace(self._status, pending=pending) if pending else self._status

    @property
    def potential(self) -> ACEPotential:
        """The current potential (a copy; save it with ``paceui.save_potential``)."""
        v = self._view
        return v.current.copy() if v.pmap is None or v.theta is None else v.pmap.apply(v.current, v.theta)

    @property
    def best_potential(self) -> ACEPotential | None:
        """The potential of the lowest train loss recorded so far (since the last change of the loss)."""
        b = self._view.best
        if b is None:
            return None
        return b[1].copy() if b[2] is None else ParamMap.from_potential(b[1]).apply(b[1], b[2])

    @property
    def history(self) -> pd.DataFrame:
        """Metrics of every record (rows: iterations and cycle starts; eV, eV/Å; see FitMetrics)."""
        v = self._view
        return pd.DataFrame(v.history[:v.n_history])

    @property
    def settings(self) -> dict[str, Any]:
        """The settings as pacemaker input (a copy; change them with :meth:`change_settings`)."""
        return copy.deepcopy(self._settings)

    @property
    def actions(self) -> list[Action]:
        """The actions a front end should offer now (see :mod:`paceui.session.actions`)."""
        return enabled_actions(self.status)

    def structures(self, subset: str = "all") -> pd.DataFrame:
        """The dataset, one row per structure (see :func:`paceui.session.analysis.structures_table`)."""
        return structures_table(self.data, subset)  # type: ignore[arg-type]

    def predictions(self, subset: str = "train", best: bool = False, gamma: bool = True) -> Predictions:
        """The current (or best) potential on a set: errors, parity arrays (:class:`Predictions`), γ; blocks."""
        pot = (self.best_potential if best else None) or self.potential
        return self._with_gamma(predict_set(pot, self.data, subset), subset, gamma and not best)  # type: ignore

    def subscribe(self, callback: Callable[[Event], Any] | None = None, *, kinds: Sequence[str] | None = None,
                  maxlen: int = 10_000) -> Subscription:
        """Receive events (see :mod:`paceui.session.events`)."""
        return self.events.subscribe(callback, kinds=kinds, maxlen=maxlen)

    def preview_settings(self, **changes: Any) -> ChangeReport:
        """What :meth:`change_settings` would do (validated; nothing changes)."""
        return plan_change(self._settings, self.options, changes, self.target)[2]

    # ------------------------------------------------------------------ commands (any thread)
    def start(self, iterations: int | None = None) -> Future[SessionStatus]:
        """Fit in the background (``iterations`` more, or to the end); the Future resolves when it halts."""
        halt: Future[SessionStatus] = Future()

        def failed(f: Future[Any]) -> None:
            if f.exception() is not None and not halt.done():
                halt.set_exception(f.exception())  # type: ignore[arg-type]
        self._engine.submit("start", iterations, halt).add_done_callback(failed)
        return halt

    def run(self, iterations: int | None = None, timeout: float | None = None) -> SessionStatus:
        """Fit ``iterations`` more iterations (or to the end), blocking; raises SessionError on an error."""
        self._engine.check_not_engine_thread("run")
        halt = self.start(iterations)
        try:
            status = halt.result(timeout)
        except KeyboardInterrupt:
            self.stop().result()
            raise
        if status.phase is Phase.ERROR:
            raise SessionError(f"the fit failed: {status.error}")
        return status

    def pause(self) -> Future[bool]:
        """Halt at the next boundary or, inside a long iteration, at its next loss evaluation (autosaves; resume redoes
        that iteration exactly); True if a running fit was paused."""
        return self._engine.submit("pause")

    def resume(self) -> Future[bool]:
        """Continue a paused (or stopped) fit exactly."""
        return self._engine.submit("start", None, None, resume=True)

    def stop(self) -> Future[bool]:
        """End the run at the next boundary (autosaves); start() continues it later."""
        return self._engine.submit("stop")

    def randomize(self, sigma: float = 0.1, relative: bool = True, seed: int | None = None,
                  what: str = "all") -> Future[str]:
        """Gaussian noise on the trainable parameters (σ relative to |θ| (floor 0.01), or absolute);
        ``what``: all, func or radial; the optimizer restarts as a new cycle."""
        return self._engine.submit("randomize", sigma, relative, seed, what)

    def preview_randomize(self, sigma: float = 0.1, relative: bool = True, seed: int | None = None,
                          what: str = "all") -> Future[RandomizePreview]:
        """What :meth:`randomize` with these arguments would do, without doing it: the train loss before
        and after the very same noise (one loss evaluation each) and the relative parameter change."""
        return self._engine.submit("preview_randomize", sigma, relative, seed, what)

    def undo(self) -> Future[str]:
        """Go back to the fit as it was before the last :meth:`randomize` or :meth:`extend_ladder` (one
        level; the iterations since are dropped; ``status.undo`` says what it would take back)."""
        return self._engine.submit("undo")

    def extend_ladder(self, n: int | None = None) -> Future[int]:
        """Add ``n`` functions per block from the target (default: the next ladder step); a new ladder step."""
        return self._engine.submit("extend_ladder", n)

    def change_settings(self, changes: Mapping[str, Any] | None = None, /, **kw: Any) -> Future[ChangeReport]:
        """Change settings (see :func:`paceui.session.settings.plan_change`); the report says what it did."""
        return self._engine.submit("change_settings", {**(changes or {}), **kw})

    def save(self, path: str | os.PathLike[str] | None = None, timeout: float | None = None) -> Path:
        """Save (to ``path``, else to the session's folder) at the next boundary; blocks; returns the folder."""
        self._engine.check_not_engine_thread("save")
        return self.save_async(path).result(timeout)

    def save_async(self, path: str | os.PathLike[str] | None = None) -> Future[Path]:
        """:meth:`save` without waiting: the Future gets the folder."""
        return self._engine.submit("save", path)

    def save_potential(self, path: str | os.PathLike[str], best: bool = False, repulsion: bool = True) -> Path:
        """Write the current (or best) potential as pacemaker YAML, atomically (a ``.yace`` path: LAMMPS format);
        with ``fit: repulsion: auto`` the ZBL core repulsion is added as ``paceui fit`` adds it to its output."""
        from paceui.ace.yace import save_yace
        from paceui.ace.yaml_io import save_potential
        from paceui.fit.repulsion import add_zbl_repulsion

        pot = self.best_potential if best else self.potential
        if pot is None:
            raise SessionError("no potential recorded yet: fit at least one iteration")
        if repulsion and self.fitter.cfg.repulsion == "auto":
            pot = add_zbl_repulsion(pot, self.data.prepared.train_neighbors)
        p = Path(path)
        return save_yace(pot, p) if p.suffix == ".yace" else save_potential(pot, p)

    def command(self, name: str, /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Send engine command ``name`` (a row of the action table without a method of its own); the Future
        gets its handler's result (docs/session.md (S2))."""
        return self._engine.submit(name, *args, **kwargs)

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn()`` in the fit thread at the next boundary (consistent access to ``fitter``)."""
        return self._engine.submit("call", fn)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no fit runs and no command is pending (False on timeout)."""
        self._engine.check_not_engine_thread("wait")
        return self._engine.wait_idle(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop a running fit (autosaving it) and release the session."""
        self._engine.close(timeout)
        self.fitter.close()  # the Dask evaluator's shards and cluster, if any
        if self.lock is not None:
            self.lock.release()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self.name!r} {self._status.describe()}>"

    def dashboard(self, **kw: Any) -> Any:
        """The widgets of the front end that attached itself (``import paceui.notebook``: a
        :class:`paceui.notebook.Dashboard`) to steer and watch this session."""
        return front_ends.view(self, **kw)

    def _repr_mimebundle_(self, **kw: Any) -> Any:  # display(session): the attached front end's view, or repr
        return front_ends.mimebundle(self, **kw)

    # ------------------------------------------------------------------ engine thread only
    def _emit(self, ev: Event) -> None:
        self.events.emit(ev)

    def _set_status(self, **kw: Any) -> None:
        self._status = replace(self._status, **kw)

    def _publish(self) -> None:
        f, self._dirty = self.fitter, True
        self._view = _View(f.current, None if f.loss is None else f.loss.pmap, f.theta, f.state.history,
                           len(f.state.history), self._best)

    def _on_record(self, rec: IterationRecord) -> None:
        f, old = self.fitter, self._status
        self.total_iterations += rec.event == "iteration"
        if rec.loss < (math.inf if self._best is None else self._best[0]) and f.theta is not None:
            self._best = (rec.loss, f.current, f.theta)
        self._publish()
        self._status = replace(old, total_iterations=self.total_iterations, ladder_step=rec.ladder_step,
                               cycle=rec.cycle, iteration=rec.iteration, loss=rec.loss, nfuncs=rec.nfuncs,
                               best_loss=self._best[0] if self._best else math.inf, active_set=self._recheck(old))
        if self.events.n_subscribers:
            if rec.ladder_step != old.ladder_step:
                self._emit(LadderStepChanged(rec.ladder_step, rec.nfuncs))
            if rec.cycle != old.cycle or rec.ladder_step != old.ladder_step:
                self._emit(CycleChanged(rec.ladder_step, rec.cycle))
            self._emit(Progress(self.total_iterations, rec.ladder_step, rec.cycle, rec.iteration, rec.loss,
                                rec.nfuncs, rec.train, rec.test, rec.event == "initial"))

    def _apply_settings(self, changes: Mapping[str, Any]) -> ChangeReport:
        new, opts, report = plan_change(self._settings, self.options, changes, self.target)
        if report.empty:
            return report
        cfg = InputConfig.from_dict(new, source="session settings", base_dir=self.base_dir)
        keys = {k for k, _, _ in report.changes}
        target, data, fitter = self.target, self.data, self.fitter
        if report.rebuilds_neighbors:
            target = with_cutoff(target, cfg.cutoff)
        if report.prepares_data:
            data = rebuild_data(new, opts, self.base_dir, target, data, self.cache_dir, keys == {"weight_factors"})
        new_loss = report.prepares_data or bool(keys & set(LOSS_KEYS))
        sd = fitter.state_dict()  # the fit continues from this state under the new settings
        fitter.update()  # closes the old fitter's optimizer
        if report.rebuilds_neighbors:
            sd["current"] = with_cutoff(sd["current"], cfg.cutoff)
        if (cs := sd["cycle_state"]) is not None:
            if new_loss:  # old losses are not comparable any more
                cs["best_loss"] = cs["best_theta"] = None
                sd["best_loss"] = math.inf
            if "fit_cycles" in keys:
                cs["n_cycles"] = max(cfg.fit.fit_cycles, int(sd["cycle"]) + 1)
        old, fitter = fitter, Fitter.from_state_dict(sd, target, data.train, cfg.fit, data.test, cfg.backend,
                                                     callbacks=self._callbacks)
        old.close()
        if report.restarts_optimizer and sd["phase"] != "start":
            fitter.restart(warm="warm_start" in keys)  # switched on: the new cycle starts from the linear solve
        if new_loss and self._best is not None:
            self._best = (math.inf, *self._best[1:])
        self._settings, self.options, self.target, self.data, self.fitter = new, opts, target, data, fitter
        self._status = replace(self._status, ladder=cfg.fit.ladder)
        self._publish()
        return report

    def _write(self, path: str | os.PathLike[str] | None) -> tuple[Path, int]:
        root = Path(path).resolve() if path is not None else self.path
        if root is None:
            raise SessionError("this session has no folder yet: save it once with save(path), "
                               f"e.g. save('sessions/{self.name}')")
        if self.read_only and root == self.path:
            raise SessionError(f"{root}: this session was opened read-only; save it elsewhere with save(path)")
        self.lock = relock(self.lock, root)
        if (base := move_sources(self._settings["data"], self.base_dir, root)) != self.base_dir:
            self.base_dir = base
            if self._temp_dir:  # the DataFrame given to from_objects now lives in the session folder
                shutil.rmtree(self._temp_dir, ignore_errors=True)
                self._temp_dir = None
        sd = self.fitter.state_dict()
        history = sd.pop("history")
        pots = {"potential": self.fitter.potential(), "target_potential": self.target}
        if (best := self.best_potential) is not None:
            pots["best_potential"] = best
        st = self._status
        doc = {"name": self.name, "base_dir": "." if self.base_dir == str(root) else self.base_dir,
               "status": {"phase": st.phase.value, "total_iterations": self.total_iterations,
                          "ladder_step": st.ladder_step, "cycle": st.cycle, "iteration": st.iteration,
                          "loss": st.loss, "best_loss": st.best_loss, "nfuncs": st.nfuncs,
                          "target_nfuncs": st.target_nfuncs, "stop_reason": st.stop_reason,
                          "stop_message": st.stop_message, "error": st.error},
               "changes": [c.as_list() for c in self.changes],
               "settings": self._settings, "options": self.options, "effective": effective_settings(self._settings)}
        gen = save_snapshot(root, Snapshot(doc, sd, history, pots, self._trust_doc(doc)), self.data)
        self.path, self._dirty = root, False
        self._set_status(path=str(root), generation=gen)
        return root, gen
