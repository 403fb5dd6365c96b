"""The dashboard's Trust tab on a tiny session: the active-learning loop by clicking its buttons (compute the
active set, γ, load candidates, select, add the selection) and γ beside the errors in Analysis."""

from __future__ import annotations

import pytest

pytest.importorskip("paceui.ace.activeset", reason="paceui.ace.activeset (branch al) is not merged yet")
pytest.importorskip("paceui.ace.selection", reason="paceui.ace.selection (branch al) is not merged yet")

from paceui.data import save_dataframe  # noqa: E402
from paceui.notebook import Dashboard  # noqa: E402
from paceui.notebook.controls import TRUST_ACTIONS  # noqa: E402
from paceui.session import ACTIONS  # noqa: E402
from paceui.session.testing import tiny_session, zuo_frame  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

PNG = b"\x89PNG\r\n\x1a\n"


def _settle(dash: Dashboard) -> None:
    """Wait for the session's queue, then let the dashboard take the results (twice: a result may queue more)."""
    for _ in range(3):
        assert dash.session.wait(300)
        dash.refresh()


def test_active_learning_by_buttons(tmp_path):
    s = tiny_session(path=tmp_path / "s")
    s.run(iterations=3)
    cand = zuo_frame(8, start=40)
    cand["name"] = [f"cand{i}" for i in range(len(cand))]
    path = save_dataframe(cand, tmp_path / "cand.pckl.gzip")
    dash = Dashboard(s, redraw_interval=0, auto_analysis=False)
    try:
        by_name = {a.name: a for a in ACTIONS}
        assert list(dash.trust_buttons) == list(TRUST_ACTIONS)
        for name, b in dash.trust_buttons.items():
            assert b.disabled is (not by_name[name].enabled(s.status)), name
        assert dash.trust_buttons["gamma"].disabled and dash.trust_buttons["select_candidates"].disabled
        assert "no active set" in dash.trust_head.value

        dash.trust_buttons["compute_active_set"].click()
        _settle(dash)
        assert s.status.active_set == "current" and "train" in dash.gamma_tables
        assert bytes(dash.gamma_plot.value).startswith(PNG) and "paceui-gamma" in dash.trust_table.value
        assert dash.gamma_tables["train"].max <= 1.01 + 1e-9
        assert not dash.trust_buttons["gamma"].disabled and "active set of iteration 3" in dash.trust_head.value

        dash.trust_controls.params["load_candidates"]["source"].value = str(path)
        dash.trust_buttons["load_candidates"].click()
        _settle(dash)
        assert s.status.n_candidates == 8 and not dash.trust_buttons["select_candidates"].disabled
        dash.trust_controls.params["gamma"]["subset"].value = "candidates"
        dash.trust_buttons["gamma"].click()
        _settle(dash)
        assert len(dash.gamma_tables["candidates"].table) == 8

        dash.trust_controls.params["select_candidates"]["max_structures"].value = "3"
        dash.trust_buttons["select_candidates"].click()
        _settle(dash)
        assert s.status.n_selected == 3 and "paceui-selection" in dash.trust_table.value
        chosen = s.selection["name"].tolist()
        assert all(name in dash.trust_table.value for name in chosen)

        n = s.data.n_train
        dash.trust_buttons["add_structures"].click()          # the field says: selection
        _settle(dash)
        assert s.data.n_train == n + 3 and set(chosen) <= set(s.data.prepared.train["name"])
        assert any("add_structures: added 3" in line for line in dash.log)

        dash.analyze("train", wait=True)
        assert "gamma" in dash.predictions.table and "γ" in dash.errors.value
        dash.trust_controls.params["select_candidates"]["max_structures"].value = "x"
        dash.trust_buttons["select_candidates"].click()
        assert "max N" in dash.trust_controls.message.value
    finally:
        dash.close()
        s.close()
