"""A Textual ``Log`` whose appends repaint without a screen layout pass.

Textual's ``Log.write_lines`` sets ``virtual_size`` (a reactive declared with ``layout=True``) on every
append and measures line widths in a new worker thread: each progress line then reflows the whole screen,
17–35 ms of the UI thread's CPU per line on the 2-core machine, taken from the fit it reports on (issue 15:
throughput with the TUI ≥ 0.97 of headless). A Log shows both scrollbars always (``overflow: scroll``), so
a growing scroll range changes no layout: only the scrollbars' ranges and the visible lines. Where a style
makes a scrollbar come and go (``overflow: auto``), an append still asks for the layout pass it needs.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual.geometry import Size
from textual.widgets import Log


class ProgressLog(Log):
    """A log of short progress lines (kept to ``max_lines``), appended at a repaint's cost."""

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> ProgressLog:
        """Append ``lines`` (each split at newlines); scroll to the end if the view was there."""
        new = [part for line in lines for part in line.splitlines()]
        if not new:
            return self
        follow = (self.auto_scroll if scroll_end is None else scroll_end) and self.is_vertical_scroll_end \
            and not self.is_vertical_scrollbar_grabbed
        self._lines.extend(new)
        if self.max_lines is not None and len(self._lines) > self.max_lines:
            self._prune_max_lines()
        self._width = max(self._width, max(cell_len(self._process_line(line)) for line in new))
        size = Size(self._width, len(self._lines))
        if "auto" in (self.styles.overflow_x, self.styles.overflow_y):
            self.virtual_size = size  # a scrollbar may appear or go: the layout may change
        else:
            self.set_reactive(Log.virtual_size, size)
            self.vertical_scrollbar.window_virtual_size = size.height
            self.horizontal_scrollbar.window_virtual_size = size.width
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()
        return self
