"""The paceui Textual app: a status line, six tabs (Setup, Data, Fit, Analysis, Trust, Sessions) and a footer
whose keys come from the session action table.

Threads: the fit runs in the session's own thread and only emits events; the app polls its
:class:`~paceui.session.Subscription` from a timer on the UI loop (progress is coalesced by the
subscription, redraws of plots are rate-limited here), and checks command futures the same way.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any, Callable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane, TextArea
from textual.worker import Worker, WorkerState

from paceui.session import (
    Action,
    Changed,
    CycleChanged,
    Event,
    Failed,
    FitStarted,
    LadderStepChanged,
    Paused,
    Phase,
    Progress,
    Saved,
    Session,
    SessionStatus,
    Stopped,
    action,
)
from paceui.session import actions as table
from paceui.session.actions import send
from paceui.tui.basis_form import create_with_basis
from paceui.tui.commands import TABS, ActionCommands, action_bindings
from paceui.tui.dialogs import Check, Confirm, KeysHelp, ParamsDialog, extend_problem, randomize_problem
from paceui.tui.format import num, value_text
from paceui.tui.jump import SettingJump
from paceui.tui.pane_analysis import AnalysisPane
from paceui.tui.pane_data import DataPane
from paceui.tui.pane_fit import FitPane
from paceui.tui.pane_sessions import SessionsPane
from paceui.tui.pane_setup import FIELDS, SetupPane
from paceui.tui.pane_trust import TrustPane

FIELD_BY_KEY = {f.key: f for f in FIELDS}


class PaneTabs(TabbedContent):
    """The app's tabs: only a tab key, a click or :attr:`active` switches them. Textual's TabbedContent also
    shows the pane of any widget that gets focus; with a burst of tab keys the focus given to the pane of an
    earlier key arrives after the last key's switch and flipped the tabs back by themselves."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.prevent_default()  # not TabbedContent's handler: focus never switches tabs
        event.stop()
OWN = {"change_settings": "apply_settings", "save": "save", "load": "show_sessions"}
"""Actions the TUI runs through a step of its own (an app method) rather than straight on the session."""


def _candidates_loaded(app: "PaceApp", n: int) -> None:
    app.report(f"{n} candidates loaded")
    if app.session.status.active_set != "none":
        app.run_named_action("gamma", {"subset": "candidates"})
    else:
        app.query_one(TrustPane).show()


def _active_set_computed(app: "PaceApp", _state: Any) -> None:
    app.query_one(TrustPane).show()
    app.run_named_action("gamma", {"subset": "train"})  # γ of the training set at once


AFTER: dict[str, Callable[["PaceApp", Any], Any]] = {
    "extend_ladder": lambda app, n: app.report(f"ladder extended: {n} functions added"),
    "compute_active_set": _active_set_computed,
    "gamma": lambda app, table: app.query_one(TrustPane).show_gamma(table),
    "load_candidates": _candidates_loaded,
    "select_candidates": lambda app, table: app.query_one(TrustPane).show_selection(table),
    "add_structures": lambda app, _: app.query_one(TrustPane).show(),
    "undo": lambda app, msg: app.report(msg),
}
"""What the TUI shows with a command's result (an action without an entry: its Changed event only)."""


def _extend_check(app: "PaceApp") -> Check:
    session: Session = app.session
    return partial(extend_problem, left=session.status.functions_left)


def _randomize_preview(app: "PaceApp", values: dict[str, Any]) -> Any:
    session: Session = app.session
    return session.preview_randomize(**values)


CHECKS: dict[str, Callable[["PaceApp"], Check]] = {
    "randomize": lambda app: randomize_problem,
    "extend_ladder": _extend_check,
}
"""Inline checks of a dialog's values (the dialog stays open and says what is wrong, in the user's words)."""
PREVIEWS: dict[str, Callable[["PaceApp", dict[str, Any]], Any]] = {
    "randomize": _randomize_preview,
}
"""What a dialog's values would do, shown in the dialog as they are edited (a Future of a ``describe()``-able)."""


def dialog_fields(a: Action) -> list[tuple[str, str, str]]:
    """The dialog lines (name, question, initial text) of an action's parameters."""
    return [(p.name, p.label, value_text(p.default)) for p in a.params]


def params_dialog(app: "PaceApp", a: Action) -> ParamsDialog:
    """The dialog asking for an action's parameters (one line each, from the table), with the action's inline
    check (:data:`CHECKS`) and preview (:data:`PREVIEWS`) where it has them."""
    check = CHECKS[a.name](app) if a.name in CHECKS else None
    preview = partial(PREVIEWS[a.name], app) if a.name in PREVIEWS else None
    return ParamsDialog(a.title.rstrip("…"), dialog_fields(a), check, preview)


DIALOGS: dict[str, Callable[["PaceApp", Action], Any]] = {}
"""Actions whose parameters the TUI asks for with a dialog of its own (e.g. with checks and a preview);
the others get :func:`params_dialog`."""


def status_line(name: str, st: SessionStatus) -> str:
    """The top line: phase (and pending commands, at once), where the fit stands, the loss with its
    iteration; before the first record the cold-start stage with its elapsed time."""
    phase = f"[b]{st.phase.value.upper()}[/b]" + (f" [reverse]{st.pending_text()}[/reverse]" if st.pending else "")
    if st.stage:
        return f"[b]{name}[/b] │ {phase} │ {st.stage_text()}"
    return (f"[b]{name}[/b] │ {phase} │ step {st.ladder_step} cycle {st.cycle} it {st.iteration} │ "
            f"total {st.total_iterations} │ loss@{st.total_iterations} {num(st.loss)} │ "
            f"{st.nfuncs}/{st.target_nfuncs} fn")


class PaceApp(App[None]):
    """Steer one :class:`Session` (``session``); ``folder`` is where the Sessions tab looks for others."""

    CSS_PATH = "paceui.tcss"
    TITLE = "paceui"
    COMMANDS = App.COMMANDS | {ActionCommands}
    BINDINGS = action_bindings()
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-normal")]  # Screen.-narrow rules in paceui.tcss

    def __init__(self, session: Session, *, folder: str | Path | None = None, poll_interval: float = 0.2,
                 redraw_interval: float = 1.0, initial_tab: str = "fit", autostart: bool = False) -> None:
        super().__init__()
        self.session = session
        self.folder = Path(folder) if folder else (session.path.parent if session.path else Path("sessions"))
        self.poll_interval, self.redraw_interval = poll_interval, redraw_interval
        self.initial_tab, self.autostart = initial_tab, autostart
        self.subscription = session.subscribe()
        self.messages: list[str] = []   # notifications shown (tests and the Fit log read them)
        self._pending: list[tuple[Future[Any], str, Callable[[Any], None] | None]] = []
        self._shown_status: SessionStatus | None = None
        self._enabled: tuple[bool, ...] = ()
        self._fit_dirty, self._last_redraw = True, 0.0
        self._last_progress: Progress | None = None
        self.redraws = 0                # plot redraws done (the benchmark reads it)
        self.startup_messages: list[tuple[str, str]] = []  # (message, severity) shown once mounted
        self._tab_timer: Any = None     # the debounced refresh of a newly shown pane
        self._tab_switch: Any = None    # the coalesced tab switch of tab keys
        self._want_tab = ""
        self._jump_to = ""              # the Setup field to focus once the tab shows (the / jump)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with PaneTabs(initial=self.initial_tab, id="tabs"):
            for tab, title in TABS:
                with TabPane(title, id=tab):
                    yield {"setup": SetupPane, "data": DataPane, "fit": FitPane, "analysis": AnalysisPane,
                           "trust": TrustPane, "sessions": SessionsPane}[tab](id=f"{tab}-pane")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(self.poll_interval, self.poll_events, name="poll")
        self.show_session()
        for message, severity in self.startup_messages:
            self.report(message, severity)
        if self.autostart:
            self.run_named_action("start")

    def show_session(self) -> None:
        """Fill every pane from the current session (after start or after opening another one)."""
        for pane in (self.query_one(SetupPane), self.query_one(DataPane), self.query_one(FitPane),
                     self.query_one(AnalysisPane), self.query_one(TrustPane), self.query_one(SessionsPane)):
            pane.load_session(self.session)
        self._fit_dirty = True
        self.update_status(force=True)

    # ------------------------------------------------------------------ events (UI thread only)
    def poll_events(self) -> None:
        """Timer callback: :meth:`_poll`, never raising (an error becomes a notification, not a traceback)."""
        try:
            self._poll()
        except NoMatches:  # the app is closing: its widgets are gone
            pass
        except Exception as exc:  # noqa: BLE001
            self.report(f"display error: {exc}", "error")

    def _poll(self) -> None:
        """Drain the subscription, finish command futures, redraw what changed (rate-limited)."""
        for ev in self.subscription.poll():
            self.handle_event(ev)
        for item in list(self._pending):
            fut, label, then = item
            if not fut.done():
                continue
            self._pending.remove(item)
            exc = fut.exception()
            if exc is not None:
                self.report(f"{label}: {exc}", "error")
            elif then is not None:
                then(fut.result())
        now = time.monotonic()
        due = now - self._last_redraw >= self.redraw_interval
        if due or self.session.status.phase is not Phase.RUNNING:  # while fitting: at the redraw rate
            self.update_status()
        if due and self._last_progress is not None:
            self.query_one(FitPane).log_progress(self._last_progress)  # the latest of the coalesced records
            self._last_progress = None
        if self._fit_dirty and due:
            self._fit_dirty, self._last_redraw = False, now
            self.redraws += 1
            self.query_one(FitPane).redraw(self.session)

    def handle_event(self, ev: Event) -> None:
        fit = self.query_one(FitPane)
        if isinstance(ev, Progress):
            self._fit_dirty, self._last_progress = True, ev
            return
        if isinstance(ev, Failed):
            self.report(f"engine error: {ev.message}", "error")
        elif isinstance(ev, Stopped):
            self.report(f"fit halted: {ev.message}")
        elif isinstance(ev, Changed):
            self.report(f"{ev.action}: {ev.message}")
            self._fit_dirty = True
        elif isinstance(ev, Saved):
            if not ev.autosave:
                self.report(f"saved {self.session.name} (generation {ev.generation})")
            else:
                fit.log_line(f"autosaved (generation {ev.generation}, {ev.total_iterations} iterations)")
        elif isinstance(ev, Paused):
            fit.log_line(f"paused after {ev.total_iterations} iterations")
            return
        elif isinstance(ev, FitStarted):
            fit.log_line(f"fit started at ladder step {ev.ladder_step}, cycle {ev.cycle} "
                         f"({ev.total_iterations} iterations so far)")
        elif isinstance(ev, LadderStepChanged):
            fit.log_line(f"ladder step {ev.ladder_step}: {ev.nfuncs} functions")
        elif isinstance(ev, CycleChanged):
            fit.log_line(f"cycle {ev.cycle} of ladder step {ev.ladder_step}")

    def report(self, message: str, severity: str = "information") -> None:
        """A notification (never a traceback on screen); also kept in ``messages`` and the Fit log."""
        self.messages.append(message)
        self.notify(message, severity=severity, timeout=6 if severity != "error" else 12)  # type: ignore[arg-type]
        try:
            self.query_one(FitPane).log_line(message)
        except NoMatches:
            pass

    def track(self, fut: Future[Any], label: str, then: Callable[[Any], None] | None = None) -> None:
        """Watch a command future from the poll timer: errors become notifications, ``then(result)`` runs
        on the UI thread."""
        self._pending.append((fut, label, then))

    def update_status(self, force: bool = False) -> None:
        st = self.session.status
        if not force and st == self._shown_status and not st.stage:  # a stage shows its elapsed time
            return
        self._shown_status = st
        self.query_one("#status", Static).update(status_line(self.session.name, st), layout=False)  # fixed size
        enabled = tuple(a.enabled(st) for a in table.ACTIONS)
        if enabled != self._enabled:  # re-render the footer only when a key changes state
            self._enabled = enabled
            self.refresh_bindings()
        self.query_one(SetupPane).show_counts(st)
        if force or st.phase is not Phase.RUNNING or st.stage:
            self.query_one(FitPane).show_status(st)  # while iterating: with the rate-limited redraw

    # ------------------------------------------------------------------ actions
    def check_action(self, name: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out (None) the session actions that are not enabled in the current phase."""
        if name == "act" and parameters:
            return True if action(str(parameters[0])).enabled(self.session.status) else None
        return True

    TAB_COALESCE = 0.04  # s: tab keys closer than this are one switch, to the last key's tab

    def action_tab(self, tab: str) -> None:
        """Show ``tab``; a burst of tab keys (queued while a pane renders) shows only the last one's tab,
        so keys never land on the wrong tab and no pane is laid out for nothing."""
        self._want_tab = tab
        if self._tab_switch is not None:
            self._tab_switch.stop()
        self._tab_switch = self.set_timer(self.TAB_COALESCE, self._switch_tab)

    def _switch_tab(self) -> None:
        self._tab_switch = None
        try:
            tabs = self.query_one(TabbedContent)
        except NoMatches:  # closing
            return
        if self._want_tab and tabs.active != self._want_tab:
            tabs.active = self._want_tab

    TAB_SETTLE = 0.25  # s a tab must stay shown before its pane refreshes (a burst of tab keys does nothing else)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Only show the pane and focus its main widget (so its keys work at once); what may be stale is
        refreshed once the tab has stayed shown ``TAB_SETTLE`` s, in workers (debounced: the last tab wins)."""
        pane = str(event.pane.id)
        try:
            if self._tab_switch is not None or self.query_one(TabbedContent).active != pane:
                return  # a stale activation (a later tab key is pending or shown): that one focuses its pane
            focus = self.FOCUS.get(pane)
            if pane == "setup" and self._jump_to:
                focus, self._jump_to = f"#{self._jump_to}", ""
            if focus:
                self.query_one(focus).focus()
        except NoMatches:  # the app is closing: its widgets are gone
            return
        if self._tab_timer is not None:
            self._tab_timer.stop()
        self._tab_timer = self.set_timer(self.TAB_SETTLE, partial(self._tab_settled, pane))

    def _tab_settled(self, pane: str) -> None:
        self._tab_timer = None
        if self.query_one(TabbedContent).active != pane:
            return
        if pane == "analysis":
            self.query_one(AnalysisPane).refresh_if_stale()
        elif pane == "trust":
            self.query_one(TrustPane).show()
        elif pane == "sessions":
            self.query_one(SessionsPane).rescan_in_background()

    FOCUS = {"setup": "#setup-scroll", "data": "#data-table", "fit": "FitPane", "analysis": "#an-table",
             "trust": "#trust-table", "sessions": "#sessions-table"}

    def action_leave_field(self) -> None:
        """Escape in a field: focus the tab's main widget, so letter and digit keys are keys again."""
        if isinstance(self.focused, (Input, TextArea)):
            pane = str(self.query_one(TabbedContent).active)
            self.query_one(self.FOCUS.get(pane, "FitPane")).focus()

    def action_keys(self) -> None:
        """``?`` and F1: every key (the action table's and the app's) with what it does and whether it works now;
        in a Setup field, that setting's help first."""
        rows = []
        for b in self.BINDINGS:
            if not isinstance(b, Binding) or b.key in ("escape",):
                continue
            name = b.action
            on = True
            if name.startswith("act("):
                a = action(name[5:-2])
                desc, on = f"{a.title}: {a.description}", bool(a.enabled(self.session.status))
            else:
                desc = b.description or name
            rows.append((b.key_display or b.key, desc[:90], on))
        rows.append(("m", "Fit tab: next plotted metric", True))
        rows.append(("ctrl+p", "command palette: every action by name", True))
        ident = str(getattr(self.focused, "id", "") or "")
        if ident.startswith("set-") and ident[4:] in FIELD_BY_KEY:  # F1 in a Setup field: that setting too
            f = FIELD_BY_KEY[ident[4:]]
            rows.insert(0, ("field", f"{f.key} ({f.path}): {f.label}" + (f"; {f.help}" if f.help else ""), True))
        self.push_screen(KeysHelp(rows))

    def action_jump(self) -> None:
        """``/``: find a setting by name (fuzzy) and focus its field on the Setup tab."""
        self.push_screen(SettingJump(), self._jump)

    def _jump(self, ident: str | None) -> None:
        if not ident:
            return
        tabs = self.query_one(TabbedContent)
        if tabs.active != "setup":
            self._jump_to = ident  # focused by on_tabbed_content_tab_activated once the tab shows
            tabs.active = "setup"
            return
        widget = self.query_one(f"#{ident}")
        widget.focus()
        widget.scroll_visible(animate=False)

    def action_act(self, name: str) -> None:
        self.run_named_action(name)

    def run_named_action(self, name: str, params: dict[str, Any] | None = None) -> None:
        """Run one action of the table (keys and the command palette both end here): a step of the TUI's own
        (:data:`OWN`), else the session command, asking for its parameters first when its title ends in "…"
        (``params``: their values, no dialog)."""
        a = action(name)
        if not a.enabled(self.session.status):
            self.report(f"{a.title} is not possible now ({self.session.status.phase.value})", "warning")
            return
        if name in OWN:
            getattr(self, OWN[name])()
        elif params is not None or not a.asks:
            self._send(a, params or {})
        else:
            self.push_screen(DIALOGS.get(name, params_dialog)(self, a), partial(self._send, a))
        self.update_status(force=True)  # "pausing…" and the disabled key in this very tick

    def _send(self, a: Action, params: dict[str, Any] | None) -> None:
        """Send action ``a`` with ``params`` (None: the dialog was cancelled); its result goes to :data:`AFTER`."""
        if params is None:
            return
        missing = [p.label for p in a.params if p.required and params.get(p.name) in (None, "")]
        if missing:
            self.report(f"{a.title.rstrip('…')}: give the {missing[0]}", "warning")
            return
        then = partial(AFTER[a.name], self) if a.name in AFTER else None
        self.track(send(self.session, a, params), a.name.replace("_", " "), then)
        self.update_status(force=True)

    def apply_settings(self) -> None:
        """``c``: apply the edits of the Setup tab."""
        self.action_tab("setup")
        self.query_one(SetupPane).apply()

    def show_sessions(self) -> None:
        """Load: the Sessions tab lists the saved sessions (Enter opens one)."""
        self.action_tab("sessions")
        self.query_one(SessionsPane).focus_table()

    def save(self, path: str | Path | None = None, then: Callable[[Any], None] | None = None) -> None:
        """Save (to ``path``, else the session's folder); without a folder, ask for one in Sessions."""
        if path is None and self.session.path is None:
            self.report("this session has no folder yet: give one under 'save as' (Sessions tab)", "warning")
            self.action_tab("sessions")
            return
        self.track(self.session.save_async(path), "save", then)

    async def action_quit(self) -> None:
        """Quit; a running fit is stopped and saved after a confirmation, any other session is saved."""
        if self.session.status.phase is Phase.RUNNING:
            self.push_screen(Confirm("A fit is running. Stop it, save the session and quit?"), self._quit_answer)
            return
        self._save_and_exit()

    def _quit_answer(self, yes: bool | None) -> None:
        if yes:
            self.report("stopping at the end of the current iteration, then saving…")
            self.track(self.session.stop(), "stop", lambda _: self._save_and_exit())

    def _save_and_exit(self) -> None:
        if self.session.path is None:
            self.exit()
            return
        self.track(self.session.save_async(), "save", lambda _: self.exit())

    def open_session(self, path: str | Path) -> None:
        """Replace the session by the one saved at ``path``: the current one is saved and the other loaded
        in a thread worker (seconds for large data sets), then the panes are filled again."""
        if self.session.status.phase is Phase.RUNNING:
            self.report("stop or pause the fit before opening another session", "warning")
            return
        self.report(f"opening {Path(path).name}…")
        self.run_worker(partial(self._save_and_load, self.session, Path(path)), thread=True, group="open",
                        name="open the session", exit_on_error=False)

    def new_session(self, potential: dict[str, Any], path: str | Path) -> None:
        """Switch to a new session in ``path``: this one's settings with ``potential`` as its basis (this one
        is saved first); built in a thread worker (data preparation), then opened as :meth:`open_session`."""
        if self.session.status.phase is Phase.RUNNING:
            self.report("stop or pause the fit before creating another session", "warning")
            return
        self.report(f"creating {Path(path).name}…")
        self.run_worker(partial(create_with_basis, self.session, potential, Path(path)), thread=True,
                        group="open", name="create the session", exit_on_error=False)

    @staticmethod
    def _save_and_load(old: Session, path: Path) -> Session:
        if old.path is not None:
            old.save()
        return Session.load(path)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "open":
            return
        if event.state is WorkerState.ERROR:
            self.report(f"cannot {event.worker.name or 'open the session'}: {event.worker.error}", "error")
        elif event.state is WorkerState.SUCCESS and isinstance(event.worker.result, Session):
            old, new = self.session, event.worker.result
            self.subscription.close()
            old.close()
            self.session, self.subscription = new, new.subscribe()
            self.show_session()
            self.report(f"opened {new.name}")
