"""The optimizer factory: the :class:`Stepper` for pacemaker's ``fit.optimizer`` name and options."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy.optimize import show_options

from paceui.fit.optim.own import OWN_STEPPERS
from paceui.fit.optim.scipy_steppers import LeastSquaresStepper, ProductFn, ResidualFn, ScipyStepper
from paceui.fit.optim.stepper import LossFn, Stepper, canonical_name


def pacemaker_options(name: str, options: Mapping[str, Any] | None, maxiter: int) -> dict[str, Any]:
    """pacemaker's defaults: no options → ``{gtol: 1e-8, maxiter}``, else options + maxiter."""
    opts: dict[str, Any] = {"gtol": 1e-8} if options is None else dict(options)
    if options is not None and canonical_name(name) in ("bfgs", "cg", "l-bfgs-b"):
        opts.setdefault("gtol", 1e-5)  # scipy's default, which pacemaker then gets
    return {**opts, "maxiter": int(maxiter)}


def check_optimizer(name: str) -> str:
    """The canonical name of optimizer ``name``, or a ValueError listing the known ones."""
    n = canonical_name(name)
    if n not in OWN_STEPPERS and n not in ("trf", "dogbox", "lm"):
        n = canonical_name(n.removeprefix("scipy:"))
        try:
            show_options("minimize", n, disp=False)
        except ValueError:
            raise ValueError(f"unknown optimizer {name!r}; known: BFGS, L-BFGS-B, CG, Adam, SGD, trf, dogbox, lm, or "
                             "any scipy.optimize.minimize method (Nelder-Mead, Powell, TNC, SLSQP, trust-constr, "
                             "...; 'scipy:BFGS' etc. for scipy's own)") from None
    return n


def make_stepper(name: str, fun: LossFn | None, x0: np.ndarray | None, options: Mapping[str, Any] | None,
                 maxiter: int, residuals: ResidualFn | None = None, jac_t: ProductFn | None = None,
                 jvp: ProductFn | None = None, *, state: Mapping[str, Any] | None = None) -> Stepper:
    """The stepper for pacemaker's ``fit.optimizer`` ``name`` with :func:`pacemaker_options`.

    Names: BFGS, L-BFGS-B, CG, Adam, SGD (own), trf, dogbox, lm, any scipy.minimize method ('scipy:BFGS'
    etc. for scipy's own). With ``state`` (a saved :meth:`Stepper.state`) the run continues from it.
    """
    n = check_optimizer(name)
    opts, kw = pacemaker_options(n, options, maxiter), dict(residuals=residuals, jac_t=jac_t, jvp=jvp)
    if canonical_name(name) in OWN_STEPPERS:
        cls = OWN_STEPPERS[n]
        return cls(fun, x0, opts) if state is None else cls.from_state(fun, state, opts)
    if n in ("trf", "dogbox", "lm"):
        if state is not None:
            return LeastSquaresStepper.from_state(fun, state, opts, **kw)
        return LeastSquaresStepper(fun, x0, opts, method=n, **kw)
    if state is not None:
        return ScipyStepper.from_state(fun, state, opts)
    return ScipyStepper(fun, x0, opts, method=name.strip()[6:] if n != canonical_name(name) else name.strip())
