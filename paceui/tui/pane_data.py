"""Data tab: the structures of the session (Session.structures()) with a filter, and plotext
histograms of the energies (eV/atom, as fitted) and the reference force norms (eV/Å)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Static
from textual_plotext import PlotextPlot

from paceui.session import Session
from paceui.tui.tables import fill_table, filter_frame

COLUMNS = [("subset", "set", 1.0), ("name", "name", 1.0), ("formula", "formula", 1.0), ("n_atoms", "atoms", 1.0),
           ("energy_corrected_per_atom", "E eV/atom", 1.0), ("f_max", "max|F| eV/Å", 1.0),
           ("w_energy", "w E", 1.0), ("w_forces", "w F", 1.0)]


class DataPane(Widget):
    """Structures table, filter line (``n_atoms>50`` or text) and two histograms."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.frame = pd.DataFrame()
        self.shown = pd.DataFrame()

    def compose(self) -> ComposeResult:
        with Horizontal(classes="bar"):
            yield Label("filter")
            yield Input(placeholder="text, or column op number: n_atoms>50, f_max<2", id="data-filter",
                        classes="compact")
        yield Static("", id="data-summary")
        with Horizontal(id="data-plots"):
            yield PlotextPlot(id="data-ehist")
            yield PlotextPlot(id="data-fhist")
        yield DataTable(id="data-table", cursor_type="row", zebra_stripes=True)

    def load_session(self, session: Session) -> None:
        self.frame = session.structures()
        forces = [a.f_ref for a in (session.data.train, session.data.test) if a is not None]
        self.fnorm = np.sqrt((np.concatenate(forces) ** 2).sum(axis=1)) if forces else np.zeros(0)
        self.apply_filter(self.query_one("#data-filter", Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "data-filter":
            event.stop()
            self.apply_filter(event.value)

    def apply_filter(self, query: str) -> None:
        shown, problem = filter_frame(self.frame, query)
        self.shown = shown
        fill_table(self.query_one("#data-table", DataTable), shown, COLUMNS, widths_from=self.frame)
        n_tr = int((shown["subset"] == "train").sum()) if len(shown) else 0
        atoms = int(shown["n_atoms"].sum()) if len(shown) else 0
        self.query_one("#data-summary", Static).update(
            problem or f"{len(shown)} of {len(self.frame)} structures ({n_tr} train, {len(shown) - n_tr} test), "
                       f"{atoms} atoms")
        self._histograms(shown)

    def _histograms(self, shown: pd.DataFrame) -> None:
        eplot, fplot = self.query_one("#data-ehist", PlotextPlot), self.query_one("#data-fhist", PlotextPlot)
        for plot in (eplot, fplot):
            plot.plt.clear_figure()
        if len(shown):
            eplot.plt.hist(shown["energy_corrected_per_atom"].to_numpy(float).tolist(), bins=20)
        eplot.plt.title("E eV/atom (shown rows)")
        if len(self.fnorm):
            fplot.plt.hist(self.fnorm.tolist(), bins=20)
        fplot.plt.title("|F| eV/Å (all atoms)")
        eplot.refresh()
        fplot.refresh()
