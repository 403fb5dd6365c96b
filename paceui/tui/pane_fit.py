"""Fit tab: live train/test curves (textual-plotext), current metrics, loss contributions, ladder
step and cycle, stop reason, and a log of progress messages."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from paceui.session import Progress, Session, SessionStatus
from paceui.session.curves import curve_series
from paceui.session.live import live_metrics
from paceui.tui.format import CONTRIBUTIONS, METRICS, metrics_for, num
from paceui.tui.progress_log import ProgressLog

MAX_POINTS = 400  # records drawn per curve
MAX_LABELS = 4    # segment markers labelled (the most recent); older ones are plain lines


def metrics_text(history: pd.DataFrame, status: SessionStatus) -> str:
    """The metrics panel: latest train and test errors (each with the total iteration it was computed at;
    test values of an older potential marked stale), loss contributions, where the fit stands."""
    lines = [f"step [b]{status.ladder_step}[/b] cycle [b]{status.cycle}[/b] it {status.iteration}",
             f"functions {status.nfuncs}/{status.target_nfuncs}"]
    m = live_metrics(history)
    if m.train_at is not None:
        lines.append(f"{'':8}{'train':>10}{'test' + ('*' if m.test_stale else ''):>10}")
        lines.append(f"{'at it':<8}{m.train_at:>10}{'-' if m.test_at is None else m.test_at:>10}")
        rows = metrics_for(m.train)
        for col, label, scale, _unit in rows:
            t = m.test.get(col)
            cell = num(None if t is None else scale * t)
            cell = f"{cell + '*' if m.test_stale and t is not None else cell:>10}"
            lines.append(f"{label:<8}{num(scale * m.train.get(col, math.nan)):>10}"
                         f"{f'[i]{cell}[/i]' if m.test_stale else cell}")
        if m.test_stale:
            lines.append(f"[i]* stale: test {m.test_behind} it behind[/i]")
        lines.append("E meV/atom, F meV/Å" + (", σ GPa" if len(rows) > len(METRICS) else ""))
        lines.append("[b]loss terms[/b]")
        for col, label in CONTRIBUTIONS:
            v = m.train.get(col, 0.0)
            if v and not (isinstance(v, float) and math.isnan(v)):
                lines.append(f"  {label:<8}{num(v):>10}")
    elif status.running:
        lines.append(status.stage_text() or "starting…")
    else:
        lines.append("no iterations yet: press [b]s[/b] to start")
    lines.append(f"best loss {num(status.best_loss)}")
    if status.stop_reason:
        lines.append(f"[b]stopped[/b]: {status.stop_message or status.stop_reason}")
    if status.error:
        lines.append(f"[b]error[/b]: {status.error}")
    return "\n".join(lines)


class FitPane(Widget):
    """Curves, metrics and the progress log; ``m`` cycles the plotted metric, ``y`` toggles log/linear,
    ``z`` shows only the segments since the last change."""

    BINDINGS = [Binding("m", "next_metric", "Metric", show=False),
                Binding("y", "toggle_log", "Log/linear", show=False),
                Binding("z", "since_change", "Since last change", show=False)]
    can_focus = True

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.metric = 0
        self.session: Session | None = None
        self.log_lines: list[str] = []
        self.plotted = 0  # history records in the curve now (tests read it)
        self._metric_rows = -1
        self.log_scale = True       # y: log10 (y toggles linear)
        self.since_change = False   # x: only the segments since the last change (z toggles)
        self.segments_drawn = 0     # curve segments in the plot now (tests read it)

    def compose(self) -> ComposeResult:
        with Horizontal(id="fit-top"):
            yield PlotextPlot(id="fit-plot")
            yield Static("", id="fit-metrics")
        yield ProgressLog(id="fit-log", max_lines=500)

    def load_session(self, session: Session) -> None:
        self.session = session
        self.redraw(session)

    def _metrics(self) -> tuple[tuple[str, str, float, str], ...]:
        return metrics_for(self.session.history) if self.session is not None else METRICS

    def action_next_metric(self) -> None:
        self.metric = (self.metric + 1) % len(self._metrics())
        if self.session is not None:
            self.redraw(self.session)

    def show_status(self, status: SessionStatus, history: pd.DataFrame | None = None) -> None:
        if self.session is not None:
            hist = self.session.history if history is None else history
            text = metrics_text(hist, status)
            n = text.count("\n")
            # a layout pass only when the panel needs more (or fewer) rows: it grows with its content
            self.query_one("#fit-metrics", Static).update(text, layout=n != self._metric_rows)
            self._metric_rows = n

    def log_line(self, text: str) -> None:
        self.log_lines.append(text)
        self.query_one("#fit-log", ProgressLog).write_line(text)

    def log_progress(self, ev: Progress) -> None:
        tr = ev.train
        test = "" if ev.test is None else f" test E {num(1e3 * ev.test.rmse_epa)}"
        what = "start of cycle" if ev.initial else f"iteration {ev.iteration}"
        self.log_line(f"{what} (total {ev.total_iterations}, step {ev.ladder_step}, cycle {ev.cycle}): "
                      f"loss {num(ev.loss)} E {num(1e3 * tr.rmse_epa)} meV/atom F {num(1e3 * tr.rmse_f_comp)} meV/Å"
                      f"{test}")

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        if self.session is not None:
            self.redraw(self.session)

    def action_since_change(self) -> None:
        self.since_change = not self.since_change
        if self.session is not None:
            self.redraw(self.session)

    def redraw(self, session: Session) -> None:
        """Plot the chosen metric against total iterations: one line per comparable segment (a cycle start,
        ladder step, randomize or settings change begins a new one: never a line across), a labelled
        marker where each begins, train every record and test where computed; log or linear y."""
        hist = session.history
        metrics = metrics_for(hist)
        col, label, scale, unit = metrics[self.metric % len(metrics)]
        plot = self.query_one("#fit-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        view = ("log" if self.log_scale else "linear") + (", since last change" if self.since_change else "")
        keys = "  m metric · y log/lin · z since change"
        title = f"{label} {unit} [{view}]".replace("  [", " [")
        plt.title(title + keys if len(title + keys) <= plot.size.width - 2 else title)
        series = curve_series(hist, col, scale, session.changes, self.since_change, MAX_POINTS)
        shown: list[np.ndarray] = []
        legend = {"train": True, "test": True}
        for s in series:
            for name, y, kw in (("train", s.train, {"marker": "braille", "color": "blue"}),
                                ("test", s.test, {"marker": "dot", "color": "orange"})):
                ok = np.isfinite(y) & (y > 0 if self.log_scale else True)
                if not ok.any():
                    continue
                # log10 values on a linear axis with labelled ticks: plotext's own log scale transforms the data
                # again on every render, which breaks repeated renders of one figure
                v = np.log10(y[ok]) if self.log_scale else y[ok]
                draw = plt.plot if name == "train" else plt.scatter
                draw(s.x[ok].tolist(), v.tolist(), label=name if legend[name] else None, **kw)
                legend[name] = False
                shown.append(v)
        both = np.concatenate(shown) if shown else np.zeros(0)
        if both.size:
            top = float(both.max())
            for i, s in enumerate(series):  # markers: every segment start; labels on the last few
                if s.segment.kind == "start":
                    continue
                plt.vline(float(s.segment.x0), color="gray")
                if i >= len(series) - MAX_LABELS:
                    plt.text(s.segment.label, float(s.segment.x0), top, color="gray", alignment="left")
            x_lo, x_hi = float(series[0].x[0]), float(series[-1].x[-1])
            if len(series) > 1 and x_hi - float(series[-1].segment.x0) < 0.25 * max(x_hi - x_lo, 1.0):
                x_hi = float(series[-1].segment.x0) + 0.3 * max(x_hi - x_lo, 1.0)  # room for the last label
            plt.xlim(x_lo, max(x_hi, x_lo + 1.0))
            ticks = np.linspace(both.min(), both.max(), 5) if np.ptp(both) > 0 else both[:1]
            plt.yticks(ticks.tolist(), [num(10 ** t if self.log_scale else t, 3) for t in ticks])
            plt.xlabel("iteration (total)")
        self.plotted = len(hist)
        self.segments_drawn = len(series)
        self.show_status(session.status, hist)
        plot.refresh()
