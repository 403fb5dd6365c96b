"""Steppable optimizers (paceui.fit.optim): convergence, scipy agreement,
state round trips, threaded stepping (once per iteration, clean close, no leaked threads)."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np
import pytest
from scipy.optimize import least_squares, minimize, rosen, rosen_der

from paceui.fit.optim import (
    AdamStepper,
    BFGSStepper,
    CGStepper,
    LBFGSStepper,
    LeastSquaresStepper,
    ScipyStepper,
    SGDStepper,
    StepInfo,
    Stepper,
    load_value,
    make_stepper,
    pacemaker_options,
)


def restore_stepper(state, fun, options, maxiter, **kw) -> Stepper:
    """Continue a saved run the way the engine does (optimizer name taken from the state)."""
    return make_stepper(load_value(state["name"]), fun, None, options, maxiter, state=state, **kw)

pytestmark = pytest.mark.timeout(60)


# ----------------------------------------------------------------------------- problems

def rosen_fun(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(rosen(x)), rosen_der(x)


def rosen_x0(n: int) -> np.ndarray:
    x0 = np.full(n, -1.0)
    x0[0] = -1.2
    return x0


def rosen_residuals(x: np.ndarray) -> np.ndarray:
    """Rosenbrock as a sum of squares: Σ r² == rosen(x)."""
    return np.concatenate([10.0 * (x[1:] - x[:-1] ** 2), 1.0 - x[:-1]])


def rosen_jac(x: np.ndarray) -> np.ndarray:
    n = x.size
    J = np.zeros((2 * (n - 1), n))
    i = np.arange(n - 1)
    J[i, i] = -20.0 * x[:-1]
    J[i, i + 1] = 10.0
    J[n - 1 + i, i] = -1.0
    return J


def quadratic(n: int = 8, seed: int = 3) -> tuple[Callable, np.ndarray, np.ndarray]:
    """Random convex quadratic ½xᵀAx − bᵀx (condition number 100), its x0 and minimiser."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(np.geomspace(1.0, 100.0, n)) @ Q.T
    b = rng.standard_normal(n)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        Ax = A @ x
        return float(0.5 * x @ Ax - b @ x), Ax - b

    return fun, rng.standard_normal(n), np.linalg.solve(A, b)


def run(st: Stepper, max_steps: int = 100_000) -> tuple[StepInfo, int]:
    """Step until converged; returns the last info and the number of step() calls."""
    for k in range(1, max_steps + 1):
        info = st.step()
        if info.converged:
            return info, k
    raise AssertionError(f"{st.name} did not stop within {max_steps} steps")


# ----------------------------------------------------------------------------- convergence

# With each method's default stopping rule (what a user gets) on Rosenbrock, which is not convex, so no stop rule
# bounds the error: the tolerances are the errors measured with numpy 2.4.6 / scipy 1.17.1 (identical with 1
# and 2 threads: nothing here is threaded) times a margin of ≥ 10, except SGD (5×), whose error is that of a
# fixed arithmetic sequence (maxiter steps of lr 1e-3, no stopping test that a library change could move).
# name, options, maxiter, tolerance on max|x − 1|
CASES = [
    ("BFGS", None, 2000, 1e-7),        # measured 1.1e-10 (n=2), 3.6e-11 (n=10)
    ("L-BFGS-B", None, 2000, 1e-5),    # 1.9e-7, 8.0e-7: the scipy-like ftol stop ends early (scipy: 2.8e-5)
    ("CG", None, 5000, 1e-6),          # 2.2e-8, 2.6e-9
    ("Adam", {"learning_rate": 3e-3}, 20000, 1e-3),  # 1.9e-8, 1.6e-6
    ("SGD", None, 20000, 1e-3),        # 2.1e-4, 5.7e-5 (lr 1e-3, pacemaker's default)
    ("Powell", {"xtol": 1e-10, "ftol": 1e-14}, 2000, 1e-6),  # 3.3e-13, 3.7e-12
    ("trust-constr", None, 2000, 1e-6),  # 3.9e-12, 2.9e-12
    ("TNC", None, 2000, 1e-4),         # 3.4e-6, 3.6e-7 (TNC's own f-change stop)
    ("scipy:BFGS", None, 2000, 1e-7),  # 1.4e-11, 4.9e-11
]


@pytest.mark.parametrize("name, options, maxiter, tol_rosen", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("n", [2, 10])
def test_minimises_rosenbrock(name: str, options: dict | None, maxiter: int, tol_rosen: float, n: int) -> None:
    with make_stepper(name, rosen_fun, rosen_x0(n), options, maxiter) as st:
        info, _ = run(st)
        assert np.abs(st.x - 1.0).max() < tol_rosen, (info, st.x)
        assert info.loss == pytest.approx(rosen(st.x), abs=1e-12)
        assert info.loss < 1e-5


# On the quadratic ½xᵀAx − bᵀx the error is exactly x − x* = A⁻¹ g(x), so a stop on the gradient bounds it:
# max|x − x*| ≤ ‖A⁻¹‖₂ ‖g‖₂ ≤ √n · ‖g‖∞ / λ_min(A). Each method gets its stopping rule explicitly, the other
# stops switched off, so the bound follows from the options the test sets, not from one machine's run.
# name, options (the stop rule), gtol of that rule on ‖g‖∞ (None: derivative-free), maxiter
QUAD_STOPS = [
    ("BFGS", {"gtol": 1e-7}, 1e-7, 2000),                          # ‖g‖∞ ≤ gtol
    ("L-BFGS-B", {"gtol": 1e-7, "ftol": 0.0}, 1e-7, 2000),        # ftol stop off
    ("CG", {"gtol": 1e-7}, 1e-7, 5000),
    ("Adam", {"learning_rate": 3e-3, "gtol": 1e-6}, 1e-6, 50000),  # Adam's default gtol is 0 (runs to maxiter)
    ("SGD", {"gtol": 1e-6}, 1e-6, 50000),                          # lr 1e-3 < 2/λ_max: converges linearly
    ("trust-constr", {"gtol": 1e-7, "xtol": 0.0}, 1e-7, 2000),     # ‖∇L‖∞ ≤ gtol (unconstrained: ∇L = g)
    # TNC: ‖pg‖₂ ≤ gtol on unscaled variables (scale 1, offset 0); its f and x stops off. TNC's Hessian products
    # are finite differences (~√ε accurate), so gtol stays ≥ 1e-6 (at 1e-7 its line search fails first).
    ("TNC", {"gtol": 1e-6, "ftol": 0.0, "xtol": 0.0, "scale": np.ones(8), "offset": np.zeros(8), "maxfun": 100_000},
     1e-6, 2000),
    ("scipy:BFGS", {"gtol": 1e-7}, 1e-7, 2000),                    # scipy's BFGS: ‖g‖∞ (norm=inf) ≤ gtol
    # derivative-free: Powell stops on relative changes of f and x, which bound no error; measured error
    # 2.1e-8 (numpy 2.4 / scipy 1.17, 1 and 2 threads alike: no threaded code here); asserted with 50× margin.
    ("Powell", {"xtol": 1e-10, "ftol": 1e-14}, None, 2000),
]
QUAD_LAMBDA_MIN = 1.0  # quadratic(): eigenvalues geomspace(1, 100)


@pytest.mark.parametrize("name, options, gtol, maxiter", QUAD_STOPS, ids=[c[0] for c in QUAD_STOPS])
def test_minimises_quadratic(name: str, options: dict, gtol: float | None, maxiter: int) -> None:
    fun, x0, xstar = quadratic()
    with make_stepper(name, fun, x0, options, maxiter) as st:
        info, _ = run(st)
        assert info.success, info
        err = np.abs(st.x - xstar).max()
        if gtol is None:
            assert err < 1e-6
            return
        g = fun(st.x)[1]
        assert np.abs(g).max() <= gtol, (info, np.abs(g).max())  # the stop it was given is the one that held
        assert err <= np.sqrt(x0.size) * gtol / QUAD_LAMBDA_MIN, err


def test_nelder_mead_2d() -> None:
    with make_stepper("Nelder-Mead", rosen_fun, rosen_x0(2), None, 2000) as st:
        info, steps = run(st)
    assert info.success and steps == info.iteration
    assert np.abs(st.x - 1.0).max() < 1e-4


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
@pytest.mark.parametrize("n", [2, 10])
def test_least_squares_rosenbrock(method: str, n: int) -> None:
    st = make_stepper(method, None, rosen_x0(n), None, 500, residuals=rosen_residuals,
                      jac_t=lambda x, y: rosen_jac(x).T @ y, jvp=lambda x, v: rosen_jac(x) @ v)
    assert isinstance(st, LeastSquaresStepper)
    info, _ = run(st)
    st.close()
    assert info.success, info
    assert np.abs(st.x - 1.0).max() < 1e-6
    assert info.loss == pytest.approx(rosen(st.x), abs=1e-14)


def test_bfgs_agrees_with_scipy_on_quadratic() -> None:
    fun, x0, xstar = quadratic(n=12, seed=7)
    ref_iterates: list[np.ndarray] = []
    ref = minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-8},
                   callback=lambda intermediate_result: ref_iterates.append(intermediate_result.x.copy()))
    st = BFGSStepper(fun, x0, {"gtol": 1e-8})
    ours: list[np.ndarray] = []
    while not st.converged:
        st.step()
        ours.append(st.x)
    info = st.info()
    assert info.success and info.message == "gradient norm below gtol"
    assert np.abs(st.x - ref.x).max() < 1e-8
    assert np.abs(st.x - xstar).max() < 1e-8
    # same algorithm (H0 = I, eq. 3.60 first trial step); measured: iterates equal to ~1e-14,
    # 19 iterations / 26 evaluations for both. Asserted loosely:
    k = min(len(ours), len(ref_iterates), 10)
    assert np.abs(np.array(ours[:k]) - np.array(ref_iterates[:k])).max() < 1e-6
    assert abs(info.iteration - ref.nit) <= max(3, ref.nit // 5), (info.iteration, ref.nit)
    assert info.n_evals <= ref.nfev + max(5, ref.nfev // 2), (info.n_evals, ref.nfev)


def test_bfgs_scaled_initial_hessian_option() -> None:
    fun, x0, xstar = quadratic()
    st = BFGSStepper(fun, x0, {"gtol": 1e-8, "scale_init": True})
    st.step()
    st.step()
    H = st.state()["H"]
    assert H.shape == (8, 8) and np.allclose(H, H.T)
    info, _ = run(st)
    assert info.success and np.abs(st.x - xstar).max() < 1e-8


def test_pacemaker_option_defaults() -> None:
    assert pacemaker_options("BFGS", None, 77) == {"gtol": 1e-8, "maxiter": 77}
    assert pacemaker_options("BFGS", {"c2": 0.8}, 5) == {"c2": 0.8, "gtol": 1e-5, "maxiter": 5}
    assert pacemaker_options("Adam", {"learning_rate": 0.1, "maxiter": 3}, 9) == \
        {"learning_rate": 0.1, "maxiter": 9}
    st = make_stepper("L-BFGS-B", rosen_fun, rosen_x0(4), {}, 10)
    assert st.cfg.gtol == 1e-5 and st.cfg.maxiter == 10 and st.cfg.ftol > 0


def test_maxiter_stops_own_stepper() -> None:
    st = make_stepper("BFGS", rosen_fun, rosen_x0(10), None, 5)
    info, steps = run(st)
    assert steps == 5 and info.iteration == 5 and not info.success
    assert info.message == "maximum number of iterations reached"
    n = info.n_evals
    assert st.step() == info and st.info().n_evals == n  # no-op once stopped


# ----------------------------------------------------------------------------- state round trip

ROUND_TRIP = [("BFGS", None), ("L-BFGS-B", None), ("CG", None),
              ("Adam", {"learning_rate": 3e-3}), ("SGD", {"momentum": 0.5})]


@pytest.mark.parametrize("name, options", ROUND_TRIP, ids=[c[0] for c in ROUND_TRIP])
def test_state_round_trip_bit_identical(name: str, options: dict | None, tmp_path) -> None:
    N, M = 7, 11
    x0 = rosen_x0(10)
    one = make_stepper(name, rosen_fun, x0, options, 1000)
    for _ in range(N + M):
        one.step()
    first = make_stepper(name, rosen_fun, x0, options, 1000)
    for _ in range(N):
        first.step()
    np.savez(tmp_path / "state.npz", **first.state())
    del first
    with np.load(tmp_path / "state.npz") as data:
        second = restore_stepper(data, rosen_fun, options, 1000)
    assert type(second) is type(one)
    for _ in range(M):
        info = second.step()
    assert not info.converged
    assert np.array_equal(second.x, one.x)
    assert second.loss == one.loss
    assert info == one.info()
    for k, v in one.state().items():
        assert np.array_equal(np.asarray(second.state()[k]), np.asarray(v)), k


def test_from_state_rejects_other_optimizer() -> None:
    st = BFGSStepper(rosen_fun, rosen_x0(3), None)
    with pytest.raises(ValueError, match="BFGS"):
        CGStepper.from_state(rosen_fun, st.state(), None)


# ----------------------------------------------------------------------------- set_x

def test_set_x_resets_memory_and_continues() -> None:
    fun, x0, xstar = quadratic()
    st = make_stepper("BFGS", fun, x0, None, 500)
    run(st)
    assert st.state()["H"].size > 0
    st.set_x(x0 + 1.0)
    info = st.info()
    assert not info.converged and info.iteration == 0 and st.state()["H"].size == 0
    assert info.loss == fun(x0 + 1.0)[0]
    run(st)
    assert np.abs(st.x - xstar).max() < 1e-8

    adam = AdamStepper(fun, x0, {"learning_rate": 0.01})
    for _ in range(5):
        adam.step()
    adam.set_x(x0)
    s = adam.state()
    assert s["t"] == 0 and not s["m"].any() and not s["v"].any()

    lb = LBFGSStepper(fun, x0, None)
    for _ in range(5):
        lb.step()
    lb.set_x(x0)
    assert lb.state()["S"].shape == (0, x0.size)


def test_set_x_threaded() -> None:
    start = threading.active_count()
    fun, x0, xstar = quadratic()
    st = make_stepper("scipy:BFGS", fun, x0, None, 500)
    for _ in range(3):
        st.step()
    st.set_x(x0 - 1.0)
    assert threading.active_count() == start  # old worker stopped
    assert st.info().iteration == 0 and not st.converged
    run(st)
    st.close()
    assert np.abs(st.x - xstar).max() < 1e-7
    assert threading.active_count() == start


# ----------------------------------------------------------------------------- threaded steppers

def close_with_timeout(st: Stepper, timeout: float = 10.0) -> None:
    t = threading.Thread(target=st.close)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "close() hung"


@pytest.mark.parametrize("method", ["BFGS", "Powell", "Nelder-Mead", "TNC"])
def test_scipy_stepper_once_per_iteration(method: str) -> None:
    start = threading.active_count()
    x0 = rosen_x0(2)
    opts = pacemaker_options(method, None, 1000)
    calls = []
    jac = True if method in ("BFGS", "TNC") else None
    f = rosen_fun if jac else rosen
    ref_opts = {k: v for k, v in opts.items() if not (method == "TNC" and k == "maxiter")}
    if method in ("Powell", "Nelder-Mead"):
        ref_opts.pop("gtol")
    ref = minimize(f, x0, jac=jac, method=method, options=ref_opts,
                   callback=lambda xk: calls.append(np.array(xk)))
    st = ScipyStepper(rosen_fun, x0, opts, method=method)
    assert st.name == ("scipy:BFGS" if method == "BFGS" else method)
    infos = []
    while not st.converged:
        infos.append(st.step())
    assert [i.iteration for i in infos] == list(range(1, len(calls) + 1))
    assert np.array_equal(st.x, ref.x)
    for info, xk in zip(infos[:-1], calls):
        assert info.loss == pytest.approx(rosen(xk), rel=1e-12, abs=1e-300)
    assert infos[-1].success == ref.success
    assert threading.active_count() == start


def test_scipy_stepper_close_early_and_resume(tmp_path) -> None:
    start = threading.active_count()
    st = make_stepper("Nelder-Mead", rosen_fun, rosen_x0(2), None, 2000)
    for _ in range(5):
        info = st.step()
    assert info.iteration == 5 and not info.converged
    assert threading.active_count() == start + 1
    close_with_timeout(st)
    assert threading.active_count() == start
    st.close()  # idempotent
    info = st.step()  # the run is over: no new worker
    assert info.converged and not info.success and info.message == "stopped"
    assert info.iteration == 5 and threading.active_count() == start
    np.savez(tmp_path / "s.npz", **st.state())
    with np.load(tmp_path / "s.npz") as data:
        st2 = restore_stepper(data, rosen_fun, None, 2000)
    assert st2.info().iteration == 5 and np.array_equal(st2.x, st.x)
    info, _ = run(st2)  # restarts scipy from x (not bit-identical, but converges)
    assert info.success and np.abs(st2.x - 1.0).max() < 1e-4
    assert threading.active_count() == start


def test_scipy_stepper_close_before_start_and_maxiter() -> None:
    start = threading.active_count()
    st = make_stepper("Powell", rosen_fun, rosen_x0(10), None, 3)
    close_with_timeout(st)
    info = st.step()
    assert info.converged and info.message == "stopped" and info.n_evals == 0
    assert threading.active_count() == start
    st = make_stepper("Powell", rosen_fun, rosen_x0(10), None, 3)
    info, steps = run(st)
    assert steps == 3 and info.iteration == 3 and info.message.lower().startswith("maximum")
    assert threading.active_count() == start  # worker ended itself at maxiter


def test_scipy_stepper_close_from_other_thread_during_slow_fun() -> None:
    start = threading.active_count()

    def slow(x: np.ndarray) -> tuple[float, np.ndarray]:
        time.sleep(0.02)
        return rosen_fun(x)

    st = make_stepper("Powell", slow, rosen_x0(4), None, 1000)
    results: list[StepInfo] = []

    def loop() -> None:
        while not st.converged:
            results.append(st.step())

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.3)
    close_with_timeout(st)
    t.join(10)
    assert not t.is_alive()
    assert results[-1].converged and not results[-1].success
    assert threading.active_count() == start


def test_scipy_stepper_garbage_collected_without_close() -> None:
    import gc
    start = threading.active_count()
    st = make_stepper("Powell", rosen_fun, rosen_x0(4), None, 1000)
    st.step()
    assert threading.active_count() == start + 1
    del st
    gc.collect()
    deadline = time.monotonic() + 10
    while threading.active_count() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == start


def test_scipy_stepper_propagates_errors() -> None:
    start = threading.active_count()
    n = [0]

    def bad(x: np.ndarray) -> tuple[float, np.ndarray]:
        n[0] += 1
        if n[0] > 10:
            raise FloatingPointError("boom")
        return rosen_fun(x)

    st = ScipyStepper(bad, rosen_x0(3), {"maxiter": 100}, method="CG")
    with pytest.raises(FloatingPointError, match="boom"):
        run(st)
    assert st.converged and not st.info().success
    assert threading.active_count() == start


# ----------------------------------------------------------------------------- least squares

T = np.linspace(0.0, 2.0, 40)
Y = 2.0 * np.exp(-1.3 * T) + 0.1 + 0.01 * np.random.default_rng(0).standard_normal(T.size)


def exp_res(p: np.ndarray) -> np.ndarray:
    return p[0] * np.exp(p[1] * T) + p[2] - Y


def exp_jac(p: np.ndarray) -> np.ndarray:
    e = np.exp(p[1] * T)
    return np.stack([e, p[0] * T * e, np.ones_like(T)], axis=1)


EXP_X0 = np.array([1.0, -0.5, 0.5])


@pytest.fixture(scope="module")
def exp_reference() -> np.ndarray:
    ref = least_squares(exp_res, EXP_X0, jac=exp_jac, method="lm", ftol=1e-14, xtol=1e-14,
                        gtol=1e-14)
    return ref.x


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
@pytest.mark.parametrize("with_jvp", [True, False], ids=["jvp", "fd"])
def test_least_squares_exponential_fit(method: str, with_jvp: bool,
                                       exp_reference: np.ndarray) -> None:
    start = threading.active_count()
    jvp = (lambda p, v: exp_jac(p) @ v) if with_jvp else None
    st = make_stepper(method, None, EXP_X0, None, 200, residuals=exp_res,
                      jac_t=lambda p, y: exp_jac(p).T @ y, jvp=jvp)
    info, steps = run(st)
    assert info.success, info
    assert np.allclose(st.x, exp_reference, rtol=1e-5, atol=1e-6), st.x - exp_reference
    r = exp_res(st.x)
    assert info.loss == pytest.approx(r @ r, rel=1e-12)
    assert info.grad_norm < 1e-5
    assert steps - 1 <= info.iteration <= steps
    assert threading.active_count() == start


def test_least_squares_once_per_iteration_trf() -> None:
    jt = lambda p, y: exp_jac(p).T @ y  # noqa: E731
    from scipy.sparse.linalg import LinearOperator
    seen = []

    def jac(p: np.ndarray) -> LinearOperator:
        J = exp_jac(p)
        return LinearOperator(J.shape, matvec=lambda v: J @ v, rmatvec=lambda v: J.T @ v,
                              dtype=float)

    ref = least_squares(exp_res, EXP_X0, jac=jac, method="trf", tr_solver="lsmr", ftol=1e-8,
                        max_nfev=200, callback=lambda intermediate_result:
                        seen.append(intermediate_result.x.copy()))
    st = LeastSquaresStepper(None, EXP_X0, {"maxiter": 200}, method="trf", residuals=exp_res,
                             jac_t=jt, jvp=lambda p, v: exp_jac(p) @ v)
    infos = []
    while not st.converged:
        infos.append(st.step())
    assert [i.iteration for i in infos] == list(range(1, len(seen) + 1))
    assert np.allclose(st.x, ref.x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["trf", "lm"])
def test_least_squares_close_early(method: str) -> None:
    start = threading.active_count()
    st = make_stepper(method, None, rosen_x0(10), None, 500, residuals=rosen_residuals,
                      jac_t=lambda x, y: rosen_jac(x).T @ y)
    for k in range(3):
        assert st.step().iteration == k + 1
    assert threading.active_count() == start + 1
    close_with_timeout(st)
    assert threading.active_count() == start
    x = st.x
    st.set_x(x)  # restart from where it stopped
    info, _ = run(st)
    st.close()
    assert info.success and np.abs(st.x - 1.0).max() < 1e-6
    assert threading.active_count() == start


# ----------------------------------------------------------------------------- errors

def test_unknown_optimizer_name() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'Newton-Raphson'.*BFGS.*L-BFGS-B.*trf"):
        make_stepper("Newton-Raphson", rosen_fun, rosen_x0(2), None, 10)


def test_lbfgs_bounds_rejected() -> None:
    with pytest.raises(ValueError, match="bounds"):
        make_stepper("L-BFGS-B", rosen_fun, rosen_x0(2), {"bounds": [(-1, 1)] * 2}, 10)
    with pytest.raises(ValueError, match="bounds"):
        LBFGSStepper(rosen_fun, rosen_x0(2), {"bounds": [(-1, 1)] * 2})


def test_least_squares_errors() -> None:
    with pytest.raises(ValueError, match="residuals"):
        make_stepper("trf", rosen_fun, rosen_x0(2), None, 10)
    big = lambda x: np.zeros(600_000)  # noqa: E731
    with pytest.raises(ValueError, match="600000 x 100"):
        make_stepper("lm", None, np.zeros(100), None, 10, residuals=big,
                     jac_t=lambda x, y: np.zeros(100))
    with pytest.raises(ValueError, match="at least as many residuals"):
        make_stepper("lm", None, np.zeros(5), None, 10, residuals=lambda x: np.zeros(3),
                     jac_t=lambda x, y: np.zeros(5))


def test_hessian_methods_rejected() -> None:
    with pytest.raises(ValueError, match="Hessian"):
        make_stepper("dogleg", rosen_fun, rosen_x0(2), None, 10)


def test_sgd_default_learning_rate() -> None:
    fun, x0, _ = quadratic()
    st = SGDStepper(fun, x0, None)
    g = fun(x0)[1]
    st.step()
    assert np.array_equal(st.x, x0 - 1e-3 * g)


def test_threaded_resume_after_maxiter_with_larger_budget() -> None:
    start = threading.active_count()
    st = make_stepper("Powell", rosen_fun, rosen_x0(4), None, 3)
    info, _ = run(st)
    assert info.message == "maximum number of iterations reached" and not info.success
    st2 = restore_stepper(st.state(), rosen_fun, None, 2000)
    assert st2.info().iteration == 3 and not st2.converged
    info2, _ = run(st2)
    assert info2.success and info2.iteration > 3 and np.abs(st2.x - 1.0).max() < 1e-5
    assert threading.active_count() == start


def test_names_and_reexports() -> None:
    import paceui.fit.optim as O
    assert O.ScipyStepper is ScipyStepper and O.LeastSquaresStepper is LeastSquaresStepper
    assert make_stepper("scipy:BFGS", rosen_fun, rosen_x0(2), None, 5).name == "scipy:BFGS"
    assert make_stepper("nelder-mead", rosen_fun, rosen_x0(2), None, 5).name == "nelder-mead"
    assert isinstance(make_stepper("lbfgs", rosen_fun, rosen_x0(2), None, 5), LBFGSStepper)
    with pytest.raises(ValueError, match="bounds"):
        make_stepper("BFGS", rosen_fun, rosen_x0(2), {"bounds": [(-1, 1)] * 2}, 10)
    with pytest.warns(UserWarning, match="ignoring unsupported option"):
        make_stepper("BFGS", rosen_fun, rosen_x0(2), {"frobnicate": 1}, 10)


def test_least_squares_state_restore(tmp_path, exp_reference: np.ndarray) -> None:
    kw = dict(residuals=exp_res, jac_t=lambda p, y: exp_jac(p).T @ y)
    st = make_stepper("dogbox", None, EXP_X0, None, 200, **kw)
    for _ in range(2):
        st.step()
    st.close()
    np.savez(tmp_path / "lsq.npz", **st.state())
    with np.load(tmp_path / "lsq.npz") as data:
        st2 = restore_stepper(data, None, None, 200, **kw)
    assert isinstance(st2, LeastSquaresStepper) and st2.info().iteration == 2
    assert np.array_equal(st2.x, st.x)
    info, _ = run(st2)
    st2.close()
    assert info.success and np.allclose(st2.x, exp_reference, rtol=1e-5, atol=1e-6)


def test_bfgs_takes_a_stiff_first_step():
    """A direction ~1e12 stiffer than the loss (a new rank-5 function of a ladder step) needs α ~ 1e-13."""
    from paceui.fit.optim import make_stepper

    scale = np.array([1e12, 1.0, 1.0])

    def fun(x):
        r = x - np.array([1e-7, 1.0, -2.0])
        return float(np.sum(scale * r * r)) + 1e-6, 2.0 * scale * r

    st = make_stepper("BFGS", fun, np.zeros(3), None, 50)
    f0 = st.loss
    info = st.step()
    assert info.loss < f0 and info.n_evals < 30
    for _ in range(49):
        info = st.step()
        if st.converged:
            break
    np.testing.assert_allclose(st.x, [1e-7, 1.0, -2.0], rtol=1e-5, atol=1e-12)
