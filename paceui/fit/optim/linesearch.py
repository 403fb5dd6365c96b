"""Line search of the own quasi-Newton steppers: scipy's strong-Wolfe search, then a fallback.

The fallback backtracks with safeguarded quadratic interpolation and also accepts Hager-Zhang
approximate-Wolfe points, so a stiff direction (a new high-rank function in a ladder step, whose
gradient is ~1e8 times the loss) still finds its step of ~1e-15 in a few evaluations.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
from scipy.optimize import line_search


def search_step(ev: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, f: float, g: np.ndarray,
                p: np.ndarray, hint: float | None, c: Any) -> tuple[np.ndarray, float, np.ndarray] | None:
    """(x_new, f_new, g_new) along the descent direction p, or None when no decrease can be found."""
    slope = float(g @ p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha = line_search(lambda z: ev(z)[0], lambda z: ev(z)[1], x, p, gfk=g, old_fval=f,
                            old_old_fval=hint, c1=c.c1, c2=c.c2, maxiter=c.maxls)[0]
    if alpha is not None and np.isfinite(alpha) and alpha > 0:
        x_new = x + alpha * p
        f_new, g_new = ev(x_new)
        if np.isfinite(f_new) and f_new <= f and np.any(x_new != x):
            return x_new, f_new, g_new
    # docs/optimizers.md (O5)
    alpha = 1.0  # backtracking, safeguarded quadratic interpolation (N&W §3.5): stiff directions
    for _ in range(60):  # (a new high-rank function) may need α many decades smaller
        if not np.any((x_new := x + alpha * p) != x):
            break
        f_new, g_new = ev(x_new)
        if np.isfinite(f_new) and (
                f_new < f and f_new <= f + c.c1 * alpha * slope  # Armijo
                or f_new <= f + 1e-12 * abs(f)  # approximate Wolfe (Hager & Zhang 2005)
                and c.c2 * slope <= float(g_new @ p) <= (2.0 * c.c1 - 1.0) * slope):
            return x_new, f_new, g_new
        excess = f_new - f - slope * alpha if np.isfinite(f_new) else np.inf
        alpha = float(np.clip(-slope * alpha * alpha / (2.0 * excess) if excess > 0 else 0.5 * alpha,
                              1e-8 * alpha, 0.5 * alpha))
    return None
