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
from textual.widgets import Log, Static
from textual_plotext import PlotextPlot

from paceui.session import Progress, Session, SessionStatus
from paceui.tui.format import CONTRIBUTIONS, METRICS, num

MAX_POINTS = 400  # records drawn per curve


def metrics_text(history: pd.DataFrame, status: SessionStatus) -> str:
    """The metrics panel: latest train and test errors, loss contributions, where the fit stands."""
    lines = [f"step [b]{status.ladder_step}[/b] cycle [b]{status.cycle}[/b] it {status.iteration}",
             f"functions {status.nfuncs}/{status.target_nfuncs}"]
    if len(history):
        last = history.iloc[-1]
        test_rows = history[history["test_loss"].notna()] if "test_loss" in history else history.iloc[:0]
        test = test_rows.iloc[-1] if len(test_rows) else None
        lines.append(f"{'':8}{'train':>10}{'test':>10}")
        for col, label, scale, _unit in METRICS:
            t = None if test is None else test.get(f"test_{col}")
            lines.append(f"{label:<8}{num(scale * last.get(col, math.nan)):>10}"
                         f"{num(None if t is None else scale * t):>10}")
        lines.append("E meV/atom, F meV/Å")
        lines.append("[b]loss terms[/b]")
        for col, label in CONTRIBUTIONS:
            v = last.get(col, 0.0)
            if v and not (isinstance(v, float) and math.isnan(v)):
                lines.append(f"  {label:<8}{num(v):>10}")
    else:
        lines.append("no iterations yet: press [b]s[/b] to start")
    lines.append(f"best loss {num(status.best_loss)}")
    if status.stop_reason:
        lines.append(f"[b]stopped[/b]: {status.stop_message or status.stop_reason}")
    if status.error:
        lines.append(f"[b]error[/b]: {status.error}")
    return "\n".join(lines)


class FitPane(Widget):
    """Curves, metrics and the progress log; ``m`` cycles the plotted metric."""

    BINDINGS = [Binding("m", "next_metric", "Metric", show=False)]
    can_focus = True

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.metric = 0
        self.session: Session | None = None
        self.log_lines: list[str] = []
        self.plotted = 0  # history records in the curve now (tests read it)

    def compose(self) -> ComposeResult:
        with Horizontal(id="fit-top"):
            yield PlotextPlot(id="fit-plot")
            yield Static("", id="fit-metrics")
        yield Log(id="fit-log", max_lines=500)

    def load_session(self, session: Session) -> None:
        self.session = session
        self.redraw(session)

    def action_next_metric(self) -> None:
        self.metric = (self.metric + 1) % len(METRICS)
        if self.session is not None:
            self.redraw(self.session)

    def show_status(self, status: SessionStatus, history: pd.DataFrame | None = None) -> None:
        if self.session is not None:
            hist = self.session.history if history is None else history
            self.query_one("#fit-metrics", Static).update(metrics_text(hist, status), layout=False)  # fixed size

    def log_line(self, text: str) -> None:
        self.log_lines.append(text)
        self.query_one("#fit-log", Log).write_line(text)

    def log_progress(self, ev: Progress) -> None:
        tr = ev.train
        test = "" if ev.test is None else f" test E {num(1e3 * ev.test.rmse_epa)}"
        what = "start of cycle" if ev.initial else f"iteration {ev.iteration}"
        self.log_line(f"{what} (total {ev.total_iterations}, step {ev.ladder_step}, cycle {ev.cycle}): "
                      f"loss {num(ev.loss)} E {num(1e3 * tr.rmse_epa)} meV/atom F {num(1e3 * tr.rmse_f_comp)} meV/Å"
                      f"{test}")

    def redraw(self, session: Session) -> None:
        """Plot the chosen metric for train (every record) and test (where computed), log scale."""
        hist = session.history
        col, label, scale, unit = METRICS[self.metric]
        plot = self.query_one("#fit-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.title(f"{label} {unit} (m: next metric)".strip())
        if len(hist) and col in hist:
            # log10 values on a linear axis with labelled ticks: plotext's own log scale transforms the data
            # again on every render, which breaks repeated renders of one figure
            # at most MAX_POINTS records (evenly spaced, the last always): braille resolution is 2 per cell,
            # and a long fit must not make every redraw slower
            idx = np.unique(np.linspace(0, len(hist) - 1, min(len(hist), MAX_POINTS)).round().astype(int))
            x = idx.astype(float)
            y = hist[col].to_numpy(float)[idx] * scale
            tcol = f"test_{col}"
            yt = hist[tcol].to_numpy(float)[idx] * scale if tcol in hist else np.full(len(idx), np.nan)
            ok, okt = np.isfinite(y) & (y > 0), np.isfinite(yt) & (yt > 0)
            if ok.any():
                plt.plot(x[ok].tolist(), np.log10(y[ok]).tolist(), label="train", marker="braille")
            if okt.any():
                plt.scatter(x[okt].tolist(), np.log10(yt[okt]).tolist(), label="test", marker="dot")
            both = np.concatenate([np.log10(y[ok]), np.log10(yt[okt])])
            if both.size:
                ticks = np.linspace(both.min(), both.max(), 5) if np.ptp(both) > 0 else both[:1]
                plt.yticks(ticks.tolist(), [num(10 ** t, 3) for t in ticks])
            plt.xlabel("record")
        self.plotted = len(hist)
        self.show_status(session.status, hist)
        plot.refresh()
