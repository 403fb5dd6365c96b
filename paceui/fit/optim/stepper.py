"""The optimizer protocol (pacemaker ``fit.optimizer``; docs/optimizers.md): a :class:`Stepper` runs one
iteration per ``step()`` and saves its state (np.savez-able) to continue from it.

``StepInfo.converged``: the optimizer stopped for any reason (``success`` / ``message`` say why).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

LossFn = Callable[[np.ndarray], tuple[float, np.ndarray]]  # fun(theta) -> (loss, gradient)
IGNORED_OPTIONS = frozenset({"disp", "return_all", "iprint", "maxfun", "eps", "finite_diff_rel_step", "maxfev",
                             "verbose"})  # scipy's print / finite-difference options, accepted silently


@dataclass(frozen=True)
class StepInfo:
    """Outcome of one :meth:`Stepper.step` (or the current status: :meth:`Stepper.info`)."""

    iteration: int
    n_evals: int
    loss: float
    grad_norm: float
    converged: bool
    message: str
    success: bool = False


def load_value(v: Any) -> Any:
    """A saved state entry back as a float64 array copy, or a Python scalar / str."""
    a = np.asarray(v)
    return a.item() if a.ndim == 0 else np.array(a, dtype=float)


def canonical_name(name: str) -> str:
    """Lower-case optimizer name, pacemaker aliases resolved (``lbfgs`` → ``l-bfgs-b``)."""
    n = name.strip().lower()
    return {"l-bfgs": "l-bfgs-b", "lbfgs": "l-bfgs-b", "lbfgsb": "l-bfgs-b"}.get(n, n)


class Memo:
    """Counts calls of ``fn(x)``, memoises the last ``size`` results (keyed by x's bytes); ``fg``:
    ``fn`` is a loss function, results become (float, float64 gradient copy)."""

    def __init__(self, fn: Callable[[np.ndarray], Any] | None, size: int = 4, fg: bool = False):
        self.fn, self.size, self.fg, self.n_calls = fn, size, fg, 0
        self._d: dict[bytes, Any] = {}

    def get(self, x: np.ndarray) -> Any:
        return self._d.get(np.ascontiguousarray(x, dtype=float).tobytes())

    def put(self, x: np.ndarray, value: Any) -> None:
        self._d[np.ascontiguousarray(x, dtype=float).tobytes()] = value
        while len(self._d) > self.size:
            del self._d[next(iter(self._d))]

    def __call__(self, x: np.ndarray) -> Any:
        value = self.get(x)
        if value is None and self.fn is not None:
            value = self.fn(np.array(x, dtype=float))
            if self.fg:
                value = float(value[0]), np.array(value[1], dtype=float).reshape(np.shape(x))
            self.n_calls += 1
            self.put(x, value)
        return value


class Stepper(abc.ABC):
    """One optimizer run of ``fun`` from ``x0`` (constructor ``(fun, x0, options)``, options as
    pacemaker's ``fit.options``) that advances one iteration per :meth:`step`."""

    name: str = "?"
    _memory: tuple[str, ...] = ()  # method-specific attributes (``_<name>``) saved by state()
    _closed = False

    def _init_run(self, evals: Memo, maxiter: Any) -> None:
        self._evals, self._maxiter = evals, None if maxiter is None else int(maxiter)
        self._f = self._gn = math.nan
        self.iteration, self._status, self._message = 0, "running", ""

    @abc.abstractmethod
    def step(self) -> StepInfo: ...  # perform one iteration (no-op once converged), report it

    @abc.abstractmethod
    def set_x(self, x: np.ndarray) -> None: ...  # restart from x: no curvature / moments, iteration 0

    @classmethod
    @abc.abstractmethod
    def from_state(cls, fun: LossFn | None, state: Mapping[str, Any],  # state(), or np.load of it
                   options: Mapping[str, Any] | None = None) -> "Stepper": ...

    def info(self) -> StepInfo:  # the current status, without iterating
        done, message = self._status != "running", self._message
        if not done and self._closed:
            done, message = True, "stopped"
        elif not done and self._maxiter is not None and self.iteration >= self._maxiter:
            done, message = True, "maximum number of iterations reached"
        return StepInfo(self.iteration, self._evals.n_calls, self._f, self._gn, done, message,
                        self._status == "success")

    @property
    def x(self) -> np.ndarray:  # a copy of the current parameters
        return self._x.copy()

    @property
    def loss(self) -> float:  # loss at x (NaN while unknown)
        return self._f

    @property
    def converged(self) -> bool:  # stopped for any reason (info().success: whether it succeeded)
        return self.info().converged

    def state(self) -> dict[str, np.ndarray | float | int | str]:
        """Everything needed to continue: numpy arrays and scalars only (np.savez-able)."""
        st = {"name": self.name, "x": self._x, "loss": self._f, "grad_norm": self._gn,
              "iteration": self.iteration, "n_evals": self._evals.n_calls, "status": self._status,
              "message": self._message, **{k: getattr(self, "_" + k) for k in self._memory}}
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in st.items()}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        saved = load_value(state["name"])
        if canonical_name(saved) != canonical_name(self.name):
            raise ValueError(f"state was saved by optimizer {saved!r}, not {self.name!r}")
        v = {k: load_value(state[k]) for k in ("x", "loss", "grad_norm", "iteration", "n_evals", "status", "message",
                                               *self._memory)}
        self._x, self._f, self._gn, self.iteration, self._status, self._message = (
            v["x"], v["loss"], v["grad_norm"], v["iteration"], v["status"], v["message"])
        self._evals.n_calls += v["n_evals"]
        for k in self._memory:
            setattr(self, "_" + k, v[k])

    def close(self) -> None:  # noqa: B027 (a no-op unless a stepper holds threads)
        """Release worker threads (the own steppers hold none)."""

    def __enter__(self) -> "Stepper":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
