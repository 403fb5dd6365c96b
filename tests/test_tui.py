"""Pilot-driven tests of the terminal UI on tiny sessions: the fit lifecycle through keys, settings
validation, analysis, data, sessions and the command palette. Assertions on Session state and widgets."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Log  # noqa: E402

from paceui.session import Failed as Error  # noqa: E402
from paceui.session import Phase, Session  # noqa: E402
from paceui.session.testing import tiny_session  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.dialogs import Confirm, ParamsDialog  # noqa: E402
from paceui.tui.pane_analysis import AnalysisPane  # noqa: E402
from paceui.tui.pane_fit import FitPane  # noqa: E402
from paceui.tui.pane_setup import SetupPane  # noqa: E402
from paceui.tui.testing import text, until  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

pytestmark = pytest.mark.asyncio


@pytest.fixture
def ladder_session(tmp_path):
    s = tiny_session(path=tmp_path / "s", fit={"maxiter": 5000, "ladder_step": 4})
    yield s
    s.close()


async def test_fit_lifecycle_through_keys(ladder_session, tmp_path):
    s = ladder_session
    app = PaceApp(s)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.check_action("act", ("pause",)) is None   # greyed out before a fit
        assert app.check_action("act", ("start",)) is True
        fit = app.query_one(FitPane)
        redraws = app.redraws
        await pilot.press("s")
        await until(pilot, lambda: s.status.total_iterations >= 3 and app.redraws > redraws + 1)
        await until(pilot, lambda: fit.plotted >= 3)  # the curve holds the new records
        log = app.query_one("#fit-log", Log)
        assert any(line.startswith("iteration ") and "loss" in line for line in log.lines)
        assert "train" in text(app.query_one("#fit-metrics"))
        await pilot.press("p")
        await until(pilot, lambda: s.status.phase is Phase.PAUSED)
        await pilot.pause(0.3)
        assert "PAUSED" in text(app.query_one("#status"))
        assert app.check_action("act", ("pause",)) is None and app.check_action("act", ("resume",)) is True
        done = s.status.total_iterations
        metrics = text(app.query_one("#fit-metrics"))
        assert f"it {s.status.iteration}" in metrics

        cycle = s.status.cycle
        await pilot.press("n")
        assert isinstance(app.screen, ParamsDialog)
        await pilot.press("enter")
        await until(pilot, lambda: s.status.cycle == cycle + 1 and any("randomize" in m for m in app.messages))

        nfuncs, step = s.status.nfuncs, s.status.ladder_step  # the step the pause met (a fast fit may be past 0)
        assert s.status.functions_left > 0
        await pilot.press("l")
        await pilot.press("2", "enter")
        await until(pilot, lambda: s.status.nfuncs > nfuncs)
        await until(pilot, lambda: any(m.startswith("ladder extended") for m in app.messages))
        assert s.status.ladder_step == step + 1

        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(m.startswith("saved") for m in app.messages))
        assert s.status.total_iterations == done  # paused: nothing ran meanwhile
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    back = Session.load(tmp_path / "s")
    assert back.status.total_iterations == done and back.status.nfuncs == s.status.nfuncs
    back.close()


async def test_quit_with_running_fit_asks_and_saves(ladder_session, tmp_path):
    s = ladder_session
    app = PaceApp(s)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: s.status.total_iterations >= 2)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("n")
        await pilot.pause(0.2)
        assert s.status.phase is Phase.RUNNING and app.is_running
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running)
    assert s.status.phase is Phase.STOPPED
    back = Session.load(tmp_path / "s")
    assert back.status.total_iterations == s.status.total_iterations
    back.close()


async def test_setup_validates_and_applies(tmp_path):
    s = tiny_session(path=tmp_path / "s")
    app = PaceApp(s, initial_tab="setup")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SetupPane)
        kappa = app.query_one("#set-kappa", Input)
        kappa.focus()
        kappa.value = ""
        await pilot.press("1", ".", "5")
        await pilot.pause(0.1)
        msg = text(app.query_one("#setup-msg"))
        assert "invalid" in msg and "kappa must be in [0, 1]" in msg
        assert kappa.has_class("-invalid")
        await pilot.press("enter")  # invalid: nothing applied
        await pilot.pause(0.2)
        assert s.settings["fit"]["loss"]["kappa"] == 0.3
        await pilot.press("backspace", "backspace", "backspace", "0", ".", "5")
        await pilot.pause(0.1)
        assert "kappa: 0.3 → 0.5" in text(app.query_one("#setup-msg"))
        assert not kappa.has_class("-invalid")
        await pilot.press("enter")
        await until(pilot, lambda: s.settings["fit"]["loss"]["kappa"] == 0.5)
        await until(pilot, lambda: pane.original["kappa"] == "0.5")
        app.query_one("#set-optimizer", Input).value = "NoSuchOptimizer"
        await pilot.pause(0.1)
        assert "NoSuchOptimizer" in text(app.query_one("#setup-msg"))
        counts = text(app.query_one("#setup-counts"))
        assert "Cu" in counts and "14/14" in counts
    s.close()


async def test_analysis_data_and_sessions(tmp_path):
    s = tiny_session(path=tmp_path / "sessions" / "a")
    s.run(iterations=3)
    s.save()
    other = tiny_session(path=tmp_path / "sessions" / "b")
    other.save()
    other.close()
    app = PaceApp(s)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        pane = app.query_one(AnalysisPane)
        await until(pilot, lambda: pane.predictions is not None)
        table = app.query_one("#an-table", DataTable)
        assert table.row_count == 7 and pane.predictions.subset == "train"
        worst = pane.predictions.worst(1)["name"].iloc[0]
        assert str(table.get_row_at(0)[0]) == worst.rsplit("/", 1)[-1]   # worst first
        assert "E MAE" in text(app.query_one("#an-head"))
        await pilot.press("t")
        await until(pilot, lambda: pane.predictions.subset == "test")
        assert table.row_count == 3
        app.query_one("#an-search", Input).value = "n_atoms<0"
        await pilot.pause(0.1)
        assert table.row_count == 0

        await pilot.press("2")
        app.query_one("#data-filter", Input).value = "xyz.gz:2"
        await pilot.pause(0.1)
        assert app.query_one("#data-table", DataTable).row_count == 1
        assert "1 of 10 structures" in text(app.query_one("#data-summary"))

        await pilot.press("5")
        await pilot.pause(0.2)
        stable = app.query_one("#sessions-table", DataTable)
        assert stable.row_count == 2
        saveas = app.query_one("#sessions-saveas", Input)
        saveas.focus()
        saveas.value = "copy"
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "sessions" / "copy" / "session.yaml").exists())
        await until(pilot, lambda: stable.row_count == 3)
        stable.focus()
        stable.move_cursor(row=[str(r[0]) for r in (stable.get_row_at(i) for i in range(3))].index("b"))
        await pilot.press("enter")
        await until(pilot, lambda: app.session.path == (tmp_path / "sessions" / "b").resolve())
        assert app.session.status.total_iterations == 0
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    app.session.close()
    s.close()


async def test_palette_and_engine_errors(tmp_path):
    s = tiny_session(path=tmp_path / "s")
    app = PaceApp(s)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for ch in "Randomize":
            await pilot.press(ch)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ParamsDialog))
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert s.status.cycle == 0
        s.events.emit(Error("the loss is NaN", "Traceback ..."))
        await until(pilot, lambda: any("engine error: the loss is NaN" in m for m in app.messages))
        assert app.is_running
    s.close()
