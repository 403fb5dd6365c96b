"""The Zuo Cu input that bench_linear, bench_warmstart, bench_activeset and bench_dask measure with: the
recipe's linear stage as it stood before 2026-12-03 (rc 5.5 Å, ChebExpCos λ 5.25, nradmax [16, 6, 3, 2, 1],
lmax [0, 4, 3, 2, 1]: 336 functions). The recipe itself (assets/zuo/input.yaml) now picks SBessel and a larger
basis; these benchmarks keep this one so that their recorded figures stay comparable."""

from __future__ import annotations

from typing import Any


def zuo_input(data_file: str = "Cu_train.xyz.gz") -> dict[str, Any]:
    """The pacemaker-style input (a dict) of that basis on ``data_file`` with a 10 % validation split."""
    from paceui.fit.recipe import BASIS_LADDER, Recipe, input_dict

    nrad, lmax = BASIS_LADDER[0].shape
    recipe = Recipe(cutoff=5.5, nradmax_by_orders=nrad, lmax_by_orders=lmax, kappa=3e-4, maxiter=1,
                    radbase="ChebExpCos")
    return input_dict(recipe, ["Cu"], data_file, test_size=0.1)
