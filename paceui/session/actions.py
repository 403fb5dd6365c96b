"""The one table of user actions: TUI keys, the command palette and notebook buttons are built from it.

Each :class:`Action` names a :class:`~paceui.session.Session` method, says what it does, suggests a
key, and has an ``enabled(status)`` predicate over :class:`~paceui.session.SessionStatus` (a front end
greys out what is not enabled). ``params`` lists the method's arguments a front end asks for.

>>> [a.name for a in enabled_actions(SessionStatus())][:2]
['start', 'randomize']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from paceui.session.status import Phase, SessionStatus

_HALTED = (Phase.READY, Phase.PAUSED, Phase.STOPPED, Phase.FINISHED, Phase.ERROR)


@dataclass(frozen=True)
class Action:
    """A user action: ``name`` is the Session method, ``key`` a suggested key binding."""

    name: str
    title: str
    description: str
    key: str
    enabled: Callable[[SessionStatus], bool]
    params: tuple[str, ...] = ()
    group: str = "fit"


ACTIONS: tuple[Action, ...] = (
    Action("start", "Start", "Fit in the background; continues exactly where the fit halted "
           "(after a finished fit or an error: a fresh optimizer from the current parameters)", "s",
           lambda s: s.phase in (Phase.READY, Phase.STOPPED, Phase.FINISHED, Phase.ERROR), ("iterations",)),
    Action("pause", "Pause", "Halt now: a long iteration is abandoned at its next loss evaluation and redone "
           "exactly on resume (autosaves)", "p",
           lambda s: s.phase is Phase.RUNNING),
    Action("resume", "Resume", "Continue a paused fit exactly", "r", lambda s: s.phase is Phase.PAUSED),
    Action("stop", "Stop", "End this run now (inside a long iteration, at its next loss evaluation); keeps "
           "the best potential (autosaves)",
           "x", lambda s: s.phase in (Phase.RUNNING, Phase.PAUSED)),
    Action("randomize", "Randomize coefficients…", "Add Gaussian noise (relative or absolute σ, seeded) to the "
           "trainable parameters; the optimizer restarts as a new cycle", "n", lambda s: True,
           ("sigma", "relative", "seed")),
    Action("extend_ladder", "Extend ladder…", "Add N functions per element from the target basis (default: "
           "the next ladder step); a new ladder step with a fresh optimizer", "l",
           lambda s: s.functions_left > 0, ("n",)),
    Action("undo", "Undo randomize/extend", "Go back to the fit as it was before the last randomize or extend "
           "ladder (one level; the iterations since are dropped)", "ctrl+z",
           lambda s: bool(s.undo) and s.phase is not Phase.RUNNING),
    Action("change_settings", "Change settings…", "Loss weights, κ, regularisation, optimizer, maxiter, data "
           "weights, cutoff; says what each change invalidates", "c", lambda s: True, ("changes",), "settings"),
    Action("compute_active_set", "Compute active set…", "MaxVol active set of the current potential over the "
           "training set (linear or full projections), for the extrapolation grade γ; stale once the fit moves on",
           "a", lambda s: s.phase is not Phase.RUNNING, ("kind",), "trust"),
    Action("gamma", "γ of a set…", "Extrapolation grade γ (max over its atoms) of every structure of the train, "
           "test or candidate set against the active set", "g", lambda s: s.active_set != "none", ("subset",),
           "trust"),
    Action("load_candidates", "Load candidates…", "Candidate structures (extxyz, ASE trajectory, LAMMPS dump, "
           "dataframe; labels optional) to compute γ on and select from", "k", lambda s: True, ("source",), "trust"),
    Action("select_candidates", "Select candidates…", "D-optimal (MaxVol) selection of the candidates that extend "
           "the active set most, largest γ first: the structures to compute with DFT next", "d",
           lambda s: s.n_candidates > 0 and s.phase is not Phase.RUNNING, ("max_structures",), "trust"),
    Action("add_structures", "Add structures…", "Add labelled structures (DFT energies and forces: a file, or "
           "the selection when it has labels) to the training set and continue the fit from the current "
           "potential as a new cycle", "plus", lambda s: s.phase is not Phase.RUNNING, ("structures", "weight"),
           "trust"),
    Action("save", "Save session", "Write the session (settings, potentials, history, optimizer state, data "
           "cache) atomically", "ctrl+s", lambda s: True, ("path",), "session"),
    Action("load", "Load session…", "Open a saved session (replaces this one in the front end)", "ctrl+o",
           lambda s: s.phase in _HALTED, ("path",), "session"),
)


def _not_pending(a: Action) -> Action:
    """``a`` disabled while the same command (or, for pause, a stop) is pending: a second key press or
    click during "pausing…" does nothing instead of queueing the command again."""
    blockers = {a.name, "close"} | ({"stop"} if a.name in ("pause", "resume") else set())
    pred = a.enabled
    return replace(a, enabled=lambda s: pred(s) and not blockers.intersection(s.pending))


ACTIONS = tuple(_not_pending(a) for a in ACTIONS)
_BY_NAME = {a.name: a for a in ACTIONS}


def action(name: str) -> Action:
    """The action called ``name`` (KeyError with the known names otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no action {name!r}; known: {', '.join(_BY_NAME)}") from None


def enabled_actions(status: SessionStatus) -> list[Action]:
    """The actions a front end should offer now."""
    return [a for a in ACTIONS if a.enabled(status)]
