"""Notebook live charts (issue 15): inline SVG that follows the container's width and the Jupyter theme,
one line per comparable segment with labelled markers, hover values, log/linear, "since last change"
and zoom by the iteration range."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from paceui.notebook import Dashboard  # noqa: E402
from paceui.notebook.plots import CurvePlot, curve_data  # noqa: E402
from paceui.notebook.svg_curves import curves_html  # noqa: E402
from paceui.session.curves import ChangeMark  # noqa: E402
from paceui.session.testing import tiny_session  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401


def _history(n: int = 30) -> pd.DataFrame:
    it = np.r_[np.arange(0, n), 0, np.arange(1, n)]  # a randomize at row n: a second cycle
    loss = np.r_[np.geomspace(1, 0.01, n), 0.5, np.geomspace(0.4, 0.005, n - 1)]
    test = np.where(np.arange(2 * n) % 5 == 0, loss * 1.3, np.nan)
    return pd.DataFrame({"ladder_step": 0, "cycle": np.r_[np.zeros(n), np.ones(n)].astype(int), "iteration": it,
                         "loss": loss, "rmse_epa": loss / 10, "rmse_f_comp": loss / 5, "test_loss": test,
                         "test_rmse_epa": test / 10, "test_rmse_f_comp": test / 5})


def test_charts_follow_width_and_theme_break_at_segments_and_show_values_on_hover():
    h = _history()
    marks = [ChangeMark(30, "randomize", "randomize σ=0.05")]
    page = curves_html(h, marks)
    assert page.count("<svg viewBox=") == 3 and "width:100%" in page and "flex-wrap:wrap" in page
    assert "var(--jp-ui-font-color1" in page and "var(--jp-brand-color1" in page  # the theme's colours
    assert not re.search(r"fill='(black|#000)'", page)  # no fixed ink that vanishes on a dark theme
    first = page.split("<div class='paceui-chart'>")[1]
    assert first.count("<polyline") == 4  # train + test of each of the 2 segments: no line across the change
    assert first.count("randomize σ=0.05") == 2  # the marker's label and its hover text
    finite = np.isfinite(h["loss"]).sum() + np.isfinite(h["test_loss"]).sum()
    assert first.count("<circle class='pt") == finite  # a hover value for every point (test ones drawn as dots)
    assert "<title>train it 29: 0.5 </title>" in first  # the randomized initial value at the shared x
    assert "· log" in first and "· linear" in curves_html(h, marks, log=False)
    since = curves_html(h, marks, since_last_change=True).split("<div class='paceui-chart'>")[1]
    assert since.count("<polyline") == 2
    zoom = curves_html(h, marks, x_range=(40.0, 50.0)).split("<div class='paceui-chart'>")[1]
    assert ">40<" in zoom and ">50<" in zoom and ">0<" not in zoom.split("iteration (total)")[0][-400:]
    no_test = curves_html(h.drop(columns=[c for c in h if c.startswith("test_")]))
    assert ">test</text>" not in no_test  # no test legend without a test set


def test_svg_redraw_is_cheaper_than_the_png_it_replaces():
    h = _history(200)
    data = curve_data(h)
    plot = CurvePlot()  # the PNG dashboard kept one figure and updated its lines: compare with that
    plot.render(data)
    t_svg, t_png = [], []
    for _ in range(3):  # alternate the two sides (the machine is shared)
        t0 = time.perf_counter()
        curves_html(h)
        t_svg.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plot.render(data)
        t_png.append(time.perf_counter() - t0)
    svg, png = float(np.median(t_svg)), float(np.median(t_png))
    print(f"redraw of 400 records: SVG {1e3 * svg:.1f} ms, PNG {1e3 * png:.1f} ms (medians of 3)")
    assert svg < png


def test_dashboard_chart_controls_redraw_at_once(tmp_path):
    s = tiny_session(fit={"maxiter": 1000})
    try:
        s.run(4)
        s.randomize(0.05).result(60)
        s.run(3)
        dash = Dashboard(s)
        dash.refresh(force=True)
        assert dash.curves.layout.display is None and "randomize σ=0.05" in dash.curves.value
        assert dash.zoom.max == 7 and dash.zoom.value == (0, 7)
        n = dash.redraws
        dash.y_scale.value = "linear"
        assert dash.redraws == n + 1 and "· linear" in dash.curves.value
        dash.view.value = "since last change"
        first = dash.curves.value.split("<div class='paceui-chart'>")[1]
        assert first.count("<polyline") == 2  # the randomized segment only: its train and test lines
        dash.view.value = "all"
        dash.zoom.value = (2, 5)
        assert ">5<" in dash.curves.value and not dash._zoom_follow
        s.run(2)
        dash.refresh(force=True)
        assert dash.zoom.value == (2, 5) and dash.zoom.max == 9  # a narrowed range stays put
        dash.zoom.value = (0, 9)
        s.run(1)
        dash.refresh(force=True)
        assert dash.zoom.value == (0, 10)  # the full range follows the fit again
        dash.close()
    finally:
        s.close()


def test_dashboard_previews_the_randomize_sigma(tmp_path):
    s = tiny_session(fit={"maxiter": 1000})
    try:
        s.run(3)
        dash = Dashboard(s, auto_analysis=False)
        dash.controls.params["randomize"]["sigma"].value = 0.2
        fut = dash._preview
        assert fut is not None and "evaluating" in dash.randomize_preview.value
        fut.result(60)
        dash.refresh()
        v = dash.randomize_preview.value
        assert "σ=0.2" in v and "loss" in v and "%" in v
        dash.controls.params["randomize"]["seed"].value = "x"
        assert "seed" in dash.randomize_preview.value and "⚠" in dash.randomize_preview.value
        dash.close()
    finally:
        s.close()
