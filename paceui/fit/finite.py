"""A loss or gradient that is NaN/inf stops the fit with the reason and the structure responsible."""

from __future__ import annotations

from typing import Any

import numpy as np

from paceui.errors import PaceuiError
from paceui.fit.arrays import FitArrays
from paceui.fit.loss import LossResult


class NonFiniteLossError(PaceuiError, FloatingPointError):
    """The loss or its gradient is NaN/inf; ``structure`` is the training structure's position (or None)."""

    def __init__(self, message: str, structure: int | None = None) -> None:
        super().__init__(message)
        self.structure = structure


def check_finite(res: LossResult, theta: np.ndarray, data: FitArrays, names: Any = None,
                 allow_inf: bool = False) -> None:
    """Raise :class:`NonFiniteLossError` naming the reason and the first structure responsible when the
    loss or gradient of ``res`` is NaN (or inf, unless ``allow_inf``: a line search may try such steps)."""
    bad = (lambda a: np.isnan(a)) if allow_inf else (lambda a: ~np.isfinite(a))  # noqa: E731
    if not (bad(np.asarray(res.loss)).any() or (res.grad is not None and bad(res.grad).any())):
        return
    if not np.isfinite(theta).all():
        raise NonFiniteLossError(f"the fit parameters became non-finite ({int((~np.isfinite(theta)).sum())} "
                                 "of them): the optimizer diverged; lower the step (options) or add regularisation")
    e = np.asarray(res.e_pred)
    f = np.asarray(res.f_pred).reshape(-1, 3)
    so = np.asarray(data.struct_off)
    f_bad = ~np.isfinite(f).all(axis=1)
    s_bad = ~np.isfinite(e) if e.shape == (len(so) - 1,) else np.zeros(len(so) - 1, bool)
    if f_bad.shape[0] == so[-1]:
        s_bad |= np.add.reduceat(f_bad.astype(np.int64), so[:-1]) > 0 if len(so) > 1 else False
    hit = np.flatnonzero(s_bad)
    what = "loss" if not np.isfinite(res.loss) else "gradient"
    if hit.size:
        k = int(hit[0])
        name = f" '{names[k]}'" if names is not None and k < len(names) else ""
        raise NonFiniteLossError(f"the {what} is not finite: training structure #{k}{name} has a non-finite "
                                 f"predicted energy or force ({hit.size} structure(s) in all); check its atoms "
                                 "(coincident atoms, huge coordinates)", k)
    raise NonFiniteLossError(f"the {what} is not finite (no single structure is responsible: check the loss "
                             "settings and the weights)")
