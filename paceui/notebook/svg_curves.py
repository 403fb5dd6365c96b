"""Live learning curves for the notebook as inline SVG: one small chart per metric, laid out by CSS so
each follows the container's width (2–3 per row, wrapping on narrow outputs), coloured from the
JupyterLab theme's CSS variables (light and dark), with the value of every point on hover (SVG
``<title>``) and zoom by the x range the dashboard's slider gives.

Why SVG and not bqplot / plotly: both need a JavaScript extension in the front end (JupyterLab, VS Code,
Colab, nbconvert HTML each differently); without it the chart is an empty box, while an SVG string in an
``HTML`` widget renders everywhere ipywidgets do and costs a few ms to rebuild (no PNG encoding, text
stays sharp and theme-coloured at any width). Matplotlib stays for the report files.

Curves come from :func:`paceui.session.curves.curve_series`: one polyline per comparable segment (never
a line from one into the next), a labelled dashed marker where each begins.
"""

from __future__ import annotations

import html
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from paceui.session.curves import ChangeMark, Series, curve_series

PANELS = (("loss", "Loss", "", 1.0),
          ("rmse_epa", "RMSE energy", "meV/atom", 1e3),
          ("rmse_f_comp", "RMSE force", "meV/Å", 1e3))
"""(history column, title, unit, scale) of each chart; a stress panel is added where the history has one."""
STRESS_PANEL = ("rmse_stress", "RMSE stress", "GPa", 160.21766208)  # eV/Å³ → GPa
W, H = 420, 250          # viewBox of one chart (CSS px at 420 px width)
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 26, 34
FONT = 13
MAX_POINTS = 400         # records per chart (evenly strided)
MAX_LABELS = 4           # labelled segment markers (the most recent)
TRAIN = "var(--jp-brand-color1, #1976d2)"
TEST = "var(--jp-warn-color1, #f57c00)"
INK = "var(--jp-ui-font-color1, currentColor)"
FAINT = "var(--jp-ui-font-color2, #888)"
GRID = "var(--jp-border-color2, #ccc)"
CSS = (".paceui-charts{display:flex;flex-wrap:wrap;gap:8px;width:100%}"
       ".paceui-chart{flex:1 1 380px;max-width:560px;min-width:260px}"
       ".paceui-chart svg{width:100%;height:auto;display:block;overflow:visible}"
       ".paceui-chart circle.pt:not(.test){fill:transparent}.paceui-chart circle.pt:hover{fill:currentColor}")


def _ticks(lo: float, hi: float, log: bool, n: int = 5) -> list[float]:
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        dec = [10.0 ** k for k in range(a, b + 1)]
        if len(dec) <= 2:  # less than a decade or so: 1-2-5 steps
            dec = [m * 10.0 ** k for k in range(a, b + 1) for m in (1, 2, 5)]
        ticks = [t for t in dec if lo <= t <= hi]
        if len(ticks) >= 3:
            return ticks
        # short of a decade: 4 steps evenly spaced in log, rounded to 2 significant digits
        return [float(f"{10 ** x:.2g}") for x in np.linspace(math.log10(lo), math.log10(hi), 6)[1:-1]]
    span = hi - lo or abs(hi) or 1.0
    step = 10 ** math.floor(math.log10(span / n))
    step *= min((m for m in (1, 2, 5, 10) if span / (m * step) <= n), default=10)
    return [float(t) for t in np.arange(math.ceil(lo / step) * step, hi + step * 1e-9, step)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"


def chart_svg(series: Sequence[Series], title: str, unit: str, log: bool = True,
              x_range: tuple[float, float] | None = None) -> str:
    """One chart (an ``<svg>`` string) of ``series`` (see :func:`curve_series`); ``x_range``: zoom."""
    pts = []
    for s in series:
        for y in (s.train, s.test):
            ok = np.isfinite(y) & ((y > 0) if log else True)
            if x_range is not None:
                ok &= (s.x >= x_range[0]) & (s.x <= x_range[1])
            pts.append(y[ok])
    vals = np.concatenate(pts) if pts else np.zeros(0)
    head = f"{title} ({unit})" if unit else title
    out = [f"<svg viewBox='0 0 {W} {H}' xmlns='http://www.w3.org/2000/svg' role='img' "
           f"style='font:{FONT}px var(--jp-ui-font-family, sans-serif);color:{INK}'>",
           f"<text x='{LEFT}' y='16' fill='{INK}' font-weight='600'>{html.escape(head)}"
           f"<tspan fill='{FAINT}' font-weight='400'> · {'log' if log else 'linear'}</tspan></text>"]
    if not vals.size:
        out.append(f"<text x='{W / 2}' y='{H / 2}' text-anchor='middle' fill='{FAINT}'>no values yet</text></svg>")
        return "".join(out)
    xs = np.concatenate([s.x for s in series])
    x0, x1 = (float(xs.min()), float(xs.max())) if x_range is None else x_range
    x1 = x1 if x1 > x0 else x0 + 1.0
    lo, hi = float(vals.min()), float(vals.max())
    if log:
        lo, hi = (lo / 1.15, hi * 1.15) if hi > lo else (lo / 2, hi * 2)
    else:
        pad = 0.06 * (hi - lo) or 0.1 * (abs(hi) or 1.0)
        lo, hi = lo - pad, hi + pad
    f = (math.log10 if log else float)
    ylo, yhi = f(lo), f(hi)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return TOP + (yhi - f(y)) / (yhi - ylo) * ph

    out.append(f"<rect x='{LEFT}' y='{TOP}' width='{pw}' height='{ph}' fill='none' stroke='{GRID}'/>")
    for t in _ticks(lo, hi, log):
        yy = py(t)
        out.append(f"<line x1='{LEFT}' x2='{LEFT + pw}' y1='{yy:.1f}' y2='{yy:.1f}' stroke='{GRID}' "
                   f"stroke-width='0.6'/><text x='{LEFT - 4}' y='{yy + 4:.1f}' text-anchor='end' "
                   f"fill='{FAINT}'>{_fmt(t)}</text>")
    for t in _ticks(x0, x1, False):
        xx = px(t)
        out.append(f"<text x='{xx:.1f}' y='{TOP + ph + 15}' text-anchor='middle' fill='{FAINT}'>{t:g}</text>")
    out.append(f"<text x='{LEFT + pw / 2}' y='{H - 3}' text-anchor='middle' fill='{FAINT}'>iteration (total)</text>")
    out.append(f"<svg x='{LEFT}' y='{TOP}' width='{pw}' height='{ph}' viewBox='{LEFT} {TOP} {pw} {ph}'>")  # clip
    for i, s in enumerate(series):
        g = s.segment
        if g.kind != "start" and x0 <= g.x0 <= x1:
            xx = px(g.x0)
            out.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{TOP}' y2='{TOP + ph}' stroke='{FAINT}' "
                       f"stroke-dasharray='3 3'><title>{html.escape(g.label)} at iteration {g.x0}</title></line>")
            if i >= len(series) - MAX_LABELS:
                out.append(f"<text x='{xx + 3:.1f}' y='{TOP + 12}' fill='{FAINT}' font-size='11'>"
                           f"{html.escape(g.label)}</text>")
        for name, y, color in (("train", s.train, TRAIN), ("test", s.test, TEST)):
            ok = np.isfinite(y) & ((y > 0) if log else True)
            if not ok.any():
                continue
            xv, yv = s.x[ok], y[ok]
            coords = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(xv, yv))
            dash = " stroke-dasharray='4 2'" if name == "test" else ""
            out.append(f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='1.6'{dash}/>")
            out.append(f"<g style='color:{color}'>")
            dot = f" fill='{color}'" if name == "test" else ""  # test: every display_step, so dots show it
            for a, b in zip(xv, yv):  # hover: the value of each point
                out.append(f"<circle class='pt{' test' if dot else ''}' cx='{px(a):.1f}' cy='{py(b):.1f}' "
                           f"r='{3 if dot else 3.5}'{dot}><title>{name} it {a:g}: {b:.4g} {html.escape(unit)}"
                           f"</title></circle>")
            out.append("</g>")
    out.append("</svg>")
    has_test = any(np.isfinite(s.test).any() for s in series)
    lx = LEFT + pw - (118 if has_test else 56)
    out.append(f"<line x1='{lx}' x2='{lx + 14}' y1='{TOP - 8}' y2='{TOP - 8}' stroke='{TRAIN}' stroke-width='2'/>"
               f"<text x='{lx + 17}' y='{TOP - 4}' fill='{INK}' font-size='11'>train</text>")
    if has_test:  # no test legend without a test set
        out.append(f"<line x1='{lx + 60}' x2='{lx + 74}' y1='{TOP - 8}' y2='{TOP - 8}' stroke='{TEST}' "
                   f"stroke-width='2' stroke-dasharray='4 2'/><text x='{lx + 77}' y='{TOP - 4}' fill='{INK}' "
                   f"font-size='11'>test</text>")
    out.append("</svg>")
    return "".join(out)


def panels(history: pd.DataFrame) -> tuple[tuple[str, str, str, float], ...]:
    """The charts for ``history``: loss, energy and force RMSE, and stress RMSE where it was fitted."""
    col = STRESS_PANEL[0]
    has_stress = col in history and bool(np.isfinite(history[col].to_numpy(float)).any())
    return PANELS + ((STRESS_PANEL,) if has_stress else ())


def curves_html(history: pd.DataFrame, changes: Iterable[ChangeMark] = (), log: bool = True,
                since_last_change: bool = False, x_range: tuple[float, float] | None = None) -> str:
    """The learning curves of a session as HTML (a flex row of :func:`chart_svg` charts)."""
    changes = list(changes)
    charts = []
    for col, title, unit, scale in panels(history):
        series = curve_series(history, col, scale, changes, since_last_change, MAX_POINTS)
        charts.append(f"<div class='paceui-chart'>{chart_svg(series, title, unit, log, x_range)}</div>")
    return f"<style>{CSS}</style><div class='paceui-charts'>{''.join(charts)}</div>"
