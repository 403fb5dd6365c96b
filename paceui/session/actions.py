"""The one table of user actions: TUI keys, the command palette and notebook buttons are built from it.

Each :class:`Action` names an engine command and the :class:`~paceui.session.Session` method that sends it,
says what it does, suggests a key, and has an ``enabled(status)`` predicate over
:class:`~paceui.session.SessionStatus` (a front end greys out what is not enabled). ``params`` (:class:`Param`)
are the method's arguments a front end asks for, with their kinds and defaults. Adding an action is a row
here and its handler in the engine's table (:data:`paceui.session.engine.Engine.HANDLERS`).

>>> [a.name for a in enabled_actions(SessionStatus())][:2]
['start', 'randomize']
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from paceui.session.status import Phase, SessionStatus

_HALTED = (Phase.READY, Phase.PAUSED, Phase.STOPPED, Phase.FINISHED, Phase.ERROR)


@dataclass(frozen=True)
class Param:
    """A parameter of an action, as a front end asks for it. ``kind``: count (a whole number >= 0, 0: None),
    float, bool, choice (one of ``choices``), int? / float? (empty: None) or text (empty: ``default``);
    ``label``: the question (a dialog line, a tooltip); ``short``: a short label or placeholder;
    ``required``: an empty value is refused."""

    name: str
    label: str
    kind: str = "text"
    default: Any = None
    short: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Action:
    """A user action: ``name`` is its engine command (docs/session.md (S1)), ``method`` the Session method the
    front ends call (empty: ``Session.command(name, ...)``), ``key`` a suggested key binding; a title ending
    in "…" asks for its ``params`` first. ``footer``: shown in the TUI's footer; ``button``: a notebook
    button (``group`` trust: on the Trust tab), with its ``icon`` (Font Awesome) and ``style``."""

    name: str
    title: str
    description: str
    key: str
    enabled: Callable[[SessionStatus], bool]
    params: tuple[Param, ...] = ()
    group: str = "fit"
    method: str | None = None
    footer: bool = False
    button: bool = True
    icon: str = ""
    style: str = ""

    @property
    def call(self) -> str:
        """The Session method the front ends call (``command``: the generic one)."""
        return self.name if self.method is None else self.method or "command"

    @property
    def asks(self) -> bool:
        """True when a front end asks for the parameters before running it (the title ends in "…")."""
        return self.title.endswith("…")


_WHERE = "file (extxyz, traj, LAMMPS dump, dataframe)"
ACTIONS: tuple[Action, ...] = (
    Action("start", "Start", "Fit in the background; continues exactly where the fit halted "
           "(after a finished fit or an error: a fresh optimizer from the current parameters)", "s",
           lambda s: s.phase in (Phase.READY, Phase.STOPPED, Phase.FINISHED, Phase.ERROR),
           (Param("iterations", "iterations to fit (0: to the end of the fit)", "count", 0, "iterations"),),
           footer=True, icon="play", style="success"),
    Action("pause", "Pause", "Halt now: a long iteration is abandoned at its next loss "
           "evaluation and redone exactly on resume (autosaves)", "p",
           lambda s: s.phase is Phase.RUNNING, footer=True, icon="pause", style="warning"),
    Action("resume", "Resume", "Continue a paused fit exactly", "r", lambda s: s.phase is Phase.PAUSED,
           footer=True, icon="play", style="success"),
    Action("stop", "Stop", "End this run now (inside a long iteration, at its next loss evaluation); keeps "
           "the best potential (autosaves)",
           "x", lambda s: s.phase in (Phase.RUNNING, Phase.PAUSED), footer=True, icon="stop", style="danger"),
    Action("randomize", "Randomize coefficients…", "Add Gaussian noise (relative or absolute σ, seeded) to the "
           "trainable parameters; the optimizer restarts as a new cycle", "n", lambda s: True,
           (Param("sigma", "σ (relative to |θ| unless relative is false)", "float", 0.05, "σ"),
            Param("relative", "relative", "bool", True, "relative"),
            Param("seed", "seed (empty: random)", "int?", None, "seed")), footer=True, icon="random"),
    Action("extend_ladder", "Extend ladder…", "Add N functions per element from the target basis (default: "
           "the next ladder step); a new ladder step with a fresh optimizer", "l",
           lambda s: s.functions_left > 0,
           (Param("n", "functions per element (empty: the next ladder step)", "int?", None, "N (next step)"),),
           footer=True, icon="plus"),
    Action("undo", "Undo randomize/extend", "Go back to the fit as it was before the last randomize or extend "
           "ladder (one level; the iterations since are dropped)", "ctrl+z",
           lambda s: bool(s.undo) and s.phase is not Phase.RUNNING, icon="undo"),
    Action("change_settings", "Change settings…", "Loss weights, κ, regularisation, optimizer, maxiter, data "
           "weights, cutoff; says what each change invalidates", "c", lambda s: True,
           (Param("changes", "settings to change", "text"),), "settings", button=False),
    Action("compute_active_set", "Compute active set…", "MaxVol active set of the current potential over the "
           "training set (linear or full projections), for the extrapolation grade γ; stale once the fit moves on",
           "a", lambda s: s.phase is not Phase.RUNNING,
           (Param("kind", "projections: linear or full", "choice", "linear", "kind", ("linear", "full")),),
           "trust", icon="calculator"),
    Action("gamma", "γ of a set…", "Extrapolation grade γ (max over its atoms) of every structure of the train, "
           "test or candidate set against the active set", "g", lambda s: s.active_set != "none",
           (Param("subset", "set: train, test or candidates", "choice", "train", "set",
                  ("train", "test", "candidates")),), "trust", icon="bar-chart"),
    Action("load_candidates", "Load candidates…", "Candidate structures (extxyz, ASE trajectory, LAMMPS dump, "
           "dataframe; labels optional) to compute γ on and select from", "k", lambda s: True,
           (Param("source", _WHERE, "text", None, "extxyz / traj / dump / dataframe", required=True),), "trust",
           icon="folder-open"),
    Action("select_candidates", "Select candidates…", "D-optimal (MaxVol) selection of the candidates that extend "
           "the active set most, largest γ first: the structures to compute with DFT next", "d",
           lambda s: s.n_candidates > 0 and s.phase is not Phase.RUNNING,
           (Param("max_structures", "at most this many (empty: all it picks)", "int?", None, "max N (all)"),),
           "trust", icon="check-square"),
    Action("add_structures", "Add structures…", "Add labelled structures (DFT energies and forces: a file, or "
           "the selection when it has labels) to the training set and continue the fit from the current "
           "potential as a new cycle", "plus", lambda s: s.phase is not Phase.RUNNING,
           (Param("structures", "file with DFT energies and forces, or: selection", "text", "selection",
                  "labelled file, or: selection"),
            Param("weight", "weight factor of the new structures (empty: 1)", "float?", None, "weight (1)")),
           "trust", icon="plus-circle"),
    Action("save", "Save session", "Write the session (settings, potentials, history, optimizer state, data "
           "cache) atomically", "ctrl+s", lambda s: True,
           (Param("path", "folder (empty: the session's)", "text", None, "folder (the session's)"),), "session",
           method="save_async", footer=True, icon="save"),
    Action("load", "Load session…", "Open a saved session (replaces this one in the front end)", "ctrl+o",
           lambda s: s.phase in _HALTED, (Param("path", "the session's folder", "text", required=True),),
           "session", button=False),
)


def _not_pending(a: Action) -> Action:
    """``a`` disabled while the same command (or, for pause, a stop) is pending: a second key press or
    click during "pausing…" does nothing instead of queueing the command again."""
    blockers = {a.name, "close"} | ({"stop"} if a.name in ("pause", "resume") else set())
    pred = a.enabled
    return replace(a, enabled=lambda s: pred(s) and not blockers.intersection(s.pending))


ACTIONS = tuple(_not_pending(a) for a in ACTIONS)
"""The table (read at call time by the front ends, so a row added here is a key, a palette entry and a button)."""


def action(name: str) -> Action:
    """The action called ``name`` (KeyError with the known names otherwise)."""
    for a in ACTIONS:
        if a.name == name:
            return a
    raise KeyError(f"no action {name!r}; known: {', '.join(a.name for a in ACTIONS)}")


def enabled_actions(status: SessionStatus) -> list[Action]:
    """The actions a front end should offer now."""
    return [a for a in ACTIONS if a.enabled(status)]


def send(session: Any, a: Action, params: Mapping[str, Any]) -> Future[Any]:
    """Run action ``a`` on ``session`` with ``params`` (what every front end's key, command or button ends in):
    its Session method, or :meth:`Session.command` for a row without one."""
    if a.call == "command":
        return session.command(a.name, **params)
    return getattr(session, a.call)(**params)
