"""Figures and tables of the notebook dashboard: learning curves, parity plots, metrics, error table.

Everything here is pure: arrays and DataFrames in, PNG bytes or HTML strings out. Matplotlib is used
through ``Figure`` objects on an Agg canvas (no pyplot state, no GUI backend), so rendering works in
any thread and never changes the notebook's own ``%matplotlib`` setting. Units: errors in meV/atom
(energy) and meV/Å (force components), as in the fit log.
"""

from __future__ import annotations

import html
import io
import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from paceui.fit.error_tables import EV_A3_TO_GPA
from paceui.session.live import live_metrics, record_iterations

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from paceui.session.analysis import Predictions
    from paceui.session.status import SessionStatus

CURVES = (("loss", "Loss", "", 1.0),
          ("rmse_epa", "RMSE energy", "meV/atom", 1e3),
          ("rmse_f_comp", "RMSE force components", "meV/Å", 1e3))
"""(history column, title, unit, scale from the history's eV-based unit) of each learning-curve panel."""

MAX_PARITY_POINTS = 20_000
"""Force parity plots show at most this many (evenly strided) components; statistics use all."""


def curve_data(history: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays the learning curves show, from :attr:`Session.history`.

    ``x``: optimizer iterations over the whole session (a cycle's initial record shares the x of the
    iteration before it); ``train_<col>`` / ``test_<col>`` for each curve column (scaled to meV, NaN
    where not evaluated: test metrics come every ``display_step`` iterations); ``ladder_step`` and
    ``cycle`` per record (to mark where the basis grew or the optimizer restarted).
    """
    n = len(history)
    if n == 0:
        empty = np.zeros(0)
        return {"x": empty, "ladder_step": empty, "cycle": empty,
                **{f"{p}_{c}": empty for c, *_ in CURVES for p in ("train", "test")}}
    out = {"x": record_iterations(history).astype(np.float64),
           "ladder_step": history.get("ladder_step", pd.Series(np.zeros(n))).to_numpy(dtype=np.float64),
           "cycle": history.get("cycle", pd.Series(np.zeros(n))).to_numpy(dtype=np.float64)}
    for col, _, _, scale in CURVES:
        for prefix, name in (("", "train"), ("test_", "test")):
            c = prefix + col
            out[f"{name}_{col}"] = (history[c].to_numpy(dtype=np.float64) * scale if c in history
                                    else np.full(n, np.nan))
    return out


def _figure(ncols: int, size: tuple[float, float], layout: str | None = "constrained"
            ) -> tuple["Figure", list["Axes"]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=90, layout=layout)
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, ncols, squeeze=False).reshape(-1))


def _png(fig: "Figure") -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _changes(x: np.ndarray, key: np.ndarray) -> np.ndarray:
    """x where ``key`` (ladder step or cycle) changes from one record to the next."""
    return x[1:][np.diff(key) != 0] if len(key) > 1 else np.zeros(0)


class CurvePlot:
    """Learning curves (loss, energy and force RMSE; train solid, test dashed with markers; log y) kept
    as one figure whose lines are updated in place, so a redraw costs one Agg render (no new axes, ticks
    or layout pass). Dotted grey lines: a new cycle; solid grey: a new ladder step (the basis grew)."""

    def __init__(self) -> None:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        self.fig, self.axes = _figure(len(CURVES), (11.5, 3.3), layout=None)
        self.fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.84, wspace=0.22)
        self._plain, self._none = FuncFormatter(lambda v, _: f"{v:g}"), NullFormatter()
        self._minor = FuncFormatter(lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v)))
                                    in (2, 5) else "")
        self.lines: dict[str, Any] = {}
        self._marks: list[Any] = []
        for ax, (col, name, unit, _) in zip(self.axes, CURVES):
            (self.lines[f"train_{col}"],) = ax.plot([], [], "-", color="C0", label="train")
            (self.lines[f"test_{col}"],) = ax.plot([], [], "--", color="C1", marker="o", ms=3, label="test")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(self._plain)
            ax.set_title(name if not unit else f"{name} ({unit})", fontsize=10)
            ax.set_xlabel("iteration", fontsize=9)
            ax.tick_params(which="both", labelsize=8)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, loc="upper right")
        self.title = self.fig.suptitle("", fontsize=10)
        self._legend_test = True

    def render(self, data: Mapping[str, np.ndarray], title: str = "") -> bytes:
        """The figure for ``data`` (from :func:`curve_data`) as PNG bytes."""
        x = data["x"]
        for m in self._marks:
            m.remove()
        self._marks = []
        for ax, (col, *_) in zip(self.axes, CURVES):
            lo, hi = math.inf, -math.inf
            for subset in ("train", "test"):
                y = data[f"{subset}_{col}"]
                ok = np.isfinite(y) & (y > 0)
                self.lines[f"{subset}_{col}"].set_data(x[ok], y[ok])
                if ok.any():
                    lo, hi = min(lo, float(y[ok].min())), max(hi, float(y[ok].max()))
            for xs in _changes(x, data["cycle"]):
                self._marks.append(ax.axvline(xs, color="0.6", ls=":", lw=0.8))
            for xs in _changes(x, data["ladder_step"]):
                self._marks.append(ax.axvline(xs, color="0.4", ls="-", lw=0.9))
            xmax = float(x.max()) if len(x) else 1.0
            ax.set_xlim(-0.02 * max(xmax, 1.0), max(xmax, 1.0) * 1.02)
            if math.isfinite(lo):
                ax.set_ylim(lo / 1.3, hi * 1.3)
                # label the minor ticks (2, 3, 5 × 10ⁿ) only where the range is short of a decade or so
                ax.yaxis.set_minor_formatter(self._minor if hi / lo < 20 else self._none)
        has_test = any(np.isfinite(data[f"test_{col}"]).any() for col, *_ in CURVES)
        if has_test != self._legend_test:  # no test legend without a test set
            self._legend_test = has_test
            for ax, (col, *_) in zip(self.axes, CURVES):
                self.lines[f"test_{col}"].set_label("test" if has_test else "_nolegend_")
                ax.legend(fontsize=8, loc="upper right")
        self.title.set_text(title)
        return _png(self.fig)


def render_curves(data: Mapping[str, np.ndarray], title: str = "") -> bytes:
    """The learning curves of ``data`` (from :func:`curve_data`) as PNG (a one-off :class:`CurvePlot`)."""
    return CurvePlot().render(data, title)


def _parity(ax: "Axes", ref: np.ndarray, pred: np.ndarray, label: str, unit: str, err: str, size: float) -> None:
    ok = np.isfinite(ref) & np.isfinite(pred)
    ref, pred = ref[ok], pred[ok]
    if ref.size == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    stride = max(1, ref.size // MAX_PARITY_POINTS)
    ax.scatter(ref[::stride], pred[::stride], s=size, alpha=0.5, lw=0, color="C0")
    lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"reference {label} ({unit})", fontsize=9)
    ax.set_ylabel(f"predicted {label} ({unit})", fontsize=9)
    ax.set_title(err, fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def render_parity(pred: "Predictions", title: str = "") -> bytes:
    """Energy-per-atom (eV/atom), force-component (eV/Å) and, where the set has reference stresses,
    stress-component (GPa) parity plots of one set as PNG."""
    stress = pred.n_stress > 0 and pred.s_ref is not None and pred.s_pred is not None
    fig, axes = _figure(3 if stress else 2, (12.5 if stress else 8.5, 3.8))
    ae, af = axes[0], axes[1]
    if stress:
        assert pred.s_ref is not None and pred.s_pred is not None
        _parity(axes[2], pred.s_ref.reshape(-1) * EV_A3_TO_GPA, pred.s_pred.reshape(-1) * EV_A3_TO_GPA, "σ", "GPa",
                f"stress: RMSE {pred.stress_rmse_gpa:.3g} GPa ({pred.n_stress} structures)", 8)
    t = pred.table
    _parity(ae, t["e_ref_per_atom"].to_numpy(float), t["e_pred_per_atom"].to_numpy(float), "E", "eV/atom",
            f"energy: MAE {pred.energy_mae_mev:.3g} meV/atom", 16)
    _parity(af, np.asarray(pred.f_ref, float).reshape(-1), np.asarray(pred.f_pred, float).reshape(-1), "F",
            "eV/Å", f"forces: RMSE {pred.force_rmse_mev:.3g} meV/Å", 5)
    fig.suptitle(title or f"{pred.subset} set: {len(t)} structures", fontsize=10)
    return _png(fig)


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(float(v)) else f"{float(v):.{digits}g}"
    return html.escape(str(v))


_METRIC_ROWS = (("loss", "loss", 1.0, ""),
                ("e_loss_contrib", "energy contribution", 1.0, ""),
                ("f_loss_contrib", "force contribution", 1.0, ""),
                ("reg_loss", "regularisation", 1.0, ""),
                ("rmse_epa", "RMSE E", 1e3, "meV/atom"),
                ("mae_epa", "MAE E", 1e3, "meV/atom"),
                ("rmse_f_comp", "RMSE F", 1e3, "meV/Å"),
                ("mae_f_comp", "MAE F", 1e3, "meV/Å"))
_STRESS_ROWS = (("s_loss_contrib", "stress contribution", 1.0, ""),
                ("rmse_stress", "RMSE σ", EV_A3_TO_GPA, "GPa"),
                ("mae_stress", "MAE σ", EV_A3_TO_GPA, "GPa"))
"""Added to the metrics table where the fit has reference stresses (history eV/Å³ → GPa)."""


def _rows_for(train: Mapping[str, float]) -> tuple[tuple[str, str, float, str], ...]:
    v = train.get("rmse_stress")
    return _METRIC_ROWS + (_STRESS_ROWS if v is not None and math.isfinite(float(v)) else ())


def last_metrics(history: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The latest train metrics and the latest evaluated test metrics (scaled as shown: meV units)."""
    m = live_metrics(history)
    out: dict[str, dict[str, float]] = {"train": {}, "test": {}}
    if m.train_at is None:
        return out
    for col, _, scale, _ in _rows_for(m.train):
        out["train"][col] = float(m.train.get(col, math.nan)) * scale
        if m.has_test:
            out["test"][col] = float(m.test.get(col, math.nan)) * scale
    return out


def metrics_html(history: pd.DataFrame, status: "SessionStatus | None" = None) -> str:
    """The current metrics and loss contributions as a small HTML table: train at the latest iteration,
    test as last evaluated, each column headed by its iteration; test values of an older potential are
    greyed, italic and marked "stale"; no test column without a test set."""
    m = live_metrics(history)
    if m.train_at is None:
        if status is not None and status.stage:
            return f"<i>{html.escape(status.stage_text())}</i>"
        if status is not None and status.running:
            return "<i>starting the fit…</i>"
        return "<i>no metrics yet: start the fit</i>"
    stale = "color:#888;font-style:italic;" if m.test_stale else ""
    note = (f"<div style='{stale}font-size:11px'>test: stale, {m.test_behind} iteration"
            f"{'' if m.test_behind == 1 else 's'} behind (evaluated every display_step)</div>"
            if m.test_stale else "")
    th = f"<th style='text-align:right;padding:0 6px'>train<br>it {m.train_at}</th>"
    if m.has_test:
        th += (f"<th class='paceui-test-head' style='text-align:right;padding:0 6px;{stale}'>test"
               f"{' (stale)' if m.test_stale else ''}<br>it {m.test_at}</th>")
    rows = ""
    for col, label, scale, unit in _rows_for(m.train):
        rows += (f"<tr><td>{html.escape(label)}</td>"
                 f"<td style='text-align:right;padding:0 6px'>{_fmt(scale * m.train.get(col, math.nan))}</td>")
        if m.has_test:
            rows += f"<td style='text-align:right;padding:0 6px;{stale}'>{_fmt(scale * m.test.get(col, math.nan))}</td>"
        rows += f"<td>{html.escape(unit)}</td></tr>"
    return ("<table class='paceui-metrics' style='border-collapse:collapse;font-size:12px;white-space:nowrap'>"
            f"<tr><th></th>{th}<th></th></tr>" + rows + "</table>" + note)


ERROR_COLUMNS = (("name", "structure"), ("n_atoms", "atoms"), ("de_per_atom_mev", "ΔE (meV/atom)"),
                 ("f_rmse_mev", "RMSE F (meV/Å)"), ("df_max_mev", "max |ΔF| (meV/Å)"), ("w_energy", "weight"))


def short_name(name: str) -> str:
    """A structure name without its folder (``/…/Cu_train.xyz.gz:5`` → ``Cu_train.xyz.gz:5``)."""
    return name.rsplit("/", 1)[-1]


def errors_html(table: pd.DataFrame, n: int = 50, by: str = "de_per_atom_mev") -> str:
    """The per-structure error table, largest |``by``| first (at most ``n`` rows), as HTML; a ``gamma``
    column (max γ per structure, with an active set) is shown beside the errors."""
    if len(table) == 0:
        return "<i>no structures</i>"
    columns = ERROR_COLUMNS[:5] + (("gamma", "γ"),) + ERROR_COLUMNS[5:] if "gamma" in table else ERROR_COLUMNS
    return _table_html(table.reindex(table[by].abs().sort_values(ascending=False).index), columns, n, "paceui-errors")


GAMMA_COLUMNS = (("name", "structure"), ("n_atoms", "atoms"), ("gamma", "γ max"), ("gamma_mean", "γ mean"),
                 ("n_extrapolating", "atoms with γ > 1"))
SELECTION_COLUMNS = (("rank", "#"), ("name", "structure"), ("n_atoms", "atoms"), ("gamma", "γ"),
                     ("labelled", "labelled"))


GROUP_COLUMNS = (("group", "group"), ("n_structures", "structures"), ("n_atoms", "atoms"),
                 ("rmse_epa_mev", "RMSE E (meV/atom)"), ("mae_epa_mev", "MAE E (meV/atom)"),
                 ("rmse_f_comp_mev", "RMSE F (meV/Å)"), ("mae_f_comp_mev", "MAE F (meV/Å)"))
STRESS_GROUP_COLUMNS = (("n_stress", "with σ"), ("rmse_stress_gpa", "RMSE σ (GPa)"), ("mae_stress_gpa", "MAE σ (GPa)"))


def groups_html(groups: "pd.DataFrame | None") -> str:
    """Per-group errors (:func:`paceui.fit.error_tables.group_errors`: every group and ALL) as HTML; the
    stress columns where the set has reference stresses; '' without groups."""
    if groups is None or not len(groups):
        return ""
    stress = "n_stress" in groups and bool((groups["n_stress"] > 0).any())
    cols = GROUP_COLUMNS + (STRESS_GROUP_COLUMNS if stress else ())
    return "<div><b>errors per group</b></div>" + _table_html(groups, cols, len(groups), "paceui-groups", "groups")


def gamma_html(table: pd.DataFrame, n: int = 50) -> str:
    """Per-structure γ (a :class:`paceui.session.trust.GammaTable` table), largest first, as HTML."""
    if len(table) == 0:
        return "<i>no structures</i>"
    return _table_html(table.sort_values("gamma", ascending=False, kind="stable"), GAMMA_COLUMNS, n, "paceui-gamma")


def selection_html(table: pd.DataFrame, n: int = 200) -> str:
    """The D-optimal selection (rank, structure, atoms, γ, labelled) as HTML."""
    if len(table) == 0:
        return "<i>nothing selected</i>"
    return _table_html(table, SELECTION_COLUMNS, n, "paceui-selection")


def render_gamma_histogram(values: np.ndarray, title: str = "") -> bytes:
    """Histogram of per-atom γ on log bins, with the customary thresholds 1.1 and 5 marked, as PNG."""
    from matplotlib.ticker import FuncFormatter

    from paceui.session.trust import GAMMA_LOWER, GAMMA_UPPER, gamma_histogram

    counts, edges = gamma_histogram(values, 30)
    fig, (ax,) = _figure(1, (6.0, 3.0))
    ax.stairs(counts, edges, fill=True, color="C0", alpha=0.7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    for x in (1.0, GAMMA_LOWER, GAMMA_UPPER):
        ax.axvline(x, color="k" if x == 1.0 else "C3", lw=0.8, ls="-" if x == 1.0 else "--")
    ax.set_xlabel("γ (extrapolation grade) per atom", fontsize=9)
    ax.set_ylabel("atoms", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def _table_html(t: pd.DataFrame, columns: tuple[tuple[str, str], ...], n: int, cls: str,
                what: str = "structures") -> str:
    shown = t.head(n)
    head = "".join(f"<th style='padding:0 6px'>{html.escape(label)}</th>" for _, label in columns)
    body = []
    for _, row in shown.iterrows():
        cells = [html.escape(short_name(str(row.get(c, "")))) if c == "name" else _fmt(row.get(c, math.nan))
                 for c, _ in columns]
        body.append("<tr>" + "".join(f"<td style='padding:0 6px;text-align:"
                                     f"{'left' if c in ('name', 'group') else 'right'}'>"
                                     f"{x}</td>" for (c, _), x in zip(columns, cells)) + "</tr>")
    more = f"<div><i>{len(t) - len(shown)} more {what} not shown</i></div>" if len(t) > len(shown) else ""
    return (f"<table class='{cls}' style='border-collapse:collapse;font-size:12px;white-space:nowrap'><tr>"
            + head + "</tr>"
            + "".join(body) + "</table>" + more)
