"""Honest live numbers, cold-start stages and commands acknowledged at once (issue 15), in the session
layer and in both front ends: a stale test value is labelled, the stage shows before the first
iteration, a pause is acknowledged in the same UI tick, a burst of tab keys ends on the last one."""

from __future__ import annotations

import asyncio
import threading
import time

import pandas as pd
import pytest

from paceui.session import Phase, Progress, StageChanged
from paceui.session.live import live_metrics, record_iterations
from paceui.session.testing import tiny_session
from tests.session_fixtures import _cache  # noqa: F401


def _history() -> pd.DataFrame:
    # a cycle start (test evaluated), iterations 1..3 (test at 2 only: display_step 2), a new cycle start
    return pd.DataFrame({"iteration": [0, 1, 2, 3, 0, 1], "loss": [5., 4., 3., 2., 2.5, 1.5],
                         "rmse_epa": [.5, .4, .3, .2, .25, .15],
                         "test_loss": [6., None, 3.5, None, None, None],
                         "test_rmse_epa": [.6, None, .35, None, None, None]})


def test_every_number_says_its_iteration_and_stale_test_values_are_marked():
    h = _history()
    assert record_iterations(h).tolist() == [0, 1, 2, 3, 3, 4]  # a cycle start shares the iteration before it
    m = live_metrics(h)
    assert (m.train_at, m.test_at, m.test_behind, m.test_stale) == (4, 2, 2, True)
    assert m.train["loss"] == 1.5 and m.test["loss"] == 3.5 and m.test["rmse_epa"] == 0.35
    assert m.test_label == "test @2 (stale: 2 it behind)" and m.train_label == "train @4"
    fresh = live_metrics(h.iloc[:3])
    assert fresh.test_at == fresh.train_at == 2 and not fresh.test_stale
    none = live_metrics(h.drop(columns=["test_loss", "test_rmse_epa"]))
    assert not none.has_test and none.test_label == "test"
    assert live_metrics(h.iloc[:0]).train_at is None


def test_tui_and_notebook_label_a_stale_test_value():
    pytest.importorskip("ipywidgets")
    from paceui.notebook.plots import metrics_html
    from paceui.session import SessionStatus
    from paceui.tui.pane_fit import metrics_text

    h = _history()
    tui = metrics_text(h, SessionStatus())
    assert "at it            4         2" in tui and "stale: test 2 it behind" in tui
    assert "350*" in tui  # the stale test RMSE (meV/atom), starred
    nb = metrics_html(h)
    assert "it 4" in nb and "test (stale)<br>it 2" in nb and "2 iterations behind" in nb
    assert "stale" not in metrics_html(h.iloc[:3])
    assert "test" not in metrics_html(h.drop(columns=["test_loss", "test_rmse_epa"]))  # no test set: no column


def _slow_first_step(session, delay: float) -> threading.Event:
    """Make the fit's first step take ``delay`` s longer (a cold start on a loaded machine)."""
    fitter, step, released = session.fitter, session.fitter.step, threading.Event()

    def slow():
        if not released.is_set():
            released.set()
            time.sleep(delay)
        return step()
    fitter.step = slow
    return released


def test_session_emits_its_stage_before_the_first_record(tmp_path):
    s = tiny_session(fit={"maxiter": 3})
    try:
        sub = s.subscribe()
        _slow_first_step(s, 0.5)
        s.start()
        time.sleep(0.25)
        st = s.status
        assert st.phase is Phase.RUNNING and "compiling kernels" in st.stage and "s" in st.stage_text()
        assert "compiling kernels" in st.describe()
        assert s.wait(120)
        evs = [e for e in sub.poll() if isinstance(e, (StageChanged, Progress))]
        first = next(i for i, e in enumerate(evs) if isinstance(e, Progress))
        stages = [e.stage for e in evs[:first] if isinstance(e, StageChanged)]
        assert stages and "compiling kernels" in stages[0]
        ended = [e for e in evs if isinstance(e, StageChanged) and not e.stage]
        assert ended and ended[0].elapsed >= 0.5
        assert s.status.stage == ""
    finally:
        s.close()


def test_pause_is_pending_at_once_and_its_action_disabled(tmp_path):
    s = tiny_session(fit={"maxiter": 100000})
    try:
        s.run(2)
        gate = threading.Event()
        s.start()
        s.call(lambda: gate.wait(10))  # the fit thread is busy (a long iteration)
        time.sleep(0.05)
        fut = s.pause()
        st = s.status
        assert st.pending == ("pause",) and st.pending_text() == "pausing…"
        assert "pause" not in [a.name for a in s.actions] and "stop" in [a.name for a in s.actions]
        gate.set()
        assert fut.result(60) is True
        assert s.status.pending == () and s.status.phase is Phase.PAUSED
    finally:
        s.close()


@pytest.mark.asyncio
async def test_tui_shows_the_stage_and_acknowledges_pause_in_the_same_tick(tmp_path):
    pytest.importorskip("textual")
    from textual.widgets import Static

    from paceui.tui import PaceApp
    from paceui.tui.testing import until

    s = tiny_session(path=tmp_path / "s", fit={"maxiter": 100000})
    try:
        _slow_first_step(s, 6.0)
        app = PaceApp(s)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("s")

            def shown() -> str:
                return (str(app.query_one("#fit-metrics", Static).render()) + "\n"
                        + str(app.query_one("#status", Static).render()))
            await until(pilot, lambda: "compiling kernels" in shown(), timeout=30)
            assert s.status.total_iterations == 0 and s.status.stage  # before the first record
            assert "press" not in shown() and "nan" not in shown() and shown().count("compiling kernels") == 2
            await until(pilot, lambda: s.status.total_iterations >= 2)
            gate = threading.Event()
            s.call(lambda: gate.wait(10))
            await pilot.pause(0.1)
            app.run_named_action("pause")  # what the p key does; no await: the same UI tick
            assert "pausing…" in str(app.query_one("#status", Static).render())
            assert app.check_action("act", ("pause",)) is None
            gate.set()
            await until(pilot, lambda: s.status.phase is Phase.PAUSED)
            await until(pilot, lambda: "pausing" not in str(app.query_one("#status", Static).render()))
    finally:
        s.close()


@pytest.mark.asyncio
async def test_twenty_tab_keys_in_a_second_end_on_the_last_and_the_app_is_idle(tmp_path):
    pytest.importorskip("textual")
    from textual import events
    from textual.widgets import TabbedContent

    from paceui.tui import PaceApp
    from paceui.tui.commands import TABS
    from paceui.tui.pane_sessions import SessionsPane
    from paceui.tui.testing import until

    s = tiny_session(path=tmp_path / "s")
    try:
        app = PaceApp(s)
        scans = []
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(SessionsPane)
            orig = pane._scan
            pane._scan = lambda folder: (scans.append(folder), orig(folder))[1]
            names = {str(k + 1): tab for k, (tab, _) in enumerate(TABS)}
            switches = []
            tabs = app.query_one(TabbedContent)
            tabs.watch(tabs, "active", lambda v: switches.append(v), init=False)
            # a burst (keys queued faster than TAB_COALESCE, as while a pane renders): one switch, to the last
            for k in ["2", "3", "4", "2", "3", "4", "2", "3", "4", "2"]:
                app.post_message(events.Key(k, k))
            await until(pilot, lambda: tabs.active == "data" and app._tab_switch is None, timeout=20)
            assert switches == ["data"], switches
            switches.clear()
            keys = ["3", "4", "5", "2", "1"] * 4
            keys[-1] = "5"  # the last key: Sessions

            def typist() -> None:  # a user's 20 keys in 1 s, whatever the UI is doing (as a terminal sends them)
                for k in keys:
                    app.post_message(events.Key(k, k))
                    time.sleep(0.05)
            t = threading.Thread(target=typist)
            t.start()
            while t.is_alive():
                await asyncio.sleep(0.05)
            # the last key wins; on an idle machine within 0.1 s (here: loaded 10x, one pane layout takes ~2 s)
            await until(pilot, lambda: tabs.active == "sessions" and app._tab_switch is None, timeout=20)
            # each switch shows a tab that was asked for, in the keys' order: keys 50 ms apart may each show
            # their tab on an idle machine; queued ones (a busy UI) coalesce into the last of them
            it = iter(names[k] for k in keys)
            assert all(any(v == w for w in it) for v in switches), switches
            assert switches[-1] == "sessions" and len(switches) <= len(keys)
            await pilot.pause(1.0)
            assert app.query_one(TabbedContent).active == "sessions"  # no flip by itself
            assert len(scans) <= 1  # debounced: one scan for the tab that stayed, none for the others
            busy = [w for w in app.workers if w.is_running]
            assert not busy
    finally:
        s.close()


@pytest.mark.asyncio
async def test_focus_never_switches_tabs_and_a_stale_activation_focuses_nothing(tmp_path):
    """The cause of the tabs flipping by themselves after a burst of tab keys: the pane of an earlier key got
    focus after the last key's switch, and Textual's TabbedContent shows the pane of whatever gets focus."""
    pytest.importorskip("textual")
    from textual.widgets import TabbedContent

    from paceui.tui import PaceApp

    s = tiny_session(path=tmp_path / "s")
    try:
        app = PaceApp(s)
        async with app.run_test(size=(100, 30)) as pilot:
            tabs = app.query_one(TabbedContent)
            assert tabs.active == "fit"
            app.query_one("#an-table").focus()  # what a stale activation of Analysis used to do
            await pilot.pause(0.3)
            assert tabs.active == "fit"
            tabs.active = "data"  # Data's activation is queued; before it runs, the user is on Sessions
            tabs.active = "sessions"
            await pilot.pause(0.5)
            assert tabs.active == "sessions" and app.focused is app.query_one("#sessions-table")
    finally:
        s.close()


def test_notebook_acknowledges_a_click_at_once_and_reads_well_before_the_first_record(tmp_path):
    pytest.importorskip("ipywidgets")
    from paceui.notebook import Dashboard
    from paceui.notebook.dashboard import describe_event, status_text
    from paceui.session import Saved, SessionStatus

    assert "1 iteration in total" in status_text(SessionStatus(total_iterations=1, loss=0.5))
    assert "no loss yet" in status_text(SessionStatus()) and "nan" not in status_text(SessionStatus())
    assert describe_event(Saved("p", 3, 20, True)) is None  # autosaves don't flood the event list
    s = tiny_session(fit={"maxiter": 100000})
    try:
        dash = Dashboard(s)
        assert dash.curves.layout.display == "none" and dash.parity.layout.display == "none"  # no broken image
        assert "no metrics yet" in dash.metrics.value and "<div><b>current metrics</b></div>" in dash.metrics.value
        s.run(2)
        dash.refresh(force=True)
        assert dash.curves.layout.display is None and dash.progress_text.value.startswith("iteration 2/")
        assert "14/14 functions" in dash.basis_text.value
        gate = threading.Event()
        s.start()
        s.call(lambda: gate.wait(10))
        time.sleep(0.05)
        dash.buttons["pause"].click()  # no refresh(): the click itself shows it
        assert "pausing…" in dash.status_html.value and dash.buttons["pause"].disabled
        gate.set()
        assert s.wait(60)
        dash.refresh()
        assert "pausing" not in dash.status_html.value and s.status.phase is Phase.PAUSED
        dash.close()
    finally:
        s.close()


@pytest.mark.asyncio
async def test_escape_leaves_a_field_and_question_mark_lists_every_key(tmp_path):
    pytest.importorskip("textual")
    from textual.widgets import Input, Static

    from paceui.tui import PaceApp
    from paceui.tui.dialogs import KeysHelp

    s = tiny_session(path=tmp_path / "s")
    try:
        app = PaceApp(s, initial_tab="sessions")
        async with app.run_test(size=(100, 30)) as pilot:
            app.query_one("#sessions-saveas", Input).focus()
            await pilot.press("a", "escape")
            assert not isinstance(app.focused, Input)
            assert app.query_one("#sessions-saveas", Input).value == "a"
            await pilot.press("question_mark")
            assert isinstance(app.screen, KeysHelp)
            text = str(app.screen.query_one("#keys-list", Static).render())
            assert "Pause" in text and "(not now)" in text and "Quit" in text
            await pilot.press("escape")
            assert not isinstance(app.screen, KeysHelp)
    finally:
        s.close()


def test_cli_stages_show_a_spinner_on_a_terminal_and_log_their_duration(monkeypatch, caplog):
    import io
    import logging

    from paceui.fit import stages

    log = logging.getLogger("paceui.test.stages")
    with caplog.at_level(logging.INFO, logger=log.name):
        with stages.shown_stage(stages.FIRST_EVALUATION, log):
            time.sleep(0.05)
    assert f"{stages.FIRST_EVALUATION}: done in" in caplog.text
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", tty)
    with stages.shown_stage("compiling kernels"):
        time.sleep(0.3)
    assert "compiling kernels…" in tty.getvalue()
