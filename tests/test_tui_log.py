"""The Fit log appends at a repaint's cost: no screen layout pass per progress line (issue 15, throughput
with the TUI open), while it still follows the end, keeps its scroll range and shows the new line."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from textual.app import App, ComposeResult  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Log  # noqa: E402

from paceui.tui.progress_log import ProgressLog  # noqa: E402

pytestmark = pytest.mark.asyncio


class _LogApp(App[None]):
    def __init__(self, cls: type[Log]) -> None:
        super().__init__()
        self.cls = cls

    def compose(self) -> ComposeResult:
        yield self.cls(id="log", max_lines=50)


@pytest.fixture
def layouts(monkeypatch):
    """The number of whole-screen layout passes so far (a one-item list, read after the app settles)."""
    count = [0]
    orig = Screen._refresh_layout

    def counted(self, *a, **k):  # type: ignore[no-untyped-def]
        count[0] += 1
        return orig(self, *a, **k)

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    return count


def _shown(log: Log) -> str:
    return "\n".join(log.render_line(y).text for y in range(log.scrollable_content_region.height))


async def _append(cls: type[Log], layouts: list[int], lines: list[str]) -> tuple[int, Log, str]:
    app = _LogApp(cls)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause(0.2)
        log = app.query_one("#log", Log)
        before = layouts[0]
        for line in lines:
            log.write_line(line)
            await pilot.pause(0.02)  # each line its own refresh, as progress lines arrive
        await pilot.pause(0.2)
        return layouts[0] - before, log, _shown(log)


async def test_progress_lines_need_no_layout_pass_and_follow_the_end(layouts):
    lines = [f"iteration {i}: loss 1.2e-3 E 8.1 meV/atom" for i in range(80)]
    n, log, shown = await _append(ProgressLog, layouts, lines)
    assert n == 0
    assert list(log.lines) == lines[-50:]  # max_lines kept
    assert log.virtual_size.height == 50 and log.vertical_scrollbar.window_virtual_size == 50
    assert log.scroll_y == log.max_scroll_y > 0  # followed the end
    assert "iteration 79:" in shown.splitlines()[-1]


async def test_textual_log_lays_out_the_screen_per_line(layouts):
    """Why ProgressLog exists: Textual 8.2's Log asks for a layout pass on appends (if a Textual upgrade
    stops doing so, this fails and ProgressLog can go)."""
    n, _, _ = await _append(Log, layouts, [f"iteration {i}" for i in range(20)])
    assert n >= 10


class _AutoBars(ProgressLog):
    DEFAULT_CSS = "_AutoBars { overflow: auto; }"


async def test_a_wide_line_widens_the_range_and_bars_that_come_and_go_get_their_layout(layouts):
    n, log, _ = await _append(ProgressLog, layouts, ["short", "x" * 200, "short again"])
    assert n == 0 and log.virtual_size.width == 200 and log.horizontal_scrollbar.window_virtual_size == 200
    n, log, _ = await _append(_AutoBars, layouts, ["short", "x" * 200, "short again"])
    assert n >= 1 and log.show_horizontal_scrollbar and log.virtual_size.width == 200
