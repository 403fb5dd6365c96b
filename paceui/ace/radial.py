"""Radial basis g_k(r), inner/outer cutoffs, core repulsion and embeddings (docs/model.md (M2)–(M10), (M20)–(M25)).

All functions are scalar numba kernels (nopython, nogil, cached, float64) that fill caller-owned
arrays, so the evaluator can call them per neighbour without allocating. r in Å, energies in eV.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace.potential import EMBEDDINGS, INNER_CUTOFF_TYPES, RADIAL_BASES

# The kernels' integer codes: the position of the name in the one list of names (paceui/ace/potential.py).
RADBASE_CODES = {name: i for i, name in enumerate(RADIAL_BASES)}
INNER_CODES = {name: i for i, name in enumerate(INNER_CUTOFF_TYPES)}
NPOTI_CODES = {name: i for i, name in enumerate(EMBEDDINGS)}
RB_CHEBEXPCOS, RB_CHEBPOW = RADBASE_CODES["ChebExpCos"], RADBASE_CODES["ChebPow"]
RB_CHEBLINEAR, RB_SBESSEL = RADBASE_CODES["ChebLinear"], RADBASE_CODES["SBessel"]
INNER_DENSITY, INNER_DISTANCE, INNER_ZBL = INNER_CODES["density"], INNER_CODES["distance"], INNER_CODES["zbl"]
FS_SHIFTED_SCALED, FS_PLAIN = NPOTI_CODES["FinnisSinclairShiftedScaled"], NPOTI_CODES["FinnisSinclair"]

_JIT = dict(nogil=True, cache=True)
ZBL_K = 14.399645351950543  # e²/(4πε0) in eV·Å
_ZBL_C = (0.18175, 0.50986, 0.28022, 0.02817)
_ZBL_D = (-3.19980, -0.94229, -0.40290, -0.20162)


# docs/model.md (M9)
@nb.njit(**_JIT)
def poly_switch(r: float, r_in: float, delta: float) -> tuple[float, float]:
    """Smooth step: 1 for r <= r_in - delta, 0 for r >= r_in; returns (value, d/dr)."""
    if r <= r_in - delta:
        return 1.0, 0.0
    if r >= r_in:
        return 0.0, 0.0
    x = 1.0 - 2.0 * (1.0 + (r - r_in) / delta)
    x2 = x * x
    v = 0.5 + 3.75 * (x / 4.0 - x * x2 / 6.0 + x2 * x2 * x / 20.0)
    d = -7.5 / delta * (0.25 - x2 / 2.0 + x2 * x2 / 4.0)
    return v, d


# docs/model.md (M2)
@nb.njit(**_JIT)
def _cheb(x: float, nk: int, T: np.ndarray, dT: np.ndarray) -> None:
    """Chebyshev T_0..T_{nk-1}(x) and their derivatives n·U_{n-1}(x)."""
    t0, t1 = 1.0, x
    u0, u1 = 1.0, 2.0 * x
    for n in range(nk):
        if n == 0:
            T[0] = 1.0
            dT[0] = 0.0
        elif n == 1:
            T[1] = x
            dT[1] = 1.0
        else:
            t2 = 2.0 * x * t1 - t0
            t0, t1 = t1, t2
            T[n] = t2
            dT[n] = n * u1
            u2 = 2.0 * x * u1 - u0
            u0, u1 = u1, u2


@nb.njit(**_JIT)
def _sinc(z: float) -> tuple[float, float]:
    if abs(z) < 1e-12:
        return 1.0, 0.0
    s, c = math.sin(z), math.cos(z)
    return s / z, (z * c - s) / (z * z)


@nb.njit(**_JIT)
def radial_basis(code: int, lam: float, rc: float, dc: float, r_in: float, delta_in: float,
                 inner: int, nk: int, r: float, g: np.ndarray, dg: np.ndarray, T: np.ndarray,
                 dT: np.ndarray) -> None:
    """Fill g[0:nk], dg[0:nk] with g_k(r) and dg_k/dr of one bond; zeros outside the cutoffs.

    T and dT are scratch arrays of length >= nk + 1 (no allocation per neighbour).
    """
    for k in range(nk):
        g[k] = 0.0
        dg[k] = 0.0
    if r >= rc or (inner != INNER_ZBL and r <= r_in - delta_in):
        return
    # docs/model.md (M3), (M4); the dc taper (M5) below
    if code == RB_CHEBEXPCOS:
        y1 = math.exp(-lam * r / rc)
        y2 = math.exp(-lam)
        x = 1.0 - 2.0 * (y1 - y2) / (1.0 - y2)
        dx = 2.0 * (lam / rc) * y1 / (1.0 - y2)
        _cheb(x, nk, T, dT)
        env = 0.5 * (1.0 + math.cos(math.pi * r / rc))
        denv = -0.5 * math.pi / rc * math.sin(math.pi * r / rc)
        for k in range(nk):
            if k == 0:
                v, d = 1.0, 0.0
            else:
                v, d = 0.5 * (1.0 - T[k]), -0.5 * dT[k] * dx
            g[k] = v * env
            dg[k] = d * env + v * denv
        if r > rc - dc:
            arg = math.pi * (r - (rc - dc)) / dc
            t = 0.5 * (1.0 + math.cos(arg))
            dt = -0.5 * math.pi / dc * math.sin(arg)
            for k in range(nk):
                dg[k] = dg[k] * t + g[k] * dt
                g[k] *= t
    # docs/model.md (M6), (M7)
    elif code == RB_CHEBPOW or code == RB_CHEBLINEAR:
        if code == RB_CHEBPOW:
            base = 1.0 - r / rc
            y = base ** lam
            x = 1.0 - 2.0 * y
            dx = 2.0 * lam / rc * base ** (lam - 1.0)
        else:
            x = 1.0 - r / rc
            dx = -1.0 / rc
        _cheb(x, nk + 1, T, dT)
        for k in range(nk):
            g[k] = 0.5 * (1.0 - T[k + 1])
            dg[k] = -0.5 * dT[k + 1] * dx
    # docs/model.md (M8)
    else:  # RB_SBESSEL
        pre = math.sqrt(2.0) * math.pi / rc ** 1.5
        d_prev = 1.0
        for n in range(nk):
            a1 = r * (n + 1) * math.pi / rc
            a2 = r * (n + 2) * math.pi / rc
            s1, ds1 = _sinc(a1)
            s2, ds2 = _sinc(a2)
            fac = (-1.0) ** n * pre * (n + 1) * (n + 2) / math.sqrt((n + 1) ** 2 + (n + 2) ** 2)
            fn = fac * (s1 + s2)
            dfn = fac * (ds1 * (n + 1) + ds2 * (n + 2)) * math.pi / rc
            if n == 0:
                g[0], dg[0] = fn, dfn
            else:
                e = n * n * (n + 2) ** 2 / (4.0 * (n + 1) ** 4 + 1.0)
                dn = 1.0 - e / d_prev
                q = math.sqrt(e / d_prev)
                g[n] = (fn + q * g[n - 1]) / math.sqrt(dn)
                dg[n] = (dfn + q * dg[n - 1]) / math.sqrt(dn)
                d_prev = dn
    # docs/model.md (M10)
    if inner == INNER_DISTANCE:  # g *= 1 - poly
        p, dp = poly_switch(r, r_in, delta_in)
        if p != 0.0 or dp != 0.0:  # past the switch, g·(1 − 0) and dg·1 − g·0 are g and dg (but an exact 0’s sign)
            for k in range(nk):
                dg[k] = dg[k] * (1.0 - p) - g[k] * dp
                g[k] *= 1.0 - p


@nb.njit(**_JIT)
def _zbl_pair(r: float, a: float) -> tuple[float, float, float]:
    """E(r) = φ(r/a)/r of the universal ZBL screening (without prefactors) and 2 derivatives."""
    ph, dph, d2ph = 0.0, 0.0, 0.0
    for k in range(4):
        c, d = _ZBL_C[k], _ZBL_D[k]
        e = c * math.exp(d * r / a)
        ph += e
        dph += e * d / a
        d2ph += e * d * d / (a * a)
    return ph / r, dph / r - ph / (r * r), d2ph / r - 2.0 * dph / (r * r) + 2.0 * ph / (r * r * r)


@nb.njit(**_JIT)
def core_repulsion(inner: int, pre: float, lamc: float, rc: float, dc: float, r_in: float,
                   delta_in: float, zi: float, zj: float, r: float) -> tuple[float, float]:
    """Pair core-repulsion φ(r) (eV) and dφ/dr for the density/distance (exp) or zbl form."""
    if r >= rc:
        return 0.0, 0.0
    # docs/model.md (M25): ZBL pair term
    if inner == INNER_ZBL:
        a = 0.46850 / (zi ** 0.23 + zj ** 0.23)
        ro, rs = rc, rc - dc
        delta = ro - rs
        ec, dec, d2ec = _zbl_pair(ro, a)
        A = (-3.0 * dec + delta * d2ec) / delta ** 2
        B = (2.0 * dec - delta * d2ec) / delta ** 3
        C = -ec + delta * dec / 2.0 - delta * delta * d2ec / 12.0
        e, de, _ = _zbl_pair(r, a)
        if r <= rs:
            s, ds = C, 0.0
        else:
            t = r - rs
            s = A / 3.0 * t ** 3 + B / 4.0 * t ** 4 + C
            ds = A * t * t + B * t ** 3
        p, dp = poly_switch(r, ro, delta)
        k = pre * ZBL_K / 2.0 * zi * zj
        return k * (e + s) * p, k * ((de + ds) * p + (e + s) * dp)
    # docs/model.md (M23)
    lc = abs(lamc)
    if lc * r * r >= 50.0 or pre == 0.0:
        return 0.0, 0.0
    ex = abs(pre) * math.exp(-lc * r * r)
    cut = 0.5 * (1.0 + math.cos(math.pi * r / rc))
    dcut = -0.5 * math.pi / rc * math.sin(math.pi * r / rc)
    v = ex / r
    dv = ex * (-2.0 * lc * r) / r - ex / (r * r)
    phi, dphi = v * cut, dv * cut + v * dcut
    if inner == INNER_DISTANCE:
        p, dp = poly_switch(r, r_in, delta_in)
        phi, dphi = phi * p, dphi * p + phi * dp
    return phi, dphi


@nb.njit(**_JIT)
def embedding2(code: int, rho: float, m: float) -> tuple[float, float, float]:
    """F(ρ; m), F'(ρ), F''(ρ) of FinnisSinclairShiftedScaled (code 0) or FinnisSinclair (code 1).

    F'' (needed by the force term of the loss gradient) jumps at ρ = 0 for m < 1.
    """
    # docs/model.md (M21) and its second derivative
    if code == FS_SHIFTED_SCALED:
        if abs(m - 1.0) < 1e-10:
            return rho, 1.0, 0.0
        a = abs(rho)
        e = math.exp(-a)
        nu = 1.0 / m
        x0 = nu ** (nu / (1.0 - nu)) * e
        y0 = nu ** (1.0 / (1.0 - nu)) * e
        sgn = 1.0 if rho > 0 else (-1.0 if rho < 0 else 0.0)
        xa = x0 + a
        d2 = -y0 + m * x0 * xa ** (m - 1.0) + m * (m - 1.0) * (1.0 - x0) ** 2 * xa ** (m - 2.0)
        return sgn * (xa ** m - y0), y0 + m * (1.0 - x0) * xa ** (m - 1.0), sgn * d2
    # docs/model.md (M22)
    w = 1.0e6  # C++ Fexp regulariser: F = λρ near 0, |ρ|^m beyond
    lam = (1.0 / w) ** (m - 1.0)
    if abs(rho) <= 1e-10:
        return lam * rho, lam, 0.0
    a = abs(rho)
    wa3 = (w * a) ** 3
    g = 0.0 if wa3 > 30.0 else math.exp(-wa3)
    w3 = w ** 3
    dg = -3.0 * w3 * a * a * g
    ddg = -6.0 * w3 * a * g - 3.0 * w3 * a * a * dg
    sgn = 1.0 if rho > 0 else -1.0
    am = a ** m
    d1 = m * a ** (m - 1.0) * (1.0 - g) - am * dg + lam * dg * a + lam * g
    d2 = (m * (m - 1.0) * a ** (m - 2.0) * (1.0 - g) - 2.0 * m * a ** (m - 1.0) * dg - am * ddg
          + lam * a * ddg + 2.0 * lam * dg)
    return sgn * ((1.0 - g) * am + lam * g * a), d1, sgn * d2


@nb.njit(**_JIT)
def embedding(code: int, rho: float, m: float) -> tuple[float, float]:
    """F(ρ; m) and F'(ρ) (the evaluator's embedding)."""
    F, dF, _ = embedding2(code, rho, m)
    return F, dF
