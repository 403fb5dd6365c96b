"""C-tilde conversion and ``.yace`` I/O against the reference converter's output."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from paceui.ace.ctilde import _canonical, bbasis_to_ctilde
from paceui.ace.evaluator import ACEModel
from paceui.ace.yace import load_yace, save_yace
from paceui.ace.yaml_io import load_potential
from tests.conftest import POTENTIALS, REFERENCE, need_reference

GENERATED = ["Al-Ni_opt_all", "Cu-I_active_learning", "ZBL_rep", "multispecies_AlNiCu"]


def canonical_map(ct) -> dict:
    """{(mu0, canonical factors (mu,n,l,m)): summed ctildes}: invariant to ordering and ±m choice."""
    out: dict = {}
    for mu0, fs in ct.functions.items():
        for f in fs:
            for ms, c in zip(f.ms_combs, f.ctildes):
                key = (mu0, _canonical([(a, b, c_, int(m)) for a, b, c_, m in zip(f.mus, f.ns, f.ls, ms)]))
                out[key] = out.get(key, 0.0) + np.asarray(c, dtype=float)
    return {k: v for k, v in out.items() if np.abs(v).max() > 1e-14}


@pytest.mark.parametrize("name", GENERATED)
def test_conversion_equals_reference_yace(name):
    need_reference()
    ref = load_yace(REFERENCE / "generated" / f"{name}.yace")
    ours = bbasis_to_ctilde(load_potential(POTENTIALS / f"{name}.yaml"))
    assert ours.elements == ref.elements
    assert ours.inner_cutoff_type == ref.inner_cutoff_type
    assert set(ours.bonds) == set(ref.bonds)
    for k, b in ref.bonds.items():
        assert ours.bonds[k].same_as(b), k
    for mu, e in ref.embeddings.items():
        assert ours.embeddings[mu] == e
    a, b = canonical_map(ours), canonical_map(ref)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-13)


def test_al_ni_rank2_ctildes_are_c_times_cg(reference):
    ct = bbasis_to_ctilde(load_potential(POTENTIALS / "Al-Ni_opt_all.yaml"))
    f = next(f for f in ct.functions[0] if f.rank == 2 and f.mus == (0, 0))
    vals = {tuple(ms): c[0] for ms, c in zip(f.ms_combs.tolist(), f.ctildes)}
    c = -29.049514584280232
    assert vals[(0, 0)] == pytest.approx(c * -1 / np.sqrt(3), rel=1e-14)
    pm = vals.get((1, -1), vals.get((-1, 1)))  # one of the ±m pair represents both
    assert pm == pytest.approx(c * 2 / np.sqrt(3), rel=1e-14)  # half basis: ×2
    assert len(vals) == 2


@pytest.mark.parametrize("name", GENERATED)
def test_yace_round_trip_and_same_energies(name, tmp_path):
    need_reference()
    pot = load_potential(POTENTIALS / f"{name}.yaml")
    out = save_yace(pot, tmp_path / f"{name}.yace")
    back = load_yace(out)
    assert canonical_map(back).keys() == canonical_map(bbasis_to_ctilde(pot)).keys()
    at = bulk(pot.elements[0], "fcc", a=4.0, cubic=True).repeat((2, 2, 2))
    if name == "ZBL_rep":
        at = bulk("H", "sc", a=1.4).repeat((3, 3, 3))
    at.symbols[::3] = pot.elements[-1]
    at.rattle(0.05, seed=3)
    e_yaml = ACEModel(pot).evaluate(at)
    for yace in (out, REFERENCE / "generated" / f"{name}.yace"):
        e_yace = ACEModel(yace).evaluate(at)
        assert e_yace.energy == pytest.approx(e_yaml.energy, rel=1e-12, abs=1e-10)
        np.testing.assert_allclose(e_yace.forces, e_yaml.forces, rtol=0, atol=1e-9)


def test_yace_list_keys_are_read(reference):
    ref = load_yace(REFERENCE / "generated" / "multispecies_AlNiCu.yace")
    assert (0, 1) in ref.bonds and (1, 0) in ref.bonds
