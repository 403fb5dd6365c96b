"""The active-learning loop through the TUI's keys: compute the active set (a), load candidates (k), select (d),
add the selection (+), γ beside the errors in Analysis; assertions on the Session and the widgets."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")
pytest.importorskip("paceui.ace.activeset", reason="paceui.ace.activeset (branch al) is not merged yet")
pytest.importorskip("paceui.ace.selection", reason="paceui.ace.selection (branch al) is not merged yet")

from textual.widgets import DataTable, Input  # noqa: E402

from paceui.data import save_dataframe  # noqa: E402
from paceui.session.testing import tiny_session, zuo_frame  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.dialogs import ParamsDialog  # noqa: E402
from paceui.tui.pane_analysis import AnalysisPane  # noqa: E402
from paceui.tui.pane_trust import TrustPane  # noqa: E402
from paceui.tui.testing import text, until  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

pytestmark = pytest.mark.asyncio


async def test_active_learning_through_keys(tmp_path):
    s = tiny_session(path=tmp_path / "s")
    s.run(iterations=3)
    cand = zuo_frame(8, start=40)
    cand["name"] = [f"cand{i}" for i in range(len(cand))]
    path = save_dataframe(cand, tmp_path / "cand.pckl.gzip")   # labelled: energies and forces
    app = PaceApp(s, initial_tab="trust")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(TrustPane)
            assert app.check_action("act", ("gamma",)) is None          # no active set yet
            assert app.check_action("act", ("select_candidates",)) is None
            assert "no active set" in text(app.query_one("#trust-head"))
            await pilot.press("a")
            assert isinstance(app.screen, ParamsDialog)
            await pilot.press("enter")
            await until(pilot, lambda: s.status.active_set == "current" and "train" in pane.tables, 300)
            table = app.query_one("#trust-table", DataTable)
            assert table.row_count == s.data.n_train and pane.tables["train"].max <= 1.01 + 1e-9
            assert "active set of iteration 3" in text(app.query_one("#trust-head"))
            assert app.check_action("act", ("gamma",)) is True

            await pilot.press("k")
            app.screen.query_one("#p-source", Input).value = str(path)
            await pilot.press("enter")
            await until(pilot, lambda: "candidates" in pane.tables, 300)
            assert s.status.n_candidates == 8 and table.row_count == 8
            assert app.check_action("act", ("select_candidates",)) is True

            await pilot.press("d")
            app.screen.query_one("#p-max_structures", Input).value = "3"
            await pilot.press("enter")
            await until(pilot, lambda: pane.view == "selection" and s.status.n_selected == 3, 300)
            assert table.row_count == 3
            chosen = s.selection["name"].tolist()
            assert "selection: 3 structures" in text(app.query_one("#trust-head"))

            n = s.data.n_train
            await pilot.press("plus")
            assert isinstance(app.screen, ParamsDialog)
            await pilot.press("enter")                                     # default: the selection
            await until(pilot, lambda: s.data.n_train == n + 3, 300)
            assert set(chosen) <= set(s.data.prepared.train["name"])
            await until(pilot, lambda: any(m.startswith("add_structures: added 3") for m in app.messages))

            await pilot.press("4")                                         # Analysis: γ beside the errors
            an = app.query_one(AnalysisPane)
            await until(pilot, lambda: an.predictions is not None and "gamma" in an.predictions.table, 300)
            headers = [str(c.label) for c in app.query_one("#an-table", DataTable).columns.values()]
            assert "γ" in headers and len(an.predictions.table) == n + 3
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running)
    finally:
        s.close()
