"""Fitting: pacemaker's loss and its analytic gradient, optimizers, the fitter, metrics and ``paceui fit``.

A fit packs the prepared data into :class:`FitArrays`, builds an :class:`ACELoss` of the potential, and
lets a :class:`Fitter` drive an optimizer (:func:`make_stepper`) through the ladder and cycles; the
:class:`FitMetrics` of every iteration go to the log, the metrics files and the session. Settings come from
input.yaml (:class:`InputConfig`: :class:`FitConfig`, :class:`LossConfig`, :class:`BackendConfig`).
:func:`run_fit` is the whole ``paceui fit`` workflow. The Dask evaluator lives in :mod:`paceui.fit.dask`.
"""

from paceui.fit.arrays import FitArrays, fit_arrays
from paceui.fit.config import BackendConfig, FitConfig, InputConfig
from paceui.fit.fitter import FitState, Fitter, IterationRecord
from paceui.fit.linear import linear_fit
from paceui.fit.loss import ACELoss, LossConfig, LossResult
from paceui.fit.metrics import FitMetrics, compute_metrics, per_structure_errors
from paceui.fit.optim import StepInfo, Stepper, make_stepper
from paceui.fit.params import ParamMap
from paceui.fit.runner import FitRun, run_fit
from paceui.fit.target import build_target

__all__ = ["ACELoss", "BackendConfig", "FitArrays", "FitConfig", "FitMetrics", "FitRun", "FitState", "Fitter",
           "InputConfig", "IterationRecord", "LossConfig", "LossResult", "ParamMap", "StepInfo", "Stepper",
           "build_target", "compute_metrics", "fit_arrays", "linear_fit", "make_stepper", "per_structure_errors",
           "run_fit"]
