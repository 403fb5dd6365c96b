"""TUI: curves in segments with labelled markers, log/linear and "since last change"; the randomize
dialog validates inline, previews what σ does, and ctrl+z undoes the randomize (issue 15)."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from textual.widgets import Input  # noqa: E402
from textual_plotext import PlotextPlot  # noqa: E402

from paceui.session.testing import tiny_session  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.dialogs import ParamsDialog  # noqa: E402
from paceui.tui.pane_fit import FitPane  # noqa: E402
from paceui.tui.testing import until  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

pytestmark = pytest.mark.asyncio


def _plot_text(app: PaceApp) -> str:
    return str(app.query_one("#fit-plot", PlotextPlot).render())


async def test_randomize_dialog_previews_validates_and_undo_restores(tmp_path):
    s = tiny_session(tmp_path / "s", fit={"maxiter": 1000})
    try:
        s.run(4)
        app = PaceApp(s)
        async with app.run_test(size=(120, 40)) as pilot:
            fit = app.query_one(FitPane)
            await until(pilot, lambda: fit.plotted == len(s.history))
            assert fit.segments_drawn == 1
            await pilot.press("n")
            dlg = app.screen
            assert isinstance(dlg, ParamsDialog)
            await until(pilot, lambda: dlg.preview_text.startswith("preview: σ=0.05"), 60)
            assert "loss" in dlg.preview_text and "%" in dlg.preview_text
            sigma = dlg.query_one("#p-sigma", Input)
            sigma.value = "a lot"
            await pilot.pause(0.1)
            sigma.focus()
            await pilot.press("enter")
            assert app.screen is dlg  # stays open, says why in the user's words
            err = str(dlg.query_one("#params-error").render())
            assert "σ must be a number ≥ 0" in err and "invalid" not in err
            sigma.value = "0.07"
            await until(pilot, lambda: dlg.preview_text.startswith("preview: σ=0.07"), 60)
            await pilot.press("enter")
            await until(pilot, lambda: s.status.undo == "randomize σ=0.07" and fit.plotted == len(s.history))
            await until(pilot, lambda: fit.segments_drawn == 2)
            assert "randomize σ=0.07" in _plot_text(app)  # the labelled marker
            fit.focus()
            await pilot.press("z")
            assert fit.since_change and fit.segments_drawn == 1 and "since last change" in _plot_text(app)
            await pilot.press("y")
            assert not fit.log_scale and "linear" in _plot_text(app)
            await pilot.press("z", "y")
            assert fit.segments_drawn == 2 and fit.log_scale
            await pilot.press("ctrl+z")
            await until(pilot, lambda: s.status.undo == "" and s.total_iterations == 4)
            await until(pilot, lambda: fit.plotted == len(s.history) and fit.segments_drawn == 1)
            assert "undid randomize" in " ".join(app.messages)
    finally:
        s.close()
