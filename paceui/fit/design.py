"""The weighted linear design of a potential with linear embeddings, reduced chunk by chunk to a QR factor.

With F(ρ) = ρ and fixed radial coefficients, energies, forces and virials are affine in the function
coefficients c: y(c) = y₀ + X c. The rows (weighted as the loss weights them)

    √((1−κ) w_s)/N_s · E_s,    √(κ w_i) · F_i (3 rows),    √(λ_σ w^σ_s)/N_s · W_s (6 Voigt rows)

are computed per chunk of structures by :func:`paceui.fit.design_kernel.design_structures` and folded into
R (P×P) and Qᵀb of a running QR factorisation (TSQR: R of [R Qᵀb; X_chunk b_chunk]), so memory stays at one chunk
of rows whatever the data size; b = weighted (reference − y₀). Then ‖X c − b‖² = ‖R c − Qᵀb‖² + rss₀.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from paceui._blas import LAPACK, qr_flops
from paceui.ace.compiled import CompiledModel
from paceui.ace.potential import ACEPotential
from paceui.errors import InputError
from paceui.fit.arrays import FitArrays, slice_structures
from paceui.fit.design_kernel import design_structures
from paceui.fit.design_layout import DesignLayout, design_layout
from paceui.fit.loss import VOIGT, ACELoss, LossConfig, voigt

DESIGN_CHUNK_BYTES = 64 * 2**20
"""Least memory for one chunk of design rows (bytes); :func:`chunk_bytes_for` raises it for wide designs."""

DESIGN_CHUNK_MAX = 2**30
"""Most memory for one chunk of design rows (bytes)."""


def chunk_bytes_for(P: int) -> int:
    """The row-chunk budget for P columns: at least 3P rows, so that folding a chunk of m rows into R (a QR of
    (P + m) × P, 2(P + m)P² flops for m rows' 2mP² of useful work) costs at most 4/3 of the least; within
    [``DESIGN_CHUNK_BYTES``, ``DESIGN_CHUNK_MAX``]. Zuo Ni, 3106 columns: 231 MB, QR time 92 → 62 s on one
    thread."""
    return int(min(max(DESIGN_CHUNK_BYTES, 3 * P * 8 * P), DESIGN_CHUNK_MAX))


class LinearSolveError(InputError):
    """The potential or the loss is not linear in the function coefficients."""


@dataclass
class LinearSystem:
    """R c ≈ qb in the least-squares sense, with ‖X c − b‖² = ‖R c − qb‖² + rss0."""

    R: np.ndarray          # [P, P] upper triangular
    qb: np.ndarray         # [P]
    rss0: float            # the part of ‖b‖² outside the column space of X
    n_rows: int            # rows of X (energies, force components, stress components with weight > 0)
    cols: np.ndarray       # θ index of each column (the trained function coefficients)
    theta0: np.ndarray     # θ with every function coefficient 0 (radial coefficients as given)
    seconds: float = 0.0   # assembly time
    chunk_bytes: int = 0   # largest chunk of design rows held (bytes)


Parts = tuple[LinearSystem, LinearSystem, LinearSystem]
"""Energy, force and stress systems of one data set (:func:`assemble_parts`)."""


def check_linear(pot: ACEPotential, cfg: LossConfig) -> None:
    """Raise :class:`LinearSolveError` unless the loss is quadratic in the function coefficients."""
    bad = [f"{el} (fs_parameters {list(e.fs_parameters)})" for el, e in pot.embeddings().items()
           if any(abs(m - 1.0) > 1e-10 for m in e.fs_parameters[1::2])]
    if bad:
        raise LinearSolveError("a linear solve needs linear embeddings (every m of fs_parameters = 1); not linear: "
                               + ", ".join(bad) + ". Use an iterative optimizer (BFGS, ...) for this potential")
    if cfg.L1_coeffs or cfg.w0_rad or cfg.w1_rad or cfg.w2_rad or cfg.w_orth:
        raise LinearSolveError("a linear solve supports fit.loss kappa, stress and L2_coeffs only (L1_coeffs, w*_rad "
                               "and w_orth are not quadratic in the coefficients): set them to 0")


def _design(m: CompiledModel, lay: DesignLayout, data: FitArrays, want_w: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unweighted design rows of ``data`` in the layout's columns: energies [S, P], forces [3N, P] and, with
    ``want_w``, virials W [S, 9, P] (else an empty array)."""
    S, N, P = data.n_struct, len(data.species), len(lay.r1_ptr) - 1
    out_e, out_f = np.zeros((S, P)), np.zeros((N, P, 3))
    out_w = np.zeros((S, P, 9)) if want_w else np.zeros((0, P, 9))
    design_structures(data.struct_off, data.species, data.nbr_off, data.nbr_j, data.vec, m.b_int, m.b_par, m.crad,
                      m.inner, m.e_par, m.r1_ct.shape[1], m.sp_r1, m.r1_aidx, m.sp_fn, m.fn_c0, m.c_aidx, m.c_m,
                      m.c_rank, m.nmax, m.lmax, m.kmax, m.rmax, *lay, want_w, out_e, out_f, out_w,
                      m.radial, m.sp_tab, m.sp_scale)
    return out_e, out_f.transpose(0, 2, 1).reshape(3 * N, P), out_w.transpose(0, 2, 1)


def _chunks(data: FitArrays, per_row: int, budget: int) -> list[tuple[int, int]]:
    so = data.struct_off
    out, s0 = [], 0
    while s0 < data.n_struct:
        s1 = s0 + 1
        while s1 < data.n_struct and (10 * (s1 + 1 - s0) + 3 * (so[s1 + 1] - so[s0])) * per_row <= budget:
            s1 += 1
        out.append((s0, s1))
        s0 = s1
    return out


def _weighted_chunks(pot: ACEPotential, data: FitArrays, cfg: LossConfig, chunk_bytes: int | None,
                     info: dict) -> Iterator[tuple[list[np.ndarray], ...]]:
    """Per chunk of structures, the weighted design rows in θ's function coefficients and their right-hand
    sides: (energy blocks, rhs, force blocks, rhs, stress blocks, rhs). ``info`` receives ``cols``,
    ``theta0`` and ``held`` (the largest chunk of rows, bytes)."""
    check_linear(pot, cfg)
    loss = ACELoss(pot, cfg)
    theta0 = loss.pmap.get(pot).copy()
    fm = loss.pmap.func_mask()
    theta0[fm] = 0.0
    e0, f0, w0 = loss.predict_virials(theta0, data)  # core repulsion and E0 only; leaves θ0 loaded
    lay, cols = design_layout(loss)
    info.update(cols=cols, theta0=theta0, held=0)
    m = loss.model.compiled
    P = len(cols)
    budget = int(chunk_bytes or chunk_bytes_for(P))
    k, lam = cfg.kappa, cfg.stress
    for s0, s1 in _chunks(data, 8 * P, budget):
        sub = slice_structures(data, s0, s1)
        out_e, out_f, out_w = _design(m, lay, sub, lam > 0.0)
        info["held"] = max(info["held"], out_e.nbytes + out_f.nbytes + out_w.nbytes)
        nat = sub.n_atoms.astype(float)
        a0, a1 = int(data.struct_off[s0]), int(data.struct_off[s1])
        eb: list[np.ndarray] = []
        er: list[np.ndarray] = []
        fb: list[np.ndarray] = []
        fr: list[np.ndarray] = []
        sb: list[np.ndarray] = []
        sr: list[np.ndarray] = []
        if k < 1.0:
            sw = np.sqrt((1.0 - k) * sub.w_e) / nat
            out_e *= sw[:, None]  # in place: the chunk's rows are not needed unweighted
            eb.append(out_e)
            er.append(sw * (sub.e_ref - e0[s0:s1]))
        if k > 0.0:
            sw = np.repeat(np.sqrt(k * sub.w_f), 3)
            out_f *= sw[:, None]
            fb.append(out_f)
            fr.append(sw * (sub.f_ref - f0[a0:a1]).ravel())
        if lam > 0.0:
            has = sub.has_stress & (sub.w_s > 0)
            if has.any():
                sw = np.sqrt(lam * sub.w_s[has]) / nat[has]
                vrows = [3 * a + b for a, b in VOIGT]
                sb.append((sw[:, None, None] * out_w[has][:, vrows, :]).reshape(-1, P))
                sr.append((sw[:, None] * (sub.s_ref[has] - w0[s0:s1][has])).ravel())
        yield eb, er, fb, fr, sb, sr


class _Fold:
    """A running QR factor of stacked row blocks (TSQR): R of [R Qᵀb; X b] (its last column is Qᵀb), ‖b‖² and
    the row count."""

    def __init__(self, P: int) -> None:
        self.P, self.Ra, self.b_sq, self.n_rows = P, np.zeros((0, P + 1)), 0.0, 0

    def add(self, blocks: list[np.ndarray], rhs: list[np.ndarray]) -> None:
        if not blocks:
            return
        b = np.concatenate(rhs)
        self.n_rows += len(b)
        self.b_sq += float(b @ b)
        k, P = len(self.Ra), self.P
        stacked = np.empty((k + len(b), P + 1))  # [R Qᵀb; X b], filled in place (no intermediate copies)
        stacked[:k] = self.Ra
        r = k
        for blk in blocks:
            stacked[r:r + len(blk), :P] = blk
            r += len(blk)
        stacked[k:, P] = b
        with LAPACK.block("fold", qr_flops(len(stacked), P + 1)):  # one or all threads (paceui/_blas.py)
            self.Ra = np.linalg.qr(stacked, mode="r")

    def system(self, info: dict, seconds: float) -> LinearSystem:
        P, Ra = self.P, self.Ra[:self.P]
        R, qb = np.zeros((P, P)), np.zeros(P)  # fewer rows than columns: zero rows below, so that R is square
        R[:len(Ra)], qb[:len(Ra)] = Ra[:, :P], Ra[:, P]
        return LinearSystem(R, qb, max(self.b_sq - float(qb @ qb), 0.0), self.n_rows, info["cols"],
                            info["theta0"], seconds, info["held"])


def assemble(pot: ACEPotential, data: FitArrays, cfg: LossConfig, chunk_bytes: int | None = None,
             between: Callable[[], None] | None = None) -> LinearSystem:
    """The QR-reduced weighted design of ``data`` for the loss ``cfg`` (see module doc); ``between`` is called
    after each chunk (it may raise to abandon the assembly, e.g. a fit's pause)."""
    t0 = time.perf_counter()
    info: dict = {}
    fold: _Fold | None = None
    for eb, er, fb, fr, sb, sr in _weighted_chunks(pot, data, cfg, chunk_bytes, info):
        fold = fold or _Fold(len(info["cols"]))
        fold.add(eb + fb + sb, er + fr + sr)
        if between is not None:
            between()
    fold = fold or _Fold(len(info["cols"]))
    return fold.system(info, time.perf_counter() - t0)


def assemble_parts(pot: ACEPotential, data: FitArrays, cfg: LossConfig,
                   chunk_bytes: int | None = None) -> Parts:
    """Three QR-reduced systems from one pass over the data: the energy rows, the force rows and the stress
    rows, weighted as ``cfg`` weights them (0 < κ < 1). :func:`at_kappa` gives the system of any other κ'
    from them without a new pass."""
    if not 0.0 < cfg.kappa < 1.0:
        raise ValueError(f"assemble_parts needs 0 < kappa < 1, got {cfg.kappa}")
    t0 = time.perf_counter()
    info: dict = {}
    folds: list[_Fold] = []
    for eb, er, fb, fr, sb, sr in _weighted_chunks(pot, data, cfg, chunk_bytes, info):
        folds = folds or [_Fold(len(info["cols"])) for _ in range(3)]
        for fold, blocks, rhs in zip(folds, (eb, fb, sb), (er, fr, sr)):
            fold.add(blocks, rhs)
    folds = folds or [_Fold(len(info["cols"])) for _ in range(3)]
    dt = time.perf_counter() - t0
    e_sys, f_sys, s_sys = (f.system(info, dt) for f in folds)
    return e_sys, f_sys, s_sys


def combine(parts: list[tuple[LinearSystem, float]]) -> LinearSystem:
    """The system of the rows of each part scaled by √factor, stacked (factors ≥ 0). Rows of R that are all zero
    (a part with fewer rows than columns: the energy and stress parts) are left out of the QR; their qb stays in
    rss0. Energy rows are few, so the QR is about (P + structures) × P rather than 3P × P."""
    keep = [np.any(p.R != 0.0, axis=1) for p, _ in parts]
    X = np.vstack([np.sqrt(a) * p.R[k] for (p, a), k in zip(parts, keep)])
    y = np.concatenate([np.sqrt(a) * p.qb[k] for (p, a), k in zip(parts, keep)])
    left = sum(a * float(p.qb[~k] @ p.qb[~k]) for (p, a), k in zip(parts, keep))
    P = parts[0][0].R.shape[1]
    with LAPACK.block("stack", qr_flops(len(X), P + 1)):  # R of [X y]: its last column is Qᵀy (no Q formed)
        Ra = np.linalg.qr(np.column_stack([X, y]), mode="r")[:P]
    R, qb = np.zeros((P, P)), np.zeros(P)  # square, zero rows below when X has fewer rows than columns
    R[:len(Ra)], qb[:len(Ra)] = Ra[:, :P], Ra[:, P]
    rss0 = sum(a * p.rss0 for p, a in parts) + left + max(float(y @ y) - float(qb @ qb), 0.0)
    first = parts[0][0]
    return LinearSystem(R, qb, rss0, sum(p.n_rows for p, _ in parts), first.cols, first.theta0,
                        first.seconds, max(p.chunk_bytes for p, _ in parts))


def at_kappa(parts: Parts, kappa0: float, kappa: float) -> LinearSystem:
    """The system at force weight κ from the parts :func:`assemble_parts` gave at κ0 (stress rows as they are)."""
    return pooled_at_kappa([(parts, 1.0, 1.0)], kappa0, kappa)


def pooled_at_kappa(sets: list[tuple[Parts, float, float]], kappa0: float, kappa: float) -> LinearSystem:
    """The system at κ of the rows of several data sets, each given as (parts at κ0, energy share, force share):
    a set's energy rows are scaled by its share of the structures and its force rows by its share of the
    atoms, so that weights normalised per set (Σ w_e = 1, Σ w_f = 1 in each) become weights normalised over
    the union: exact for uniform weights. Stress weights are not normalised per set and keep factor 1."""
    rows: list[tuple[LinearSystem, float]] = []
    for (e_sys, f_sys, s_sys), e_share, f_share in sets:
        rows += [(e_sys, e_share * (1.0 - kappa) / (1.0 - kappa0)), (f_sys, f_share * kappa / kappa0), (s_sys, 1.0)]
    return combine(rows)


def design_rows(pot: ACEPotential, data: FitArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unweighted design of ``data`` in θ's function coefficients (tests, small sets): energies [S, P],
    forces [3N, P], virials W [S, 6, P] and the θ index of each column."""
    loss = ACELoss(pot, LossConfig())
    theta0 = loss.pmap.get(pot).copy()
    theta0[loss.pmap.func_mask()] = 0.0
    loss._load(theta0)
    lay, cols = design_layout(loss)
    out_e, out_f, out_w = _design(loss.model.compiled, lay, data, True)
    S, P = data.n_struct, len(cols)
    w = voigt(out_w.transpose(0, 2, 1).reshape(S, P, 3, 3)).transpose(0, 2, 1)  # [S, 6, P]
    return out_e, out_f, w, cols
