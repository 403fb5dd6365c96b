"""Steppable ``scipy.optimize.minimize`` methods and ``least_squares``.

scipy owns its loop, so it runs in a private worker thread. When scipy reports a finished iteration
(``callback``; for ``lm`` a Jacobian request at a new point) the worker records it and, at its next
objective call, publishes it and blocks until the next ``step()``: one ``step()`` per scipy iteration,
the last already ``converged``. ``close()`` stops the worker (StopIteration in the callback or an
exception at the blocking point) and joins it. Resuming (``from_state``, ``set_x``) restarts scipy
from x with the remaining budget: scipy's internal state is lost, so it is NOT bit-identical.
"""

from __future__ import annotations

import functools
import math
import queue
import re
import threading
import warnings
import weakref
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
from scipy.optimize import least_squares, minimize, show_options
from scipy.sparse.linalg import LinearOperator

from paceui.fit.optim.own import OWN_STEPPERS
from paceui.fit.optim.stepper import IGNORED_OPTIONS, LossFn, Memo, StepInfo, Stepper, canonical_name, load_value

ResidualFn = Callable[[np.ndarray], np.ndarray]  # residuals(theta) -> r, with loss == sum(r**2)
ProductFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # jac_t(theta, y) = Jᵀy, jvp(theta, v) = J v

GRADIENT_METHODS = frozenset({"cg", "bfgs", "newton-cg", "l-bfgs-b", "tnc", "slsqp", "trust-constr"})
HESSIAN_METHODS = frozenset({"dogleg", "trust-exact", "trust-ncg", "trust-krylov"})
LSQ_OPTIONS = frozenset({"ftol", "xtol", "gtol", "x_scale", "loss", "f_scale", "tr_options",
                         "max_nfev", "diff_step"})
MAX_DENSE_JACOBIAN = 5e7  # largest n_params·n_residuals for which lm builds the dense Jacobian


class _Stopped(Exception):
    """Raised inside the worker to abandon the scipy run."""


class _Point(NamedTuple):
    """An iterate as reported by the worker."""

    x: np.ndarray
    loss: float
    grad_norm: float


Target = Callable[["_Handshake"], tuple[_Point, bool, str]]  # runs scipy: (final, success, message)


class _Handshake:
    """Runs a :data:`Target` in a worker thread, one iteration per :meth:`advance`."""

    def __init__(self, target: Target):
        self._target, self.finished = target, False
        self._pending: _Point | None = None
        self._go: queue.Queue[str] = queue.Queue()
        self._out: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def iteration_done(self, point: _Point) -> None:
        """Worker: record a finished iteration (published at the next :meth:`checkpoint`)."""
        self._pending = point
        if self._stop.is_set():
            raise StopIteration

    def checkpoint(self) -> None:
        """Worker: publish a pending iteration and wait for the next step (or a stop)."""
        if self._pending is not None and not self._stop.is_set():
            self._out.put(("iter", self._pending))
            self._pending = None
            self._go.get()
        if self._stop.is_set():
            raise _Stopped

    def _run(self) -> None:
        try:
            final, success, message = self._target(self)
            self._out.put(("done", (self._pending, final, success, message)))
        except (_Stopped, StopIteration):
            self._out.put(("stopped", None))
        except BaseException as exc:  # noqa: BLE001 - re-raised by step() in the caller's thread
            self._out.put(("error", exc))

    def advance(self) -> tuple[str, Any]:
        """Caller: let the worker reach its next iteration: ('iter'|'done'|'stopped'|'error', …)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="paceui-optimizer", daemon=True)
            self._thread.start()
        else:
            self._go.put("go")
        kind, payload = self._out.get()
        if kind != "iter":
            self.finished = True
            self._thread.join()
        return kind, payload

    def close(self, timeout: float | None = None) -> bool:
        """Stop the worker and join it; False if it is still alive after ``timeout`` seconds."""
        self._stop.set()
        self.finished = True
        self._go.put("stop")
        if (t := self._thread) is not None and t is not threading.current_thread():
            t.join(timeout)
        return t is None or not t.is_alive()


class _ThreadedStepper(Stepper):
    """Worker handshake and iteration budget shared by the scipy steppers; state() holds x."""

    def _init_threaded(self, x0: np.ndarray, options: Mapping[str, Any] | None, evals: Memo) -> None:
        self._options = {k: v for k, v in dict(options or {}).items() if v is not None}
        self._init_run(evals, self._options.get("maxiter"))
        self._x = np.array(x0, dtype=float).ravel()
        self._run: _Handshake | None = None
        self._finalizer: weakref.finalize | None = None

    def _remaining(self) -> int | None:
        return None if self._maxiter is None else max(self._maxiter - self.iteration, 0)

    def _make_target(self) -> Target:
        raise NotImplementedError

    def step(self) -> StepInfo:
        if self.converged:
            return self.info()
        if (run := self._run) is None or run.finished:
            self._shutdown()
            run = self._run = _Handshake(self._make_target())
            self._finalizer = weakref.finalize(self, run.close, 0.0)  # ends a forgotten worker
        kind, payload = run.advance()
        if kind == "iter":
            self._apply(payload)
            if self.converged:  # maxiter reached: end the worker now
                self._shutdown()
        elif kind == "done":
            pending, final, success, message = payload
            if pending is not None:
                self._apply(pending)
            elif not np.array_equal(final.x, self._x):
                self.iteration += 1
            self._x, self._f = final.x, final.loss
            self._gn = final.grad_norm if np.isfinite(final.grad_norm) else self._gn
            if success or self._remaining() != 0:  # else: our maxiter (resumable with a larger one)
                self._status, self._message = ("success" if success else "failed"), message
        elif kind == "error":
            self._status, self._message = "failed", f"error: {payload}"
            raise payload
        else:
            self._closed = True
        return self.info()

    def _apply(self, p: _Point) -> None:
        self._x, self._f, self._gn = p
        self.iteration += 1

    def close(self, timeout: float | None = 60.0) -> bool:
        """Stop and join the worker (False if it outlived ``timeout`` s); the run is then over.

        Later step() calls return the "stopped" info; set_x / from_state start a new scipy run.
        May be called from another thread while step() runs: that step returns "stopped".
        """
        self._closed = True
        return self._shutdown(timeout)

    def _shutdown(self, timeout: float | None = 60.0) -> bool:
        run, self._run = self._run, None
        if self._finalizer is not None:
            self._finalizer.detach()
        return run.close(timeout) if run is not None else True

    def set_x(self, x: np.ndarray) -> None:
        self._shutdown()
        self._x = np.array(x, dtype=float).reshape(self._x.shape)
        self._f = self._gn = math.nan
        self.iteration, self._status, self._message, self._closed = 0, "running", "", False


@functools.lru_cache(maxsize=None)
def _method_options(method: str) -> frozenset[str]:
    """Option names that ``minimize(method=...)`` documents (``scipy.optimize.show_options``)."""
    doc = show_options("minimize", method, disp=False) or ""
    heads = re.findall(r"^\s*(\w+(?:, \w+)*) :", doc, flags=re.MULTILINE)
    return frozenset(name for head in heads for name in head.split(", "))


class ScipyStepper(_ThreadedStepper):
    """Any ``scipy.optimize.minimize`` method, one scipy iteration per :meth:`step`.

    ``options`` go to ``minimize(options=...)`` (``bounds`` / ``constraints`` become keyword
    arguments); gtol / maxiter are dropped for methods that do not document them (the iteration
    limit is then enforced here). Methods needing a Hessian are refused. loss is NaN until the
    first step().
    """

    def __init__(self, fun: LossFn | None, x0: np.ndarray, options: Mapping[str, Any] | None = None,
                 *, method: str = "Nelder-Mead"):
        if (m := canonical_name(method)) in HESSIAN_METHODS:
            raise ValueError(f"scipy method {method!r} needs a Hessian, which the fit does not "
                             "provide; use trust-constr, Newton-CG or BFGS")
        if fun is None:
            raise ValueError(f"optimizer {method!r} needs a loss function fun(theta) -> (loss, grad)")
        self._method, self.name = m, (f"scipy:{method}" if m in OWN_STEPPERS else method)
        self._init_threaded(x0, options, Memo(fun, size=8, fg=True))

    @classmethod
    def from_state(cls, fun: LossFn | None, state: Mapping[str, Any],
                   options: Mapping[str, Any] | None = None) -> "ScipyStepper":
        method = load_value(state["name"]).split(":", 1)[-1]
        self = cls(fun, load_value(state["x"]), options, method=method)
        self._load_state(state)
        return self

    def _make_target(self) -> Target:
        method, evals, x0, opts = self._method, self._evals, self._x.copy(), dict(self._options)
        kwargs = {k: opts.pop(k) for k in ("bounds", "constraints") if k in opts}
        opts = {k: v for k, v in opts.items() if k not in ("gtol", "maxiter")
                or k in _method_options(method)}
        if "maxiter" in opts:
            opts["maxiter"] = self._remaining()
        uses_grad = method in GRADIENT_METHODS

        def target(hs: _Handshake) -> tuple[_Point, bool, str]:
            def f(x: np.ndarray) -> Any:
                hs.checkpoint()
                val, g = evals(x)
                return (val, g.copy()) if uses_grad else val

            def point(x: np.ndarray, loss: float = math.nan) -> _Point:
                if (hit := evals.get(x)) is None:
                    return _Point(np.array(x, dtype=float), loss, math.nan)
                return _Point(np.array(x, dtype=float), hit[0], float(np.linalg.norm(hit[1], np.inf)))

            def callback(intermediate_result: Any) -> None:  # TNC passes x instead
                r = intermediate_result
                hs.iteration_done(point(r) if isinstance(r, np.ndarray) else point(r.x, float(r.fun)))

            res = minimize(f, x0, jac=True if uses_grad else None, method=method, options=opts,
                           callback=callback, **kwargs)
            return point(res.x, float(res.fun)), bool(res.success), str(res.message)

        return target


class LeastSquaresStepper(_ThreadedStepper):
    """``scipy.optimize.least_squares`` (trf, dogbox, lm) on ``residuals``, loss = Σr².

    ``jac_t(theta, y) = Jᵀy`` is required; ``jvp(theta, v) = J v`` optional (else a central finite
    difference of the residuals, step 1e-6·max(1, |θ|)/|v|). trf / dogbox use a LinearOperator
    Jacobian with ``tr_solver='lsmr'``; lm builds the dense Jacobian column by column. As in
    pacemaker, maxiter becomes ``max_nfev`` and ftol defaults to 1e-8. loss and grad_norm refer to
    Σr² (twice scipy's cost); n_evals counts residual evaluations.
    """

    def __init__(self, fun: LossFn | None, x0: np.ndarray, options: Mapping[str, Any] | None = None,
                 *, method: str = "trf", residuals: ResidualFn | None = None,
                 jac_t: ProductFn | None = None, jvp: ProductFn | None = None):
        if (method := canonical_name(method)) not in ("trf", "dogbox", "lm"):
            raise ValueError(f"least-squares method must be trf, dogbox or lm, got {method!r}")
        if residuals is None or jac_t is None:
            raise ValueError(f"optimizer {method!r} needs residuals(theta) and jac_t(theta, y)")
        self.name, self._jac_t, self._jvp = method, jac_t, jvp
        self._init_threaded(x0, options, Memo(lambda x: np.array(residuals(x), dtype=float).ravel()))
        if unknown := sorted(set(self._options) - LSQ_OPTIONS - IGNORED_OPTIONS - {"maxiter"}):
            warnings.warn(f"optimizer {method}: ignoring unsupported option(s) {unknown}", stacklevel=2)
        r0 = self._evals(self._x)
        self._f, m, n = float(r0 @ r0), r0.size, self._x.size
        if method == "lm" and m < n:
            raise ValueError(f"optimizer 'lm' needs at least as many residuals as parameters "
                             f"({m} residuals < {n} parameters); use 'trf'")
        if method == "lm" and m * n > MAX_DENSE_JACOBIAN:
            raise ValueError(f"optimizer 'lm' would build a dense {m} x {n} Jacobian ({m * n:.3g} "
                             f"entries > {MAX_DENSE_JACOBIAN:.0e}); use 'trf'")

    @classmethod
    def from_state(cls, fun: LossFn | None, state: Mapping[str, Any],
                   options: Mapping[str, Any] | None = None, *, residuals: ResidualFn | None = None,
                   jac_t: ProductFn | None = None, jvp: ProductFn | None = None
                   ) -> "LeastSquaresStepper":
        self = cls(fun, load_value(state["x"]), options, method=load_value(state["name"]),
                   residuals=residuals, jac_t=jac_t, jvp=jvp)
        self._load_state(state)
        return self

    def set_x(self, x: np.ndarray) -> None:
        super().set_x(x)
        r = self._evals(self._x)
        self._f = float(r @ r)

    def _make_target(self) -> Target:
        method, res_fn, jac_t, jvp, x0 = self.name, self._evals, self._jac_t, self._jvp, self._x.copy()
        m, n = res_fn(x0).size, x0.size
        opts = {"ftol": 1e-8, **{k: v for k, v in self._options.items() if k in LSQ_OPTIONS}}
        if (left := self._remaining()) is not None:
            opts.setdefault("max_nfev", max(left, 1))
        grads = Memo(None, size=8)  # x -> 2 Jᵀr, where the solver computed Jᵀr

        def matvec(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            if jvp is not None:
                return np.asarray(jvp(x, v), dtype=float).ravel()
            if (vn := float(np.linalg.norm(v))) == 0.0:
                return np.zeros(m)
            h = 1e-6 * max(1.0, float(np.linalg.norm(x))) / vn
            return (res_fn(x + h * v) - res_fn(x - h * v)) / (2.0 * h)

        def point(x: np.ndarray) -> _Point:
            r, g = res_fn(x), grads.get(x)
            return _Point(np.array(x, dtype=float), float(r @ r),
                          math.nan if g is None else float(np.linalg.norm(g, np.inf)))

        def target(hs: _Handshake) -> tuple[_Point, bool, str]:
            last = [x0]

            def rfun(x: np.ndarray) -> np.ndarray:
                hs.checkpoint()
                return res_fn(x)

            def jac_operator(x: np.ndarray) -> LinearOperator:
                hs.checkpoint()
                xc, r = np.array(x, dtype=float), res_fn(x)

                def rmatvec(y: np.ndarray) -> np.ndarray:
                    out = np.asarray(jac_t(xc, np.ravel(y).astype(float)), dtype=float).ravel()
                    if np.array_equal(y, r):
                        grads.put(xc, 2.0 * out)
                    return out

                return LinearOperator((m, n), matvec=lambda v: matvec(xc, np.ravel(v)),
                                      rmatvec=rmatvec, dtype=float)

            def jac_dense(x: np.ndarray) -> np.ndarray:
                xc, J, e = np.array(x, dtype=float), np.empty((m, n)), np.zeros(n)
                for j in range(n):
                    e[j] = 1.0
                    J[:, j] = matvec(xc, e)
                    e[j] = 0.0
                grads.put(xc, 2.0 * (J.T @ res_fn(xc)))
                if not np.array_equal(xc, last[0]):  # a new point: the previous iteration ended
                    last[0] = xc
                    hs.iteration_done(point(xc))
                hs.checkpoint()
                return J

            if method == "lm":
                res = least_squares(rfun, x0, jac=jac_dense, method="lm", **opts)
                if not np.array_equal(res.x, last[0]):
                    hs.iteration_done(point(res.x))
            else:
                res = least_squares(rfun, x0, jac=jac_operator, method=method, tr_solver="lsmr",
                                    callback=lambda intermediate_result:
                                    hs.iteration_done(point(intermediate_result.x)), **opts)
            final = _Point(np.array(res.x, dtype=float), 2.0 * float(res.cost),
                           2.0 * float(np.linalg.norm(res.grad, np.inf)))
            return final, bool(res.status > 0), str(res.message)

        return target
