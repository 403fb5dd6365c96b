"""Jupyter front end: widgets that steer a :class:`~paceui.session.Session` from a notebook.

>>> from paceui.notebook import Dashboard        # doctest: +SKIP
>>> Dashboard(session)                           # doctest: +SKIP   (or session.dashboard(), display(session))

Importing this package attaches it to every session (:mod:`paceui.session.front_ends`): from then on
``session.dashboard()`` builds a :class:`Dashboard` and ``display(session)`` shows one; the core never
imports this package.

Built on ipywidgets 8; the plots are matplotlib figures rendered to PNG into ``ipywidgets.Image`` (see
the README's "Notebook" section). The buttons come from :data:`paceui.session.ACTIONS`; settings go
through :meth:`Session.preview_settings` / :meth:`Session.change_settings`; no fitting logic lives here.
"""

from __future__ import annotations

from typing import Any

from paceui.notebook.controls import NOTEBOOK_ACTIONS, ActionBar
from paceui.notebook.dashboard import Dashboard, status_text
from paceui.notebook.forms import FIELDS, SettingsForm
from paceui.notebook.new_form import NewSessionForm
from paceui.session import front_ends


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (widgets can be shown); False in a terminal IPython or a script."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def session_mimebundle(session: Any, **kw: Any) -> Any:
    """What ``display(session)`` shows: in a Jupyter kernel a new dashboard of the session (its plain-text
    form: the session's repr); elsewhere just the repr."""
    if not _in_kernel():
        return {"text/plain": repr(session)}
    bundle = Dashboard(session)._repr_mimebundle_(**kw)
    if isinstance(bundle, dict):
        bundle["text/plain"] = repr(session)
    return bundle


front_ends.attach(Dashboard, session_mimebundle)

__all__ = ["ActionBar", "Dashboard", "FIELDS", "NOTEBOOK_ACTIONS", "NewSessionForm", "SettingsForm",
           "session_mimebundle", "status_text"]
