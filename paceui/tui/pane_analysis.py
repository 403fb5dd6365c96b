"""Analysis tab: energy and force parity plots and the per-structure error table of
``Session.predictions(subset, best)``, computed in a Textual thread worker (never on the UI thread);
the table is searchable and sortable by key (``o``), worst structures first."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Static
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from paceui.session import Session
from paceui.session.analysis import Predictions
from paceui.tui.format import num, short_name
from paceui.tui.tables import fill_table, filter_frame

COLUMNS = [("name", "name", 1.0), ("n_atoms", "atoms", 1.0), ("de_per_atom_mev", "ΔE meV/at", 1.0),
           ("f_rmse_mev", "F RMSE meV/Å", 1.0), ("df_max_mev", "max ΔF meV/Å", 1.0),
           ("e_ref_per_atom", "E ref eV/at", 1.0), ("w_energy", "w E", 1.0)]
SORTS = [("de_per_atom_mev", "|ΔE|", True), ("f_rmse_mev", "F RMSE", False), ("df_max_mev", "max ΔF", False),
         ("gamma", "γ", False), ("n_atoms", "atoms", False), ("name", "name", False)]
GAMMA_COLUMN = ("gamma", "γ", 1.0)
"""Shown after the errors when the session has an active set (max γ of each structure)."""
GROUP_COLUMNS = [("group", "group", 1.0), ("n_structures", "structures", 1.0),
                 ("rmse_epa_mev", "E RMSE meV/at", 1.0), ("mae_epa_mev", "E MAE", 1.0),
                 ("rmse_f_comp_mev", "F RMSE meV/Å", 1.0), ("mae_f_comp_mev", "F MAE", 1.0)]
STRESS_GROUP_COLUMNS = [("n_stress", "with σ", 1.0), ("rmse_stress_gpa", "σ RMSE GPa", 1.0),
                        ("mae_stress_gpa", "σ MAE", 1.0)]
"""Per-group error table (``Predictions.groups``); the stress columns where the set has reference stresses."""
MAX_POINTS = 3000  # force components drawn in the parity plot (evenly subsampled)


class AnalysisPane(Widget):
    """Keys: ``t`` train/test, ``b`` current/best potential, ``u`` recompute, ``o`` next sort column."""

    BINDINGS = [Binding("t", "subset", "Train/test", show=False), Binding("b", "best", "Best/current", show=False),
                Binding("u", "update", "Update", show=False), Binding("o", "sort", "Sort", show=False)]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.session: Session | None = None
        self.subset, self.best, self.sort = "train", False, 0
        self.predictions: Predictions | None = None
        self.computed_at: tuple[Any, ...] | None = None  # (total iterations, subset, best)
        self.shown = pd.DataFrame()

    def compose(self) -> ComposeResult:
        yield Static("", id="an-head")
        with Horizontal(id="an-plots"):
            yield PlotextPlot(id="an-eparity")
            yield PlotextPlot(id="an-fparity")
            yield PlotextPlot(id="an-sparity")
        yield DataTable(id="an-groups", zebra_stripes=True, cursor_type="none")
        with Horizontal(classes="bar"):
            yield Label("search")
            yield Input(placeholder="name, or column op number: de_per_atom_mev>5", id="an-search",
                        classes="compact")
        yield DataTable(id="an-table", cursor_type="row", zebra_stripes=True)

    def load_session(self, session: Session) -> None:
        self.session, self.predictions, self.computed_at = session, None, None
        self._head("press u (or open this tab) to evaluate the potential")
        self.query_one("#an-table", DataTable).clear(columns=True)
        self.query_one("#an-groups", DataTable).clear(columns=True)
        self.query_one("#an-sparity").display = False

    def _head(self, extra: str) -> None:
        _, label, _ = SORTS[self.sort]
        self.query_one("#an-head", Static).update(
            f"[b]{self.subset}[/b] set, [b]{'best' if self.best else 'current'}[/b] potential, sorted by {label}"
            f" (t b u o)  {extra}")

    def refresh_if_stale(self) -> None:
        """Compute predictions when the tab is shown and the fit moved on since the last computation."""
        if self.session is not None and self.computed_at != self._key():
            self.action_update()

    def _key(self) -> tuple[Any, ...]:
        assert self.session is not None
        a = self.session.active_set  # a new active set brings the γ column
        return (self.session.status.total_iterations, self.subset, self.best, -1 if a is None else a.iteration)

    def action_subset(self) -> None:
        self.subset = "test" if self.subset == "train" else "train"
        self.action_update()

    def action_best(self) -> None:
        self.best = not self.best
        self.action_update()

    def action_sort(self) -> None:
        self.sort = (self.sort + 1) % len(SORTS)
        self.show_table()

    def action_update(self) -> None:
        if self.session is None:
            return
        self._head("computing…")
        self.compute(self.session, self.subset, self.best, self._key())

    @work(thread=True, exclusive=True, group="predictions", exit_on_error=False)
    def compute(self, session: Session, subset: str, best: bool, key: tuple[Any, ...]
                ) -> tuple[Predictions, tuple[Any, ...]]:
        """Runs in a thread worker: evaluates the potential on the set (seconds on large sets)."""
        return session.predictions(subset, best), key

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "predictions":
            return
        if event.state is WorkerState.ERROR:
            self._head("")
            self.app.notify(f"predictions failed: {event.worker.error}", severity="error")
        elif event.state is WorkerState.SUCCESS and event.worker.result is not None:
            self.predictions, self.computed_at = event.worker.result
            self.show_plots()
            self.show_table()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "an-search":
            event.stop()
            self.show_table()

    def show_table(self) -> None:
        p = self.predictions
        if p is None:
            self._head("")
            return
        t = p.table
        if SORTS[self.sort][0] not in t:  # γ without an active set: the next sort
            self.sort = (self.sort + 1) % len(SORTS)
        col, _label, absolute = SORTS[self.sort]
        order = (t[col].abs() if absolute else t[col]).sort_values(ascending=col == "name", kind="stable").index
        shown, problem = filter_frame(t.loc[order], self.query_one("#an-search", Input).value)
        self.shown = shown
        cols = COLUMNS[:5] + [GAMMA_COLUMN] + COLUMNS[5:] if "gamma" in t else COLUMNS
        fill_table(self.query_one("#an-table", DataTable), shown, cols, widths_from=t)
        self.show_groups()
        worst = p.worst(1)
        w = "" if not len(worst) else (f"worst {short_name(worst['name'].iloc[0])} "
                                      f"{num(worst['de_per_atom_mev'].iloc[0], 3)} meV/atom")
        g = f"; γ max {num(float(t['gamma'].max()), 4)}" if "gamma" in t and len(t) else ""
        sig = (f", σ RMSE {num(p.stress_rmse_gpa, 3)} MAE {num(p.stress_mae_gpa, 3)} GPa ({p.n_stress} with σ)"
               if p.n_stress else "")
        self._head(problem or f"E MAE {num(p.energy_mae_mev, 3)} meV/atom, F RMSE {num(p.force_rmse_mev, 3)} "
                              f"meV/Å{sig}; {w}{g}")

    def show_groups(self) -> None:
        """The per-group error table (every group and ALL; stress columns where there are stresses)."""
        p, table = self.predictions, self.query_one("#an-groups", DataTable)
        if p is None or p.groups is None or len(p.groups) <= 2:  # one group and ALL: nothing to compare
            table.clear(columns=True)
            table.display = False
            return
        cols = GROUP_COLUMNS + (STRESS_GROUP_COLUMNS if p.n_stress else [])
        fill_table(table, p.groups, cols)
        table.display = True

    def show_plots(self) -> None:
        p = self.predictions
        if p is None:
            return
        ep, fp = self.query_one("#an-eparity", PlotextPlot), self.query_one("#an-fparity", PlotextPlot)
        t = p.table
        ref = t["e_ref_per_atom"].to_numpy(float)
        pred = t["e_pred_per_atom"].to_numpy(float)
        fr, fq = p.f_ref.ravel(), p.f_pred.ravel()
        if fr.size > MAX_POINTS:
            idx = np.linspace(0, fr.size - 1, MAX_POINTS).astype(int)
            fr, fq = fr[idx], fq[idx]
        sp = self.query_one("#an-sparity", PlotextPlot)
        sp.display = p.n_stress > 0
        plots = [(ep, ref, pred, "E pred vs ref eV/atom"), (fp, fr, fq, "F pred vs ref eV/Å")]
        if p.n_stress and p.s_ref is not None and p.s_pred is not None:
            plots.append((sp, p.s_ref.ravel() * 160.21766208, p.s_pred.ravel() * 160.21766208, "σ pred vs ref GPa"))
        for plot, x, y, title in plots:
            plt = plot.plt
            plt.clear_figure()
            plt.title(title)
            if x.size:
                lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
                plt.plot([lo, hi], [lo, hi], marker="dot")
                plt.scatter(x.tolist(), y.tolist(), marker="dot")
            plot.refresh()
