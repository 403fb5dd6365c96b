"""Text lines of the fit log in pacemaker's layout (as pacemaker writes them).

Metrics come in eV/atom and eV/Å (:class:`~paceui.fit.metrics.FitMetrics`) and are printed in
meV/atom ("meV/at") and meV/Å ("meV/A"); times in µs per atom ("mcs/at").
"""

from __future__ import annotations

import enum
import math

from paceui.fit.metrics import FitMetrics

TITLE_WIDTH = 12
BLOCK_DASHES = 44
RULE_WIDTH = 97
_LABEL_WIDTH = 10
_ROW_LABEL_WIDTH = 7

_SMOOTH_ROWS = (("Smooth_orth:", "smooth_orth"), ("Smooth_w1:", "smooth_w1"),
                ("Smooth_w2:", "smooth_w2"), ("Smooth_w3:", "smooth_w3"))

STOP_REASONS: dict[str, str] = {
    "MAX_ITER": "maximum number of iterations reached",
    "TOL": "optimizer converged (tolerance reached)",
    "PATIENCE": "early stopping: relative loss change stayed above the threshold for the patience window",
    "USER": "stopped by the user",
    "ERROR": "stopped by an error",
}
"""Plain-language text for the stop-reason codes (``StopReason`` enum names)."""


def _mev(x: float) -> str:
    return f"{x * 1e3:.2f}"


def iteration_line(title: str, iteration: int, n_evals: int, metrics: FitMetrics,
                   time_per_atom_us: float | None) -> str:
    """The per-iteration log line, e.g. ``Iteration   #999  (1052 evals):     Loss: 1.9200e-04 | ...``.

    Energies: ``rmse_epa`` (``low_rmse_epa``) in meV/atom; forces: ``rmse_f_comp``
    (``low_rmse_f_comp``) in meV/Å; time_per_atom_us: evaluation time per atom (µs), omitted if None.
    """
    head = ("{:<12}".format(title) + "#{:<5}".format(iteration)
            + "{:<14}".format(f"({n_evals} evals):") + "{:>10}".format("Loss: ")
            + "{: >1.4e}".format(metrics.loss))
    parts = [head,
             f"RMSE Energy(low): {_mev(metrics.rmse_epa)} ({_mev(metrics.low_rmse_epa)}) meV/at",
             f"Forces(low): {_mev(metrics.rmse_f_comp)} ({_mev(metrics.low_rmse_f_comp)}) meV/A"]
    if time_per_atom_us is not None:
        parts.append(f"Time/eval: {time_per_atom_us:.2f} mcs/at")
    return " | ".join(parts)


def _pct(part: float, total: float) -> str:
    if total > 0 and math.isfinite(total):
        return f"({100.0 * part / total:5.1f}%)"
    return "(  n/a)"


def _loss_rows(iteration: int, m: FitMetrics) -> list[str]:
    prefix = f"Iteration:  #{iteration:<3} Loss:"
    pad = " " * len(prefix)
    rows = [prefix + f"{'Total:':>{_LABEL_WIDTH}}  {m.loss:.4e} (100%)"]
    terms = [("Energy:", m.e_loss_contrib), ("Force:", m.f_loss_contrib),
             ("L1:", m.l1_reg_contrib), ("L2:", m.l2_reg_contrib)]
    terms += [(label, getattr(m, name)) for label, name in _SMOOTH_ROWS if getattr(m, name) != 0.0]
    for label, value in terms:
        rows.append(pad + f"{label:>{_LABEL_WIDTH}}  {value:.4e} {_pct(value, m.loss)}")
    return rows


def _error_table(m: FitMetrics) -> list[str]:
    heads = ("Energy/at, meV/at", "Energy_low/at, meV/at", "Force, meV/A", "Force_low, meV/A")
    rows = [("RMSE:", m.rmse_epa, m.low_rmse_epa, m.rmse_f_comp, m.low_rmse_f_comp),
            ("MAE:", m.mae_epa, m.low_mae_epa, m.mae_f_comp, m.low_mae_f_comp),
            ("MAX_AE:", m.max_abs_epa, m.low_max_abs_epa, m.max_abs_f_comp, m.low_max_abs_f_comp)]
    widths = [max(len(h), 10) for h in heads]
    out = [" " * _ROW_LABEL_WIDTH + "".join(f" | {h:^{w}}" for h, w in zip(heads, widths))]
    for label, *vals in rows:
        out.append(f"{label:>{_ROW_LABEL_WIDTH}}"
                   + "".join(f" | {_mev(v):>{w}}" for v, w in zip(vals, widths)))
    return out


def extended_block(title: str, iteration: int, metrics: FitMetrics,
                   avg_time_us: float | None) -> str:
    """The multi-line FIT STATS block printed every ``display_step`` (no trailing newline).

    44 dashes + title + 44 dashes; loss total and its parts (Energy, Force, L1, L2, non-zero
    Smooth_* terms) with the percentage of the total; ``ncoefs/nfuncs`` and average time (µs/atom);
    97 dashes; RMSE / MAE / MAX_AE table (energies meV/atom, force components meV/Å).
    """
    lines = ["-" * BLOCK_DASHES + title + "-" * BLOCK_DASHES]
    lines += _loss_rows(iteration, metrics)
    params = f"Number of params./funcs: {metrics.ncoefs:>8}/{metrics.nfuncs:<8}"
    timing = "n/a" if avg_time_us is None else f"{avg_time_us:.2f}"
    lines.append(f"{params}{'Avg. time:':>{RULE_WIDTH - len(params) - 18}} {timing:>10} mcs/at")
    lines.append("-" * RULE_WIDTH)
    lines += _error_table(metrics)
    return "\n".join(line.rstrip() for line in lines)


def stop_reason_line(reason: str | enum.Enum, detail: str | None = None) -> str:
    """``Fit stopped: <plain-language reason> [<CODE>]`` for a stop code, enum member or free text."""
    if isinstance(reason, enum.Enum):
        code = reason.name
    else:
        code = str(reason).strip()
    text = STOP_REASONS.get(code.upper(), None)
    line = f"Fit stopped: {text} [{code.upper()}]" if text else f"Fit stopped: {code}"
    return f"{line} ({detail})" if detail else line
