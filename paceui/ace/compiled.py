"""The compiled form of a potential: the arrays the numba kernels take, as one typed record.

The fields are in the order of :func:`paceui.ace.kernels.ace_atoms`'s arguments after the structure
(``species, offsets, nbr_j, vec``), so a call site passes ``*record``; the kernels keep their positional
signatures. :class:`paceui.ace.evaluator.ACEModel` builds it (``model.compiled``) and loads new
coefficients into it (``model.load_coefficients``). Index layouts (docs/model.md §4–§6):

* A-basis index of (μ, n, l, m ≥ 0): ``(μ·nmax + n − 1)·n_lm(lmax) + l(l+1)/2 + m``; rank-1 index ``μ·kmax + k − 1``;
* ``b_int[μi, μj]``: columns ``BI_*`` of :mod:`paceui.ace.kernels` (radial basis code, nradmax, lmax, nradbase);
* ``b_par[μi, μj]``: columns ``BP_*`` (λ, rc, dc, r_in, δ_in, core-repulsion prefactor and exponent, Zi, Zj);
* ``e_int[μ] = (embedding code, ndensity)``, ``e_par[μ] = (w1, m1, w2, m2, …, ρcut, Δρ)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CompiledModel(NamedTuple):
    """The kernels' arrays of one potential (units: Å, eV); the coefficients are ``r1_ct``, ``c_ct``, ``crad``."""

    b_int: np.ndarray      # int64[S, S, 4] per bond: radial code, nradmax, lmax, nradbase
    b_par: np.ndarray      # float64[S, S, 9] per bond: BP_* columns
    crad: np.ndarray       # float64[S, S, nmax, lmax+1, kmax] radial coefficients (both orders of a bond)
    inner: int             # inner cutoff code (radial.INNER_*)
    e_int: np.ndarray      # int64[S, 2] embedding code, ndensity
    e_par: np.ndarray      # float64[S, 2·dmax+2] FS parameters, rho_core_cut, drho_core_cut
    E0: np.ndarray         # float64[S] eV per atom
    sp_r1: np.ndarray      # int64[S+1] rank-1 functions of each species: r1 rows sp_r1[μ]..sp_r1[μ+1]
    r1_aidx: np.ndarray    # int64[n_r1] rank-1 index μ·kmax + k
    r1_ct: np.ndarray      # float64[n_r1, dmax] C-tilde coefficients of the rank-1 functions
    sp_fn: np.ndarray      # int64[S+1] product functions of each species
    fn_c0: np.ndarray      # int64[n_fn+1] first m-combination of each product function
    c_aidx: np.ndarray     # int64[n_comb, rmax] A-basis index of each factor
    c_m: np.ndarray        # int64[n_comb, rmax] m of each factor (sign: conjugation, docs/model.md (M13))
    c_rank: np.ndarray     # int64[n_comb] rank of each combination
    c_ct: np.ndarray       # float64[n_comb, dmax] C-tilde coefficients of each combination
    radial: int            # kernels.RADIAL_*: analytic, the table below (g_k, R_nl, φ), or the folded one
    sp_tab: np.ndarray     # float64[S·S, nlut+1, 4, nc+nmax·(lmax+1)+1] Hermite coefficients (docs/model.md
    #                        (M12)) of g_k (nc = kmax; RADIAL_TABLE) or of the rank-1 densities (nc = dmax;
    #                        RADIAL_FOLDED, kernels.fold_rank1), R_nl and φ
    sp_scale: np.ndarray   # float64[S·S] nodes per Å
    nmax: int
    lmax: int
    kmax: int
    rmax: int              # largest rank
