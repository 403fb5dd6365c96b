"""Small text helpers shared by the panes: numbers, structure names, metric labels (no widgets)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# (history column, label, scale, unit): scale turns eV/atom, eV/Å into meV/atom, meV/Å
METRICS: tuple[tuple[str, str, float, str], ...] = (
    ("loss", "loss", 1.0, ""),
    ("rmse_epa", "E RMSE", 1e3, "meV/atom"),
    ("mae_epa", "E MAE", 1e3, "meV/atom"),
    ("rmse_f_comp", "F RMSE", 1e3, "meV/Å"),
    ("mae_f_comp", "F MAE", 1e3, "meV/Å"),
)
STRESS_METRICS: tuple[tuple[str, str, float, str], ...] = (
    ("rmse_stress", "σ RMSE", 160.21766208, "GPa"),
    ("mae_stress", "σ MAE", 160.21766208, "GPa"),
)
"""Shown after :data:`METRICS` where the fit has reference stresses (history eV/Å³ → GPa)."""
CONTRIBUTIONS: tuple[tuple[str, str], ...] = (
    ("e_loss_contrib", "energy"), ("f_loss_contrib", "forces"), ("l1_reg_contrib", "L1"),
    ("s_loss_contrib", "stress"), ("l2_reg_contrib", "L2"), ("smooth_orth", "orth"), ("smooth_w1", "w1 rad"),
    ("smooth_w2", "w2 rad"),
    ("smooth_w3", "w3 rad"))


def has_stress(values: Any) -> bool:
    """Whether metrics (a mapping, or a history DataFrame) hold a finite stress error."""
    v = values.get("rmse_stress") if hasattr(values, "get") else None
    if v is None:
        return False
    try:
        arr = [float(x) for x in (v if hasattr(v, "__iter__") else [v])]
    except (TypeError, ValueError):
        return False
    return any(math.isfinite(x) for x in arr)


def metrics_for(values: Any) -> tuple[tuple[str, str, float, str], ...]:
    """:data:`METRICS`, with :data:`STRESS_METRICS` where ``values`` have stress errors."""
    return METRICS + (STRESS_METRICS if has_stress(values) else ())


def num(x: Any, digits: int = 4) -> str:
    """A number in ``digits`` significant digits; '-' for None/NaN."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-" if x is None else str(x)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.{digits}g}"


def short_name(name: Any) -> str:
    """A structure name without its folders (``/abs/path/Cu_train.xyz.gz:3`` → ``Cu_train.xyz.gz:3``)."""
    s = str(name)
    return Path(s).name if "/" in s or "\\" in s else s


def value_text(v: Any) -> str:
    """A setting as one editable line (YAML flow style for lists/dicts; '' for unset)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        import yaml

        return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip()
    return str(v)
