"""The settings form of the notebook dashboard: one field per changeable setting, validated by the session.

Every edit is checked with :meth:`Session.preview_settings` (nothing changes yet); the form shows what
the change would do and what it invalidates, or the error naming the key, and enables *Apply* only for a
valid change. *Apply* sends :meth:`Session.change_settings` (taken at the next iteration boundary);
:meth:`SettingsForm.poll` picks up its result on the kernel's loop. The form holds no fitting logic.
"""

from __future__ import annotations

import html
import math
from concurrent.futures import Future
from typing import Any, Mapping

import ipywidgets as w
import yaml

from paceui.fit.settings_table import REQUIRED, Setting, current_value, form_settings
from paceui.session import ChangeReport, Session, SettingsError

Field = Setting
"""A form field is a row of the settings table: ``key`` as :meth:`Session.change_settings` takes it, ``label``,
``kind`` (float, int (a trailing ``?``: empty means None), value, bool, choice or combo), ``section``,
``choices`` and ``help``."""
FIELDS: tuple[Setting, ...] = form_settings()
"""The form's fields, in the table's order and sections (:mod:`paceui.fit.settings_table`)."""


def current_values(settings: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The value of every form field as the session has it (``None``: not set, the default applies)."""
    return {f.key: current_value(f, settings, options) for f in FIELDS}


def format_value(v: Any) -> str:
    """A setting as the text a field shows (mappings and lists in YAML flow style)."""
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return yaml.safe_dump(v, default_flow_style=True, sort_keys=False).strip()
    return repr(v) if isinstance(v, float) else str(v)


def parse_value(field: Field, text: str) -> Any:
    """The value typed into ``field``; :class:`SettingsError` naming the key when it is not one."""
    t = text.strip()
    if t in ("", "None", "none", "null", "~"):
        if field.kind.endswith("?"):
            return None
        raise SettingsError(f"{field.key}: a value is required")
    kind = field.kind.rstrip("?")
    try:
        if kind == "int":
            return int(t)
        if kind == "float":
            v = float(t)
            if not math.isfinite(v):
                raise ValueError(t)
            return v
    except ValueError:
        raise SettingsError(f"{field.key}: {t!r} is not {'an integer' if kind == 'int' else 'a number'}") from None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    try:
        return yaml.safe_load(t)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{field.key}: cannot read {t!r}: {exc}") from None


def _widget(f: Field, default: Any) -> w.ValueWidget:
    style, layout = {"description_width": "220px"}, w.Layout(width="460px")
    tip = f.help or f"default: {format_value(default) or 'none'}"
    if f.kind == "bool":
        return w.Checkbox(description=f.label, indent=False, tooltip=tip, layout=w.Layout(width="460px"))
    if f.kind == "choice":
        return w.Dropdown(options=list(f.choices), description=f.label, style=style, layout=layout, tooltip=tip)
    cls = w.Combobox if f.kind == "combo" else w.Text
    kw = {"options": list(f.choices), "ensure_option": False} if f.kind == "combo" else {}
    hint = f"default: {format_value(default)}" if default is not None else "default"
    # continuous_update: each keystroke syncs and validates, so Apply is enabled before the user clicks it
    # (with sync on Enter/blur only, the click on the still-disabled Apply was lost: two clicks were needed)
    return cls(description=f.label, placeholder=hint, continuous_update=True, style=style, layout=layout,
               tooltip=tip, **kw)


class SettingsForm:
    """Fields for the changeable settings (the ``backend:`` section included), validation and Apply."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.fields: dict[str, w.ValueWidget] = {f.key: _widget(f, None if f.default == REQUIRED else f.default)
                                                 for f in FIELDS}
        self._field = {f.key: f for f in FIELDS}
        self._shown: dict[str, Any] = {}
        self._loading = False
        self.pending: Future[ChangeReport] | None = None
        self.last_report: ChangeReport | None = None
        self.message = w.HTML(layout=w.Layout(min_height="2.5em"))
        self.apply_button = w.Button(description="Apply", button_style="primary", disabled=True,
                                     tooltip="change the settings at the next iteration boundary")
        self.revert_button = w.Button(description="Revert", tooltip="show the session's settings again")
        self.apply_button.on_click(lambda _: self.apply())
        self.revert_button.on_click(lambda _: self.load())
        for wid in self.fields.values():
            wid.observe(lambda _: self.validate(), names="value")
        sections: dict[str, list[w.Widget]] = {}
        for f in FIELDS:
            sections.setdefault(f.section, []).append(self.fields[f.key])
        self.accordion = w.Accordion(children=[w.VBox(v) for v in sections.values()], titles=tuple(sections))
        self.accordion.selected_index = 0
        self.widget = w.VBox([self.accordion, w.HBox([self.apply_button, self.revert_button]), self.message])
        self.load()

    # ------------------------------------------------------------------ values
    def load(self) -> None:
        """Show the session's current settings (edits not applied are dropped)."""
        values = current_values(self.session.settings, self.session.options)
        self._loading = True
        try:
            for key, wid in self.fields.items():
                v = values[key]
                if self._field[key].kind == "bool":
                    wid.value = bool(v)
                elif self._field[key].kind == "choice":
                    value = str(v) if v is not None else self._field[key].choices[0]
                    if value not in wid.options:  # shown as it is; validation says what is wrong with it
                        wid.options = (*wid.options, value)
                    wid.value = value
                else:
                    wid.value = format_value(v)
                self._shown[key] = wid.value
        finally:
            self._loading = False
        self.validate()

    def changes(self) -> dict[str, Any]:
        """The edited fields as ``change_settings`` keys and values (SettingsError if one cannot be read)."""
        out: dict[str, Any] = {}
        for key, wid in self.fields.items():
            if wid.value == self._shown.get(key):
                continue
            f = self._field[key]
            out[key] = wid.value if f.kind in ("bool", "choice") else parse_value(f, str(wid.value))
        return out

    def validate(self) -> ChangeReport | None:
        """Check the edits with :meth:`Session.preview_settings`; show the outcome; the report or None."""
        if self._loading:
            return None
        try:
            changes = self.changes()
            report = self.session.preview_settings(**changes) if changes else ChangeReport()
        except (SettingsError, ValueError, TypeError) as exc:
            self._show(f"⚠ {exc}", "error")
            self.apply_button.disabled = True
            return None
        if report.empty:
            self._show("no changes" if self.pending is None else "applying…", "info")
            self.apply_button.disabled = True
        else:
            self._show("Apply would change:\n" + str(report), "ok")
            self.apply_button.disabled = self.pending is not None
        return report

    def apply(self) -> Future[ChangeReport] | None:
        """Send the valid edits to :meth:`Session.change_settings`; None when there is nothing valid to apply."""
        report = self.validate()
        if report is None or report.empty or self.pending is not None:
            return None
        self.pending = self.session.change_settings(self.changes())
        self.apply_button.disabled = True
        self._show("applying at the next iteration boundary…", "info")
        return self.pending

    def poll(self) -> bool:
        """On the kernel's loop: take the result of an applied change; True when one came in."""
        fut = self.pending
        if fut is None or not fut.done():
            return False
        self.pending = None
        exc = fut.exception()
        if exc is not None:
            self._show(f"⚠ not applied: {exc}", "error")
            self.apply_button.disabled = False
            return True
        self.last_report = fut.result()
        self.load()
        self._show("applied:\n" + str(self.last_report), "ok")
        return True

    def _show(self, text: str, level: str) -> None:
        color = {"error": "#b00020", "ok": "#1b5e20", "info": "#555"}[level]
        self.message.value = (f"<pre class='paceui-msg paceui-{level}' style='color:{color};white-space:pre-wrap;"
                              f"margin:0'>{html.escape(text)}</pre>")

    @property
    def message_text(self) -> str:
        """The message shown under the form, as plain text (for tests and logs)."""
        return html.unescape(self.message.value.split(">", 1)[-1].rsplit("</pre>", 1)[0])
