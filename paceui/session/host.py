"""The session as its engine sees it: the one narrow interface between the engine thread and the session.

The engine (:mod:`paceui.session.engine`) reads and changes the session only through :class:`EngineHost`; a
:class:`SessionHost` gives a :class:`~paceui.session.Session` that interface (the session's own privates stay
behind it). ``tests/test_architecture.py`` checks that the engine touches nothing else of the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from paceui.fit.fitter import Fitter, IterationRecord
from paceui.session.events import Event
from paceui.session.settings import ChangeReport
from paceui.session.status import SessionStatus

if TYPE_CHECKING:
    import pandas as pd

    from paceui.session.curves import ChangeMark
    from paceui.session.session import Session


class EngineHost(Protocol):
    """What the engine needs of its session: its identity and fit, the status it publishes, the events it
    emits, and the commands' work done on the session's state (on the engine thread only, docs/session.md
    (S1))."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def fitter(self) -> Fitter: ...
    @property
    def status(self) -> SessionStatus: ...
    @property
    def total_iterations(self) -> int: ...
    @property
    def autosave_every(self) -> int: ...
    @property
    def dirty(self) -> bool: ...
    @property
    def unclean_exit(self) -> str | None: ...
    @property
    def changes(self) -> "list[ChangeMark]": ...
    @property
    def best(self) -> Any: ...

    def emit(self, ev: Event) -> None: ...
    def set_status(self, **kw: Any) -> None: ...
    def publish(self) -> None: ...
    def record(self, rec: IterationRecord) -> None: ...
    def apply_settings(self, changes: Mapping[str, Any]) -> ChangeReport: ...
    def write(self, path: Any) -> tuple[Path, int]: ...
    def compute_active_set(self, kind: str, tol: float, max_iters: int, memory_limit_mb: float) -> Any: ...
    def gamma(self, subset: str) -> Any: ...
    def load_candidates(self, source: Any) -> int: ...
    def select_candidates(self, max_structures: int | None) -> "pd.DataFrame": ...
    def add_structures(self, structures: Any, weight: float | None) -> tuple[int, str]: ...
    def restore(self, fitter: Fitter, total_iterations: int, best: Any) -> None: ...


class SessionHost:
    """:class:`EngineHost` of a :class:`~paceui.session.Session` (forwards to its engine-side methods)."""

    def __init__(self, session: "Session") -> None:
        self._s = session

    name = property(lambda self: self._s.name)
    path = property(lambda self: self._s.path)
    fitter = property(lambda self: self._s.fitter)
    status = property(lambda self: self._s.status)
    total_iterations = property(lambda self: self._s.total_iterations)
    autosave_every = property(lambda self: int(self._s.options.get("autosave_every") or 0))
    dirty = property(lambda self: self._s._dirty)
    unclean_exit = property(lambda self: self._s.unclean_exit)
    changes = property(lambda self: self._s.changes)  # the curve markers (a list the engine appends to)
    best = property(lambda self: self._s._best)

    def emit(self, ev: Event) -> None:
        self._s._emit(ev)

    def set_status(self, **kw: Any) -> None:
        self._s._set_status(**kw)

    def publish(self) -> None:
        self._s._publish()

    def record(self, rec: IterationRecord) -> None:
        self._s._on_record(rec)

    def apply_settings(self, changes: Mapping[str, Any]) -> ChangeReport:
        return self._s._apply_settings(changes)

    def write(self, path: Any) -> tuple[Path, int]:
        return self._s._write(path)

    def compute_active_set(self, kind: str, tol: float, max_iters: int, memory_limit_mb: float) -> Any:
        return self._s._compute_active_set(kind, tol, max_iters, memory_limit_mb)

    def gamma(self, subset: str) -> Any:
        return self._s._gamma(subset)

    def load_candidates(self, source: Any) -> int:
        return self._s._load_candidates(source)

    def select_candidates(self, max_structures: int | None) -> "pd.DataFrame":
        return self._s._select_candidates(max_structures)

    def add_structures(self, structures: Any, weight: float | None) -> tuple[int, str]:
        return self._s._add_structures(structures, weight)

    def restore(self, fitter: Fitter, total_iterations: int, best: Any) -> None:
        """Put back an earlier fit (undo): its fitter, iteration count and best potential."""
        s = self._s
        s.fitter, s.total_iterations, s._best = fitter, total_iterations, best
        s._publish()
