"""The Trust tab: the active set, a γ histogram and the per-structure γ of the train / test / candidate set,
or the D-optimal selection. Everything is computed by the session's commands (``compute_active_set``,
``gamma``, ``select_candidates``); this pane only shows their results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from paceui.session import Session
from paceui.session.trust import GAMMA_LOWER, GAMMA_UPPER, GammaTable, gamma_histogram
from paceui.tui.format import num
from paceui.tui.tables import fill_table

GAMMA_COLUMNS = [("name", "name", 1.0), ("n_atoms", "atoms", 1.0), ("gamma", "γ max", 1.0),
                 ("gamma_mean", "γ mean", 1.0), ("n_extrapolating", "atoms γ>1", 1.0)]
SELECTION_COLUMNS = [("rank", "#", 1.0), ("name", "name", 1.0), ("n_atoms", "atoms", 1.0), ("gamma", "γ", 1.0),
                     ("labelled", "labelled", 1.0)]
VIEWS = ("train", "test", "candidates", "selection")


class TrustPane(Widget):
    """Keys: ``v`` next view (γ of train, test, candidates; the selection), ``u`` recompute the view.
    The session actions (a g k d +) compute what it shows."""

    BINDINGS = [Binding("v", "view", "View", show=False), Binding("u", "update", "Update", show=False)]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.session: Session | None = None
        self.view = "train"
        self.tables: dict[str, GammaTable] = {}
        self.shown = pd.DataFrame()

    def compose(self) -> ComposeResult:
        yield Static("", id="trust-head")
        yield PlotextPlot(id="trust-hist")
        yield DataTable(id="trust-table", cursor_type="row", zebra_stripes=True)

    def load_session(self, session: Session) -> None:
        self.session, self.tables = session, {}
        self.show()

    def action_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        if self.view != "selection" and self.view not in self.tables:
            self.action_update()
        self.show()

    def action_update(self) -> None:
        """Ask the session for γ of the viewed set (the result arrives through :meth:`show_gamma`)."""
        s = self.session
        if s is None or self.view == "selection" or s.status.active_set == "none":
            self.show()
            return
        if self.view == "candidates" and not s.status.n_candidates:
            self.show()
            return
        self.app.run_named_action("gamma", {"subset": self.view})  # type: ignore[attr-defined]

    def show_gamma(self, table: GammaTable) -> None:
        self.tables[table.subset] = table
        self.view = table.subset
        self.show()

    def show_selection(self, _table: pd.DataFrame | None = None) -> None:
        self.view = "selection"
        self.show()

    def _head(self) -> str:
        s = self.session
        if s is None:
            return ""
        st, a = s.status, s.active_set
        if a is None:
            line = "no active set: press [b]a[/b] (then g γ, k candidates, d select, + add)"
        else:
            line = a.describe() + (" — [b]STALE[/b] (the fit moved on: press a again)"
                                   if st.active_set == "stale" else "")
        cand = (f"{st.n_candidates} candidates" if st.n_candidates else "no candidates (k loads them)")
        sel = f", {st.n_selected} selected" if st.n_selected else ""
        return f"{line}\n{cand}{sel}; view [b]{self.view}[/b] (v next view, u update)"

    def show(self) -> None:
        """Redraw the head, the histogram and the table of the current view."""
        if self.session is None:
            return
        head = self._head()
        table = self.query_one("#trust-table", DataTable)
        plot = self.query_one("#trust-hist", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        if self.view == "selection":
            sel = self.session.selection
            self.shown = sel if sel is not None else pd.DataFrame()
            if sel is None:
                table.clear(columns=True)
                head += "\nno selection: press d"
            else:
                fill_table(table, sel, SELECTION_COLUMNS)
                g = sel["gamma"].to_numpy(float)
                if np.isfinite(g).any():
                    head += f"\nselection: {len(sel)} structures, γ {num(np.nanmax(g), 4)} … {num(np.nanmin(g), 4)}"
                    self._hist(plt, g, "γ of the selected structures")
        else:
            gt = self.tables.get(self.view)
            if gt is None:
                table.clear(columns=True)
                self.shown = pd.DataFrame()
                head += f"\nno γ of {self.view} yet: press u"
            else:
                t = gt.table.sort_values("gamma", ascending=False, kind="stable")
                self.shown = t
                fill_table(table, t, GAMMA_COLUMNS)
                head += "\n" + gt.describe()
                self._hist(plt, np.concatenate(gt.per_atom) if gt.per_atom else np.zeros(0),
                           f"γ per atom, {self.view} (log bins; {GAMMA_LOWER} and {GAMMA_UPPER} marked)")
        plot.refresh()
        self.query_one("#trust-head", Static).update(head)

    @staticmethod
    def _hist(plt: Any, values: np.ndarray, title: str) -> None:
        counts, edges = gamma_histogram(values, 16)
        centers = np.sqrt(edges[:-1] * edges[1:])
        plt.title(title)
        plt.bar([f"{c:.2g}" for c in centers], counts.tolist())
