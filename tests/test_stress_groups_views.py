"""Stress errors and per-group error tables in the TUI (Fit and Analysis) and the notebook (metrics,
Analysis), on a Ti–Al session with virials and two configuration groups (issue 14); none of it on a
session without stresses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("textual")
pytest.importorskip("ipywidgets")

from textual.widgets import DataTable  # noqa: E402

from paceui.data.io import load_dataframe  # noqa: E402
from paceui.notebook import Dashboard  # noqa: E402
from paceui.session import Session  # noqa: E402
from paceui.session.testing import tiny_session  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.pane_analysis import AnalysisPane  # noqa: E402
from paceui.tui.pane_fit import metrics_text  # noqa: E402
from paceui.tui.testing import text, until  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401
from tests.test_fit_stress_data import TIAL_BASIS, need_tial  # noqa: E402

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def tial_session():
    path = need_tial()
    frame = load_dataframe(path)
    kind = frame["ase_atoms"].map(lambda a: a.info["config_type"])
    frame = pd.concat([frame[kind == "FLD_TiAl"].iloc[:12], frame[kind == "TiAl_T5000"].iloc[:6]])
    s = Session.from_objects(TIAL_BASIS, frame.reset_index(drop=True),
                             {"loss": {"kappa": 0.1, "stress": 0.1, "L2_coeffs": 1e-8}, "maxiter": 50},
                             data_config={"reference_energy": "auto", "test_size": 4})
    s.run(2)
    yield s
    s.close()


async def test_tui_shows_stress_errors_and_the_group_table(tial_session):
    s = tial_session
    assert "σ RMSE" in metrics_text(s.history, s.status) and "σ GPa" in metrics_text(s.history, s.status)
    app = PaceApp(s)
    async with app.run_test(size=(120, 40)) as pilot:
        assert "σ RMSE" in text(app.query_one("#fit-metrics"))
        app.action_tab("analysis")
        pane = app.query_one(AnalysisPane)
        await until(pilot, lambda: pane.predictions is not None, 120)
        await pilot.pause(0.2)
        p = pane.predictions
        assert p.n_stress > 0 and np.isfinite(p.stress_rmse_gpa) and p.stress_mae_gpa <= p.stress_rmse_gpa
        head = text(app.query_one("#an-head"))
        assert "σ RMSE" in head and "GPa" in head
        groups = app.query_one("#an-groups", DataTable)
        assert groups.display and groups.row_count == len(p.groups) >= 2
        labels = [str(c.label) for c in groups.columns.values()]
        assert "σ RMSE GPa" in labels and "E RMSE meV/at" in labels
        names = {str(groups.get_row_at(i)[0]) for i in range(groups.row_count)}
        assert "ALL" in names and names & {"FLD_TiAl", "TiAl_T5000"}
        assert app.query_one("#an-sparity").display


async def test_notebook_shows_stress_errors_and_the_group_table(tial_session):
    s = tial_session
    dash = Dashboard(s, auto_analysis=False)
    try:
        dash.refresh(force=True)
        assert "RMSE σ" in dash.metrics.value and "GPa" in dash.metrics.value
        assert "RMSE stress" in dash.curves.value  # a stress chart beside loss, E and F
        dash.analyze(wait=True)
        dash.refresh()
        assert "stress RMSE" in dash.analysis_msg.value and "GPa" in dash.analysis_msg.value
        g = dash.groups.value
        assert "errors per group" in g and "RMSE σ (GPa)" in g and "ALL" in g
    finally:
        dash.close()


async def test_no_stress_rows_without_stresses():
    s = tiny_session(fit={"maxiter": 10})
    try:
        s.run(1)
        assert "σ" not in metrics_text(s.history, s.status)
        dash = Dashboard(s, auto_analysis=False)
        dash.refresh(force=True)
        assert "σ" not in dash.metrics.value and "RMSE stress" not in dash.curves.value
        dash.analyze(wait=True)
        dash.refresh()
        assert "stress" not in dash.analysis_msg.value and "RMSE σ" not in dash.groups.value
        dash.close()
    finally:
        s.close()
