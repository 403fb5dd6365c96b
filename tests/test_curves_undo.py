"""Curve segments with labelled markers, the randomize preview and undo of the last randomize / extend
(issue 15), in the session layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paceui.errors import SessionError
from paceui.session import Phase, Session
from paceui.session.actions import action
from paceui.session.curves import ChangeMark, curve_series, segments
from paceui.session.testing import comparable, tiny_session
from tests.session_fixtures import _cache  # noqa: F401


def _hist() -> pd.DataFrame:
    return pd.DataFrame({"ladder_step": [0, 0, 0, 0, 0, 1, 1, 1], "cycle": [0, 0, 0, 1, 1, 0, 0, 0],
                         "iteration": [0, 1, 2, 0, 1, 0, 1, 2], "loss": [4., 3., 2., 50., 1.5, 9., 1., .5],
                         "test_loss": [5., None, 3., 60., None, 10., None, .7]})


def test_segments_break_at_every_cycle_start_and_say_why():
    h = _hist()
    segs = segments(h, [ChangeMark(3, "randomize", "randomize σ=0.5")])
    assert [(g.start, g.stop, g.x0, g.label, g.kind) for g in segs] == [
        (0, 3, 0, "start", "start"), (3, 5, 2, "randomize σ=0.5", "randomize"), (5, 8, 3, "step 1", "ladder")]
    series = curve_series(h, "loss", 10.0)
    assert [s.x.tolist() for s in series] == [[0, 1, 2], [2, 3], [3, 4, 5]]  # total iterations, not rows
    assert series[1].train.tolist() == [500.0, 15.0]  # no segment carries another's records
    assert np.isnan(series[1].test[1]) and series[2].test[-1] == pytest.approx(7.0)
    last = curve_series(h, "loss", since_last_change=True)
    assert [s.segment.label for s in last] == ["step 1"]
    assert curve_series(h, "nothing") == [] and segments(h.iloc[:0]) == []


def test_curve_series_thins_long_histories_keeping_segment_ends():
    n = 5000
    h = pd.DataFrame({"iteration": np.r_[0, np.arange(1, n)], "loss": np.linspace(2, 1, n)})
    (s,) = curve_series(h, "loss", max_points=400)
    assert len(s.x) <= 402 and s.x[0] == 0 and s.x[-1] == n - 1


def test_preview_is_the_randomize_it_previews_and_undo_goes_back_exactly(tmp_path):
    s = tiny_session(tmp_path / "s", fit={"maxiter": 1000})
    try:
        s.run(5)
        before = comparable(s.history)
        theta0 = s.fitter.theta.copy()
        assert s.status.undo == "" and not action("undo").enabled(s.status)
        with pytest.raises(SessionError, match="nothing to undo"):
            s.undo().result(60)
        p = s.preview_randomize(0.05).result(60)
        assert p.n_params > 0 and p.loss_before > 0 and p.loss_after != p.loss_before and 0 < p.relative_change < 0.5
        assert "loss" in p.describe() and "%" in p.describe()
        assert np.array_equal(s.fitter.theta, theta0)  # a preview changes nothing
        s.randomize(0.05).result(60)
        assert s.history["loss"].iloc[-1] == pytest.approx(p.loss_after, rel=1e-12)  # the same noise
        assert s.status.undo == "randomize σ=0.05" and action("undo").enabled(s.status)
        assert s.changes[-1] == ChangeMark(len(s.history) - 1, "randomize", "randomize σ=0.05")
        s.run(3)
        assert s.total_iterations == 8
        msg = s.undo().result(60)
        assert "randomize σ=0.05" in msg and s.status.phase is Phase.STOPPED and s.status.undo == ""
        assert s.total_iterations == 5 and comparable(s.history).equals(before) and s.changes == []
        assert np.array_equal(s.fitter.theta, theta0)
        s.run(3)  # continues from the undone state exactly as a fit that never randomized
        ref = tiny_session(fit={"maxiter": 1000})
        try:
            ref.run(8)
            assert comparable(s.history).equals(comparable(ref.history))
        finally:
            ref.close()
        n = s.extend_ladder(2).result(60) if s.status.functions_left else 0
        if n:
            assert s.changes[-1].label == f"+{n} functions" and "functions" in s.status.undo
        s.save()
    finally:
        s.close()
    t = Session.load(tmp_path / "s")
    try:
        assert t.changes == s.changes  # markers survive a save
    finally:
        t.close()
