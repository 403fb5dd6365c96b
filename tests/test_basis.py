"""Basis construction from pacemaker's potential: section, couplings and ladder steps vs the reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from paceui.ace.basis import build_potential, split_elements
from paceui.ace.coupling import _compute, unify_key
from paceui.ace.ladder import actual_ladder_step, empty_like, extend_basis
from paceui.ace.potential import PotentialError
from paceui.ace.yaml_io import load_potential, potential_from_dict, potential_to_yaml
from tests.conftest import REFERENCE, need_reference

CASES = ["examples_Cu-I", "examples_Cu-II", "examples_Ethanol", "testCLI_Ethanol"]


def _input(name: str) -> dict:
    return yaml.safe_load((REFERENCE / "inputs" / f"{name}_input.yaml").read_text())


@pytest.mark.parametrize("name", CASES)
def test_counts_match_reference(name):
    need_reference()
    summary = json.loads((REFERENCE / "generated" / "basis_construction_summary.json").read_text())[name]
    pot = build_potential(_input(name)["potential"])
    c = pot.counts()
    assert c["functions"] == summary["total_functions"]
    assert {b.name: len(b.functions) for b in pot.blocks} == summary["per_block"]
    per_rank = {}
    for b in pot.blocks:
        for f in b.functions:
            key = f"{b.name}|rank{f.rank}"
            per_rank[key] = per_rank.get(key, 0) + 1
    assert per_rank == summary["per_block_rank"]
    assert c["coefficients_crad"] == summary["n_crad"]
    assert c["coefficients_func"] == summary["n_func_coeffs"]


@pytest.mark.parametrize("name", CASES)
def test_target_potential_equals_reference_function_by_function(name):
    need_reference()
    ref_file = REFERENCE / "generated" / f"{name}_target_potential.yaml"
    ref = load_potential(ref_file)
    pot = build_potential(_input(name)["potential"])
    assert [b.elements for b in pot.blocks] == [b.elements for b in ref.blocks]
    for b, rb in zip(pot.blocks, ref.blocks):
        assert [(f.elements, f.ns, f.ls, f.LS, f.coeffs) for f in b.functions] == \
               [(f.elements, f.ns, f.ls, f.LS, f.coeffs) for f in rb.functions], b.name
        assert b.embedding == rb.embedding
        assert (b.bond is None) == (rb.bond is None)
        if b.bond is not None:
            assert b.bond.same_as(rb.bond), b.name
    # and it serialises to a file that reloads identically
    again = potential_from_dict(yaml.safe_load(potential_to_yaml(pot)))
    assert [len(b.functions) for b in again.blocks] == [len(b.functions) for b in pot.blocks]


@pytest.mark.parametrize("ladder_type", ["body_order", "power_order"])
def test_ladder_steps_match_reference(ladder_type):
    need_reference()
    ref = json.loads((REFERENCE / "generated" / f"ladder_Cu-I_{ladder_type}_step15_first3.json").read_text())
    target = build_potential(_input("examples_Cu-I")["potential"])
    cur = empty_like(target)
    for step in ref:
        n = actual_ladder_step(15, len(cur.functions()), len(target.functions()))
        cur = extend_basis(cur, target, ladder_type, n)
        assert [(list(f.ns), list(f.ls), list(f.LS)) for f in cur.functions()] == \
               [(x["nr"], x["nl"], x["lint"]) for x in step]
    bond = cur.blocks[0].bond
    assert bond.crad.shape[2] >= bond.crad.shape[0]
    np.testing.assert_array_equal(bond.crad[:, 0, :bond.crad.shape[0]], np.eye(bond.crad.shape[0]))


def test_ladder_keeps_existing_coefficients():
    need_reference()
    target = build_potential(_input("examples_Cu-I")["potential"])
    cur = extend_basis(empty_like(target), target, "body_order", 20)
    for i, f in enumerate(cur.functions()):
        f.coeffs = [float(i), -float(i)]
    cur.blocks[0].bond.crad[:] = 0.5
    old_shape = cur.blocks[0].bond.crad.shape
    nxt = extend_basis(cur, target, "body_order", 20)
    old = {(f.ns, f.ls, f.LS): f.coeffs for f in cur.functions()}
    for f in nxt.functions():
        if (f.ns, f.ls, f.LS) in old:
            assert f.coeffs == old[(f.ns, f.ls, f.LS)]
        else:
            assert f.coeffs == [0.0, 0.0]
    crad = nxt.blocks[0].bond.crad
    assert np.all(crad[:old_shape[0], :old_shape[1], :old_shape[2]] == 0.5)


def test_ladder_step_rule():
    assert actual_ladder_step(15, 0, 82) == 15
    assert actual_ladder_step(0.2, 50, 82) == 10
    assert actual_ladder_step([5, 0.2], 100, 1000) == 20
    assert actual_ladder_step([50, 0.2], 100, 1000) == 50
    assert actual_ladder_step(15, 80, 82) == 2
    assert actual_ladder_step(0.01, 10, 82) == 1
    assert actual_ladder_step(None, 10, 82) == 72


def test_couplings_equal_the_reference_table():
    """Independent couplings computed from CG coefficients reproduce pacemaker's table (ranks 1-6)."""
    need_reference()
    table = json.loads((REFERENCE / "basis_whitelist" / "mus_ns_uni_to_rawlsLS_np_rank.json").read_text())["data"]
    lmax_by_rank = {1: 0, 2: 4, 3: 3, 4: 2, 5: 2, 6: 1}
    checked = 0
    for key, entries in table.items():
        labels = tuple(int(x) for x in key.split(","))
        if len(labels) > 6:
            continue
        lmax = lmax_by_rank[len(labels)]
        expected = [(tuple(a), tuple(b)) for a, b in entries if max(a) <= lmax]
        assert _compute(labels, lmax) == expected, key
        checked += 1
    assert checked == 37


def test_unify_key():
    assert unify_key(("Cu", "Cu", "Cu"), (1, 1, 2)) == (0, 0, 1)
    assert unify_key(("Al", "Al", "Ni"), (1, 2, 1)) == (0, 1, 2)
    assert unify_key(("H", "O"), (3, 3)) == (0, 1)


def test_split_elements_and_errors():
    assert split_elements("AlNi") == ("Al", "Ni")
    assert split_elements("(Al, Ni)") == ("Al", "Ni")
    with pytest.raises(PotentialError):
        split_elements("alni")
    cfg = {"elements": ["Cu"], "embeddings": {"ALL": {"npot": "Tanh"}},
           "bonds": {"ALL": {"rcut": 5}}, "functions": {"ALL": {"nradmax_by_orders": [3], "lmax_by_orders": [0]}}}
    with pytest.raises(PotentialError, match="npot 'Tanh'"):
        build_potential(cfg)
    cfg["embeddings"] = {"ALL": {"npot": "FinnisSinclair", "typo": 1}}
    with pytest.raises(PotentialError, match="typo"):
        build_potential(cfg)
    cfg["embeddings"] = {"Zn": {"ndensity": 1}}
    with pytest.raises(PotentialError, match="Zn"):
        build_potential(cfg)
    cfg["embeddings"] = {}
    cfg["bonds"] = {"ALL": {}}
    with pytest.raises(PotentialError, match="rcut"):
        build_potential(cfg)


def test_precedence_explicit_over_order_over_all():
    cfg = {"elements": ["Ni", "Al"],
           "embeddings": {"ALL": {"ndensity": 1, "fs_parameters": [1, 1]}, "Ni": {"ndensity": 2, "fs_parameters": [1, 1, 1, 0.5]}},
           "bonds": {"ALL": {"rcut": 5.0, "radparameters": [3.0]}, "BINARY": {"rcut": 6.0}, "AlNi": {"radbase": "ChebPow"}},
           "functions": {"ALL": {"nradmax_by_orders": [4, 2], "lmax_by_orders": [0, 1]},
                         "BINARY": {"nradmax_by_orders": [2, 1], "lmax_by_orders": [0, 1]}}}
    pot = build_potential(cfg)
    assert pot.elements == ["Al", "Ni"]
    emb = pot.embeddings()
    assert emb["Al"].ndensity == 1 and emb["Ni"].ndensity == 2
    bonds = pot.bonds()
    assert bonds[("Al", "Al")].rcut == 5.0 and bonds[("Al", "Ni")].rcut == 6.0
    assert bonds[("Al", "Ni")].radbase == "ChebPow" and bonds[("Ni", "Al")].radbase == "ChebPow"
    assert bonds[("Al", "Al")].radbase == "ChebExpCos"
    assert bonds[("Al", "Al")].inner_cutoff_type == "distance"  # constructed potentials default
    assert len(pot.block("Al Ni").functions) < len(pot.block("Al").functions) + 10
    assert all(len(f.coeffs) == 2 for f in pot.block("Ni").functions)
