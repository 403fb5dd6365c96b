"""Sessions: one engine behind every front end (TUI, notebook, scripts).

A :class:`Session` holds the basis, the prepared dataset (neighbour lists, weights, split), the
settings and the fit state; its controller fits in a background thread and takes thread-safe
commands at iteration boundaries; front ends subscribe to its events and build their keys and
buttons from :data:`ACTIONS`. Sessions are saved atomically and resume exactly.
"""

from paceui.session.actions import ACTIONS, Action, Param, action, enabled_actions
from paceui.session.engine import SessionError
from paceui.session.events import (
    CallbackFailed,
    Changed,
    CycleChanged,
    Event,
    EventBus,
    Failed,
    FitStarted,
    LadderStepChanged,
    Paused,
    Progress,
    Resumed,
    Saved,
    StageChanged,
    Stopped,
    Subscription,
)
from paceui.session.lock import LockHolder, SessionLock, SessionLockedError
from paceui.session.session import Session
from paceui.session.session_data import DatasetChangedError, SessionData
from paceui.session.settings import ChangeReport, SettingsError
from paceui.session.status import Phase, SessionStatus
from paceui.session.store import FORMAT_VERSION, RecoveredSessionWarning, SessionFormatError

__all__ = ["ACTIONS", "Action", "CallbackFailed", "ChangeReport", "Changed", "CycleChanged", "DatasetChangedError",
           "Event", "EventBus", "FORMAT_VERSION", "Failed", "FitStarted", "LadderStepChanged", "LockHolder", "Param",
           "Paused", "Phase", "Progress", "RecoveredSessionWarning", "Resumed", "SessionLock", "SessionLockedError",
           "Saved", "Session", "SessionData", "SessionError", "SessionFormatError", "SessionStatus", "SettingsError",
           "StageChanged", "Stopped", "Subscription", "action", "enabled_actions"]
