"""Kernels compiled in child processes: the signatures are the ones real calls use, and a child's cache entry
is what the parent then loads (no compilation in the parent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core import types

from paceui.ace import kernels as K
from paceui.ace.evaluator import ACEModel
from paceui.ace.precompile import KernelSpec, signature
from paceui.ace.yaml_io import load_potential
from paceui.fit import kernels as F
from paceui.fit.loss import ACELoss, LossConfig
from tests.conftest import POTENTIALS, need_reference, random_cluster
from tests.fitdata import random_problem

ROOT = Path(__file__).resolve().parent.parent


def test_compact_signature() -> None:
    assert signature("i1 f2 i f b c3") == (types.Array(types.int64, 1, "C"), types.Array(types.float64, 2, "C"),
                                           types.int64, types.float64, types.boolean,
                                           types.Array(types.complex128, 3, "C"))
    with pytest.raises(ValueError, match="unknown token 'x2'"):
        signature("i1 x2")


def test_precompiled_signatures_are_the_ones_the_fit_and_evaluator_use() -> None:
    """After a loss+gradient (with and without stress) and an evaluation, each kernel has exactly the one
    precompiled signature: a child compiling another one would be wasted and the parent would compile again."""
    need_reference()
    pot = load_potential(POTENTIALS / "Cu-III.yaml")
    data = random_problem(pot)
    for cfg in (LossConfig(kappa=0.3), LossConfig(kappa=0.3, stress=0.1)):
        loss = ACELoss(pot, cfg)
        loss(loss.pmap.get(pot), data)
    ACEModel(pot).evaluate(random_cluster(["Cu"] * 6, seed=2))
    assert K.ace_atom_range.signatures == [signature(K.ACE_ATOMS.sig)]
    assert F.grad_chunk.signatures == [signature(F.GRAD_PASS.sig)]


CHILD = """
import sys
import numpy as np
from paceui.ace import precompile
from paceui.fit import kernels as F
spec = precompile.KernelSpec("paceui.fit.kernels", "structure_virials", "i1 i1 f2 f2 f3")
assert not precompile.is_cached(spec)
assert precompile.start([spec]) == [spec.key]
precompile.wait([spec])
assert precompile.is_cached(spec) and precompile.start([spec]) == []
out = np.zeros((1, 3, 3))
F.structure_virials(np.array([0, 1]), np.array([0, 1]), np.array([[1.0, 2.0, 3.0]]),
                    np.array([[0.5, 0.0, 0.0]]), out)
assert out[0, 0, 0] == 0.5 and out[0, 0, 1] == 1.0, out
print(sum(F.structure_virials.stats.cache_hits.values()), sum(F.structure_virials.stats.cache_misses.values()))
"""


def test_child_compiles_into_the_cache_the_parent_loads(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "PACEUI_PRECOMPILE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1", "0"], out.stdout  # one cache hit, no compilation in the parent


def test_specs_name_real_dispatchers() -> None:
    for spec in F.FIT_KERNELS:
        assert isinstance(spec, KernelSpec)
        mod = __import__(spec.module, fromlist=[spec.name])
        assert len(signature(spec.sig)) == getattr(mod, spec.name).py_func.__code__.co_argcount
