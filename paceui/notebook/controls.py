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

from paceui.session import Action, Session, SessionStatus
from paceui.session import actions as table
from paceui.session.actions import Param, send


def notebook_actions() -> tuple[str, ...]:
    """The actions offered as buttons on the main bar: the table's ``button`` rows outside the trust group
    (settings have their own form; load: ``Session.load`` in a cell)."""
    return tuple(a.name for a in table.ACTIONS if a.button and a.group != "trust")


def trust_actions() -> tuple[str, ...]:
    """The active-learning actions (buttons of the dashboard's Trust tab)."""
    return tuple(a.name for a in table.ACTIONS if a.button and a.group == "trust")


NOTEBOOK_ACTIONS = notebook_actions()
TRUST_ACTIONS = trust_actions()


def param_widget(p: Param) -> w.ValueWidget:
    """The small field of an action parameter, by its kind (the tooltip asks the parameter's question)."""
    width = w.Layout(width=f"{max(70, min(240, 8 * len(p.short or p.name) + 30))}px")
    if p.kind == "count":
        return w.BoundedIntText(int(p.default or 0), min=0, max=10**9, description=p.short or p.name,
                                tooltip=p.label, layout=w.Layout(width="170px"), style={"description_width": "70px"})
    if p.kind == "float":
        return w.BoundedFloatText(float(p.default or 0.0), min=0.0, max=1e3, step=0.01, description=p.short,
                                  tooltip=p.label, layout=w.Layout(width="120px"), style={"description_width": "20px"})
    if p.kind == "bool":
        return w.Checkbox(bool(p.default), description=p.short or p.name, indent=False, tooltip=p.label,
                          layout=w.Layout(width="80px"))
    if p.kind == "choice":
        return w.Dropdown(options=list(p.choices), value=p.default, tooltip=p.label,
                          layout=w.Layout(width=f"{20 + 9 * max(map(len, p.choices))}px"))
    return w.Text("" if p.default is None else str(p.default), placeholder=p.short, tooltip=p.label, layout=width)


def param_value(p: Param, wid: w.ValueWidget) -> Any:
    """The argument a parameter field gives (ValueError naming the field when it cannot be read)."""
    if p.kind == "count":
        return int(wid.value) or None
    if p.kind == "float":
        return float(wid.value)
    if p.kind in ("bool", "choice"):
        return wid.value
    if p.kind in ("int?", "float?"):
        return _optional(wid.value, int if p.kind == "int?" else float, p.short or p.name)
    text = str(wid.value).strip()
    if not text and p.required:
        raise ValueError(f"{p.name}: give the {p.label}")
    return text or p.default


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
                 on_sent: Callable[[str], None] | None = None,
                 names: tuple[str, ...] | None = None) -> None:
        self.session = session
        self.on_error, self.on_sent = on_error, on_sent
        names = notebook_actions() if names is None else names
        self.actions: dict[str, Action] = {a.name: a for a in table.ACTIONS if a.name in names}
        self.buttons: dict[str, w.Button] = {}
        for name, a in self.actions.items():
            b = w.Button(description=a.title.rstrip("…"), tooltip=f"{a.description} [key {a.key} in the TUI]",
                         icon=a.icon, button_style=a.style,
                         layout=w.Layout(width="auto"))
            b.add_class(f"paceui-action-{name}")  # stable hooks for browser tests and custom CSS
            b.on_click(lambda _b, name=name: self.run(name))
            self.buttons[name] = b
        self.params: dict[str, dict[str, w.ValueWidget]] = {
            name: {p.name: param_widget(p) for p in a.params} for name, a in self.actions.items() if a.params}
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
        fields = self.params.get(name, {})
        return {p.name: param_value(p, fields[p.name]) for p in self.actions[name].params}

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
        fut: Future[Any] = send(self.session, self.actions[name], kw)
        self.futures = self.futures[-20:] + [(name, fut)]
        if fut.done() and fut.exception() is not None:  # refused at once (e.g. a closed session)
            self._error(f"{self.actions[name].title}: {fut.exception()}")
        self.update(self.session.status)  # acknowledged at once: the button is disabled while pending
        if self.on_sent is not None:
            self.on_sent(name)
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
