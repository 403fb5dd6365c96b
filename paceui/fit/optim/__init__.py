"""Optimizers as steppers (pacemaker ``fit.optimizer``): one iteration per ``step()``.

:mod:`~paceui.fit.optim.stepper` holds the protocol, :mod:`~paceui.fit.optim.own` paceui's own steppers
(BFGS, L-BFGS-B, CG, Adam, SGD), :mod:`~paceui.fit.optim.scipy_steppers` the threaded scipy.minimize and
least-squares steppers and :mod:`~paceui.fit.optim.factory` :func:`make_stepper`, which picks one by name.
"""

from paceui.fit.optim.factory import make_stepper, pacemaker_options
from paceui.fit.optim.own import (
                                  OWN_STEPPERS,
                                  AdamStepper,
                                  BFGSStepper,
                                  CGStepper,
                                  LBFGSStepper,
                                  OptimizerConfig,
                                  SGDStepper,
)
from paceui.fit.optim.scipy_steppers import LeastSquaresStepper, ScipyStepper
from paceui.fit.optim.stepper import LossFn, Memo, StepInfo, Stepper, canonical_name, load_value

__all__ = ["OWN_STEPPERS", "AdamStepper", "BFGSStepper", "CGStepper", "LBFGSStepper", "LeastSquaresStepper", "LossFn",
           "Memo", "OptimizerConfig", "SGDStepper", "ScipyStepper", "StepInfo", "Stepper", "canonical_name",
           "load_value", "make_stepper", "pacemaker_options"]
