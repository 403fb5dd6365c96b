"""SVG snapshots of every tab at 80×24 and 120×40 on a session with a fixed history loaded from disk
(fitted once with one numba thread; no clocks, timings or absolute paths on screen).

Update after an intended change: ``python -m pytest tests/test_tui_snapshots.py --snapshot-update``,
then review the SVGs in ``tests/__snapshots__/test_tui_snapshots/``."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from paceui.session import Session  # noqa: E402
from paceui.session.testing import tiny_session  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.pane_analysis import AnalysisPane  # noqa: E402
from paceui.tui.testing import until  # noqa: E402

TABS = {"setup": "1", "data": "2", "fit": "3", "analysis": "4", "sessions": "5", "trust": "6"}
SIZES = [(80, 24), (120, 40)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny session fitted 12 iterations (one thread: the same numbers every run), saved, then the
    fitted copy removed from memory: every test loads it from disk."""
    import numba

    root = tmp_path_factory.mktemp("tui-snap")
    mp = pytest.MonkeyPatch()
    mp.setenv("PACEUI_CACHE_DIR", str(root / "cache"))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        s = tiny_session(path=root / "sessions" / "cu-tiny", name="cu-tiny", fit={"maxiter": 12})
        s.run()
        s.save()
        s.close()
    finally:
        numba.set_num_threads(threads)
    yield root
    mp.undo()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("tab", list(TABS))
def test_tab_snapshot(tab, size, saved, snap_compare, monkeypatch):
    import numba

    monkeypatch.chdir(saved)  # the Sessions tab shows its folder relative to here
    monkeypatch.setenv("PACEUI_CACHE_DIR", str(saved / "cache"))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    session = Session.load(saved / "sessions" / "cu-tiny")
    app = PaceApp(session, initial_tab=tab)

    async def ready(pilot):
        await pilot.press(TABS[tab])
        if tab == "analysis":
            pane = app.query_one(AnalysisPane)
            await until(pilot, lambda: pane.predictions is not None)
        await pilot.pause(0.3)

    try:
        assert snap_compare(app, terminal_size=size, run_before=ready)
    finally:
        session.close()
        numba.set_num_threads(threads)
