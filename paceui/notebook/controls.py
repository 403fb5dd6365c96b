"""The notebook's action buttons, built from the session's one action table (:data:`paceui.session.ACTIONS`).

Each button calls the :class:`~paceui.session.Session` method its action names, with the values of
small parameter fields (the action's ``params``), and is disabled where the action's
``enabled(status)`` is false. Commands return Futures at once; their outcome arrives as session events,
which the dashboard shows. No fitting logic lives here.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable

import ipywidgets as w

from paceui.session import ACTIONS, Action, Session, SessionStatus

NOTEBOOK_ACTIONS = ("start", "pause", "resume", "stop", "randomize", "extend_ladder", "save")
"""The actions offered as buttons (settings have their own form; load: ``Session.load`` in a cell)."""
TRUST_ACTIONS = ("compute_active_set", "gamma", "load_candidates", "select_candidates", "add_structures")
"""The active-learning actions (buttons of the dashboard's Trust tab)."""

_ICONS = {"start": "play", "pause": "pause", "resume": "play", "stop": "stop", "randomize": "random",
          "extend_ladder": "plus", "save": "save", "compute_active_set": "calculator", "gamma": "bar-chart",
          "load_candidates": "folder-open", "select_candidates": "check-square", "add_structures": "plus-circle"}
_STYLES = {"start": "success", "stop": "danger", "pause": "warning", "resume": "success"}


def _optional(text: str, conv: Callable[[str], Any], what: str) -> Any:
    t = text.strip()
    if not t:
        return None
    try:
        return conv(t)
    except ValueError:
        raise ValueError(f"{what}: {t!r} is not {'an integer' if conv is int else 'valid'}") from None


class ActionBar:
    """Buttons for :data:`NOTEBOOK_ACTIONS` (or the actions ``names``) with their parameter fields.

    ``buttons[name]`` is the button of an action; ``params[name]`` its parameter widgets;
    ``futures`` the Futures of the commands sent (newest last); ``message`` shows a parameter error.
    """

    def __init__(self, session: Session, on_error: Callable[[str], None] | None = None,
                 names: tuple[str, ...] = NOTEBOOK_ACTIONS) -> None:
        self.session = session
        self.on_error = on_error
        self.actions: dict[str, Action] = {a.name: a for a in ACTIONS if a.name in names}
        self.buttons: dict[str, w.Button] = {}
        for name, a in self.actions.items():
            b = w.Button(description=a.title.rstrip("…"), tooltip=f"{a.description} [key {a.key} in the TUI]",
                         icon=_ICONS.get(name, ""), button_style=_STYLES.get(name, ""),
                         layout=w.Layout(width="auto"))
            b.add_class(f"paceui-action-{name}")  # stable hooks for browser tests and custom CSS
            b.on_click(lambda _b, name=name: self.run(name))
            self.buttons[name] = b
        narrow = w.Layout(width="150px")
        self.params: dict[str, dict[str, w.ValueWidget]] = {
            "start": {"iterations": w.BoundedIntText(0, min=0, max=10**9, description="iterations",
                                                     tooltip="iterations to fit (0: to the end of the fit)",
                                                     layout=w.Layout(width="170px"),
                                                     style={"description_width": "70px"})},
            "randomize": {"sigma": w.BoundedFloatText(0.05, min=0.0, max=1e3, step=0.01, description="σ",
                                                      layout=w.Layout(width="120px"),
                                                      style={"description_width": "20px"}),
                          "relative": w.Checkbox(True, description="relative", indent=False,
                                                 layout=w.Layout(width="80px")),
                          "seed": w.Text("", placeholder="seed", layout=w.Layout(width="70px"))},
            "extend_ladder": {"n": w.Text("", placeholder="N (next step)", layout=narrow,
                                          tooltip="functions to add (empty: the next ladder step)")},
            "save": {"path": w.Text("", placeholder="folder (the session's)", layout=w.Layout(width="190px"))},
            "compute_active_set": {"kind": w.Dropdown(options=["linear", "full"], value="linear",
                                                      layout=w.Layout(width="90px"))},
            "gamma": {"subset": w.Dropdown(options=["train", "test", "candidates"], value="train",
                                           layout=w.Layout(width="110px"))},
            "load_candidates": {"source": w.Text("", placeholder="extxyz / traj / dump / dataframe",
                                                 layout=w.Layout(width="240px"))},
            "select_candidates": {"max_structures": w.Text("", placeholder="max N (all)", layout=narrow)},
            "add_structures": {"structures": w.Text("selection", placeholder="labelled file, or: selection",
                                                    layout=w.Layout(width="200px")),
                               "weight": w.Text("", placeholder="weight (1)", layout=w.Layout(width="80px"))},
        }
        self.params = {k: v for k, v in self.params.items() if k in self.actions}
        for name, fields in self.params.items():
            for param, wid in fields.items():
                wid.add_class(f"paceui-param-{name}-{param}")
        self.futures: list[tuple[str, Future[Any]]] = []
        self.message = w.HTML()
        groups = [w.HBox([self.buttons[n], *self.params.get(n, {}).values()],
                         layout=w.Layout(border="1px solid #ddd", padding="2px", margin="0 4px 4px 0"))
                  for n in self.actions]
        self.widget = w.VBox([w.HBox(groups, layout=w.Layout(flex_flow="row wrap")), self.message])

    def arguments(self, name: str) -> dict[str, Any]:
        """The keyword arguments of action ``name`` from its fields (ValueError on an unreadable one)."""
        p = self.params.get(name, {})
        if name == "start":
            n = int(p["iterations"].value)
            return {"iterations": n or None}
        if name == "randomize":
            return {"sigma": float(p["sigma"].value), "relative": bool(p["relative"].value),
                    "seed": _optional(p["seed"].value, int, "seed")}
        if name == "extend_ladder":
            return {"n": _optional(p["n"].value, int, "N")}
        if name == "save":
            path = p["path"].value.strip()
            return {"path": path or None}
        if name == "compute_active_set":
            return {"kind": p["kind"].value}
        if name == "gamma":
            return {"subset": p["subset"].value}
        if name == "load_candidates":
            src = p["source"].value.strip()
            if not src:
                raise ValueError("candidates: give a file name")
            return {"source": src}
        if name == "select_candidates":
            return {"max_structures": _optional(p["max_structures"].value, int, "max N")}
        if name == "add_structures":
            weight = _optional(p["weight"].value, float, "weight")
            return {"structures": p["structures"].value.strip() or "selection", "weight": weight}
        return {}

    def run(self, name: str) -> Future[Any] | None:
        """Send action ``name`` to the session (what a click does); None if a field cannot be read."""
        if not self.actions[name].enabled(self.session.status):
            self._error(f"{self.actions[name].title} is not possible now ({self.session.status.phase.value})")
            return None
        try:
            kw = self.arguments(name)
        except ValueError as exc:
            self._error(str(exc))
            return None
        self.message.value = ""
        method = "save_async" if name == "save" else name
        fut: Future[Any] = getattr(self.session, method)(**kw)
        self.futures = self.futures[-20:] + [(name, fut)]
        if fut.done() and fut.exception() is not None:  # refused at once (e.g. a closed session)
            self._error(f"{self.actions[name].title}: {fut.exception()}")
        return fut

    def update(self, status: SessionStatus) -> None:
        """Enable what ``status`` allows, disable the rest (buttons and their fields)."""
        for name, a in self.actions.items():
            on = bool(a.enabled(status))
            if self.buttons[name].disabled == on:
                self.buttons[name].disabled = not on
            for wid in self.params.get(name, {}).values():
                wid.disabled = not on

    def _error(self, text: str) -> None:
        import html

        self.message.value = f"<span style='color:#b00020'>⚠ {html.escape(text)}</span>"
        if self.on_error is not None:
            self.on_error(text)
