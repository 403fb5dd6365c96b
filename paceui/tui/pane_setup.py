"""Setup tab: the session's settings as one-line fields with pacemaker's defaults beside them; every edit
is validated at once through ``Session.preview_settings`` and applied with Enter (or ``c``) through
``Session.change_settings``. Functions per element and rank: current / target of the ladder.

The basis is fixed for a session, so its fields (see :mod:`paceui.tui.basis_form`) make a new session:
every edit is checked at once and the basis rebuilt in a thread worker (debounced) for the live counts;
Enter in a basis field, ``N`` or the button asks for a folder and creates the session (the app switches
to it)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import yaml
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from paceui.fit.settings_table import Setting, current_value, form_settings
from paceui.session import Session, SessionStatus, SettingsError
from paceui.tui.basis_form import (
    BASIS_FIELDS,
    BasisError,
    basis_counts,
    block_key,
    counts_text,
    editable,
    edited_potential,
    field_id,
    field_texts,
    sibling_folder,
)
from paceui.tui.dialogs import ParamsDialog
from paceui.tui.format import value_text
from paceui.tui.pane_sessions import shown_path

FIELDS: tuple[Setting, ...] = form_settings()
"""The settings fields, in the table's order and sections (:mod:`paceui.fit.settings_table`)."""


def field_label(row: Setting) -> str:
    """The Setup label of a setting: its key as ``change_settings`` names it, with its unit."""
    return f"{row.key} ({row.unit})" if row.unit else row.key


def function_counts_text(target: dict[str, Any], current: dict[str, Any]) -> str:
    """Functions per element and rank, ``current/target`` (the ladder grows current up to target)."""
    ranks = sorted({r for d in target["functions_per_element_rank"].values() for r in d})
    lines = ["[b]functions[/b] (current/target)", "el  " + " ".join(f"{'r' + str(r):>7}" for r in ranks)]
    for el, per in target["functions_per_element_rank"].items():
        cur = current["functions_per_element_rank"].get(el, {})
        lines.append(f"{el:<4}" + " ".join(f"{str(cur.get(r, 0)) + '/' + str(per.get(r, 0)):>7}" for r in ranks))
    lines.append(f"all {current['functions']}/{target['functions']}")
    return "\n".join(lines)


class SetupPane(Widget):
    """Settings form; ``pending`` holds the edited values (already parsed), ``error`` the last validation.
    Basis: ``basis_counts`` (counts of the edited basis, or the session's), ``basis_error`` (why not)."""

    BINDINGS = [Binding("N", "new_session", "New session with this basis", show=False)]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.session: Session | None = None
        self.original: dict[str, str] = {}
        self.pending: dict[str, Any] = {}
        self.error: str | None = None
        self._nfuncs = -1
        self.basis_spec: dict[str, Any] | None = None   # the session's potential: (None: from a file)
        self.basis_original: dict[str, str] = {}
        self.basis_counts: dict[str, Any] | None = None
        self.basis_error: str | None = None
        self._basis_gen = 0                            # edit number: only the newest worker result is shown
        self._basis_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="setup-scroll"):
            section = ""
            for row in FIELDS:
                if row.section != section:
                    section = row.section
                    yield Static(section, classes="section")
                with Horizontal(classes="setting"):
                    yield Label(field_label(row))
                    yield Input("", id=f"set-{row.key}", classes="compact", select_on_focus=False)
                    yield Static(f"default {value_text(row.default) or 'none'}", classes="default")
            yield Static("Basis: edits make a new session (Enter or N)", classes="section")
            for sec, key, placeholder in BASIS_FIELDS:
                if sec and sec != section:
                    section = sec
                    yield Static(f"Basis {sec}", id=f"basis-head-{sec}", classes="section")
                with Horizontal(classes="setting"):
                    yield Label(key)
                    yield Input("", id=field_id(sec, key), placeholder=f"default: {placeholder}", classes="compact",
                                select_on_focus=False)
            yield Button("New session with this basis", id="basis-new", compact=True)
        with Horizontal(id="setup-bottom"):
            yield Static("", id="setup-counts")
            yield Static("Edit a value, Enter (or c) applies.", id="setup-msg")
            yield Static("", id="basis-preview")

    def load_session(self, session: Session) -> None:
        self.session = session
        settings, options = session.settings, session.options
        self.original = {row.key: value_text(current_value(row, settings, options)) for row in FIELDS}
        for key, text in self.original.items():
            inp = self.query_one(f"#set-{key}", Input)
            with inp.prevent(Input.Changed):
                inp.value = text
            inp.remove_class("-invalid")
        self.pending, self.error = {}, None
        self._nfuncs = -1
        self.show_counts(session.status)
        self.load_basis(settings.get("potential"))

    def load_basis(self, spec: Any) -> None:
        """Fill the basis fields from ``potential:`` (disabled when the basis comes from a file)."""
        why = editable(spec)
        self.basis_spec = None if why else spec
        self.basis_original = field_texts(spec) if why is None else {}
        for sec, key, _ in BASIS_FIELDS:
            inp = self.query_one(f"#{field_id(sec, key)}", Input)
            with inp.prevent(Input.Changed):
                inp.value = self.basis_original.get(field_id(sec, key), "")
            inp.disabled = why is not None
            inp.remove_class("-invalid")
            if sec:
                self.query_one(f"#basis-head-{sec}", Static).update(
                    f"Basis {sec}" + ("" if why else f" ({block_key(spec, sec)})"))
        self.query_one("#basis-new", Button).disabled = why is not None
        self._basis_gen += 1  # results of workers still running are stale
        assert self.session is not None
        self.basis_counts, self.basis_error = self.session.target.counts(), None
        preview = self.query_one("#basis-preview", Static)
        preview.set_class(False, "error")
        preview.update(f"{why}: not editable here" if why else
                       counts_text(self.basis_counts, "this session's basis (edit: a new session)"))

    def show_counts(self, status: SessionStatus) -> None:
        if self.session is None or status.nfuncs == self._nfuncs:
            return
        self._nfuncs = status.nfuncs
        self.query_one("#setup-counts", Static).update(
            function_counts_text(self.session.target.counts(), self.session.potential.counts()))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The bottom line explains what is focused: the basis preview for basis fields, else the settings."""
        self.set_class(str(event.widget.id or "").startswith("basis-"), "-basis")

    def on_input_changed(self, event: Input.Changed) -> None:
        ident = event.input.id or ""
        if ident.startswith("set-"):
            event.stop()
            self.validate()
        elif ident.startswith("basis-"):
            event.stop()
            if self._basis_timer is not None:
                self._basis_timer.stop()
            self._basis_timer = self.set_timer(0.25, self.rebuild_basis)  # debounce: rebuild after a pause

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ident = event.input.id or ""
        if ident.startswith("set-"):
            event.stop()
            self.apply()
        elif ident.startswith("basis-"):
            event.stop()
            self.action_new_session()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "basis-new":
            event.stop()
            self.action_new_session()

    # ------------------------------------------------------------------ basis
    def basis_texts(self) -> dict[str, str]:
        return {fid: self.query_one(f"#{fid}", Input).value for fid in self.basis_original}

    def rebuild_basis(self) -> None:
        """Check the basis fields now; count the functions of the edited basis in a thread worker (only the
        newest edit's result is shown)."""
        self._basis_timer = None
        if self.session is None or self.basis_spec is None:
            return
        self._basis_gen += 1
        texts = self.basis_texts()
        for fid in texts:
            self.query_one(f"#{fid}", Input).remove_class("-invalid")
        if all(texts[k].strip() == v for k, v in self.basis_original.items()):
            self.load_basis(self.basis_spec)
            return
        try:
            pot = edited_potential(self.basis_spec, texts)
        except BasisError as exc:
            self._basis_failed(str(exc))
            return
        self.run_worker(partial(_count, self._basis_gen, pot), thread=True, exclusive=True, group="basis",
                        exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "basis":
            return
        event.stop()
        if event.state is WorkerState.ERROR:
            self._basis_failed(f"potential: {event.worker.error}")
        if event.state is not WorkerState.SUCCESS:
            return
        if event.worker.result is None:
            return
        gen, result = event.worker.result
        if gen != self._basis_gen:
            return
        if isinstance(result, BasisError):
            self._basis_failed(str(result))
            return
        self.basis_counts, self.basis_error = result, None
        preview = self.query_one("#basis-preview", Static)
        preview.set_class(False, "error")
        preview.update(counts_text(result, "edited basis (Enter or N: new session)"))

    def _basis_failed(self, message: str) -> None:
        self.basis_error, self.basis_counts = message, None
        for sec, key, _ in BASIS_FIELDS:
            if key in message:
                self.query_one(f"#{field_id(sec, key)}", Input).add_class("-invalid")
        preview = self.query_one("#basis-preview", Static)
        preview.set_class(True, "error")
        preview.update(Content.assemble(("✗ invalid basis", "bold"), f": {message}"))

    def action_new_session(self) -> None:
        """Ask for a folder (default: beside this session's) and create a session with the edited basis."""
        app: Any = self.app
        if self.session is None or self.basis_spec is None:
            app.report("the basis of this session comes from a file: not editable here", "warning")
            return
        try:
            pot = edited_potential(self.basis_spec, self.basis_texts())
        except BasisError as exc:
            app.report(f"no new session: {exc}", "error")
            return
        default = sibling_folder(self.session, Path(app.folder))
        app.push_screen(ParamsDialog("New session with this basis", [
            ("folder", "folder (data and fit settings of this session)", shown_path(default))]),
            partial(self._create, pot, default))

    def _create(self, pot: dict[str, Any], default: Path, params: dict[str, Any] | None) -> None:
        if params is None:
            return
        app: Any = self.app
        folder = Path(str(params.get("folder") or default))
        if not folder.is_absolute() and folder.parent == Path("."):
            folder = Path(app.folder) / folder
        app.new_session(pot, folder)

    # ------------------------------------------------------------------ settings
    def _edited(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, text in self.original.items():
            inp = self.query_one(f"#set-{key}", Input)
            inp.remove_class("-invalid")
            if inp.value.strip() == text:
                continue
            try:
                out[key] = yaml.safe_load(inp.value) if inp.value.strip() else None
            except yaml.YAMLError as exc:
                inp.add_class("-invalid")
                raise SettingsError(f"{key}: not a value ({str(exc).splitlines()[0]})") from None
        return out

    def validate(self) -> bool:
        """Check the edited values with ``preview_settings``; show what they would do, or why not."""
        msg = self.query_one("#setup-msg", Static)
        if self.session is None:
            return False
        try:
            self.pending = self._edited()
            report = self.session.preview_settings(**self.pending)
        except (SettingsError, ValueError, TypeError) as exc:
            self.error = str(exc)
            for key in self.pending:
                if key in self.error:
                    self.query_one(f"#set-{key}", Input).add_class("-invalid")
            msg.update(f"[b]✗ invalid[/b]: {self.error}")
            msg.set_class(True, "error")
            return False
        self.error = None
        msg.set_class(False, "error")
        msg.update("Edit a value, Enter (or c) applies." if report.empty else
                   f"[b]Enter applies[/b]:\n{report}")
        return True

    def apply(self) -> None:
        """Apply the edited values (nothing when they are invalid or unchanged)."""
        if self.session is None or not self.validate() or not self.pending:
            if self.error:
                self.app.notify(f"settings not applied: {self.error}", severity="error")
            return
        app: Any = self.app
        session = self.session

        def done(report: Any) -> None:
            app.report(f"settings changed: {str(report).splitlines()[-1]}")
            self.load_session(session)
        app.track(session.change_settings(self.pending), "change settings", done)


def _count(gen: int, pot: dict[str, Any]) -> tuple[int, dict[str, Any] | BasisError]:
    """Worker body: (edit number, counts of the rebuilt basis or why it cannot be built)."""
    try:
        return gen, basis_counts(pot)
    except BasisError as exc:
        return gen, exc
