"""B-basis YAML: every reference potential loads, round trips losslessly, bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from paceui.ace.potential import ACEPotential, PotentialError
from paceui.ace.yaml_io import load_potential, potential_to_yaml, save_potential
from tests.conftest import POTENTIALS, need_reference

ALL = sorted(p.name for p in POTENTIALS.glob("*.yaml")) if POTENTIALS.exists() else []
TEST_RADIAL = "Al-Ni_test_radial_func_name.yaml"


def assert_same_potential(a: ACEPotential, b: ACEPotential) -> None:
    assert a.metadata == b.metadata
    assert a.auxdata == b.auxdata
    assert a.delta_spline_bins == b.delta_spline_bins
    assert [x.elements for x in a.blocks] == [x.elements for x in b.blocks]
    for x, y in zip(a.blocks, b.blocks):
        assert x.embedding == y.embedding
        assert (x.bond is None) == (y.bond is None)
        if x.bond is not None:
            assert x.bond.same_as(y.bond)
            assert x.bond.crad.dtype == y.bond.crad.dtype
        assert x.functions == y.functions


@pytest.mark.parametrize("name", [n for n in ALL if n != TEST_RADIAL] or ["none"])
def test_every_reference_potential_loads_and_round_trips(name, tmp_path):
    need_reference()
    pot = load_potential(POTENTIALS / name)
    assert pot.functions(), "a potential without functions"
    out = save_potential(pot, tmp_path / name)
    again = load_potential(out)
    assert_same_potential(pot, again)
    # a second save is byte-identical: the writer is deterministic
    assert potential_to_yaml(again) == out.read_text()


def test_test_radial_names_are_refused_with_the_field(reference):
    with pytest.raises(PotentialError) as exc:
        load_potential(POTENTIALS / TEST_RADIAL)
    msg = str(exc.value)
    assert TEST_RADIAL in msg and "radbase" in msg and "TEST_BesselFirst" in msg


def test_flat_legacy_radcoefficients_are_reshaped_k_slowest(reference):
    raw = yaml.safe_load((POTENTIALS / "Al.pbe.13.2.yaml").read_text())
    block = raw["species"][0]
    flat = np.asarray(block["radcoefficients"], dtype=float)
    assert flat.ndim == 1
    bond = load_potential(POTENTIALS / "Al.pbe.13.2.yaml").blocks[0].bond
    n, l1, k = bond.crad.shape
    j = 0
    for kk in range(k):
        for nn in range(n):
            for ll in range(l1):
                assert bond.crad[nn, ll, kk] == flat[j]
                j += 1


def test_metadata_and_auxdata_survive(reference, tmp_path):
    pot = load_potential(POTENTIALS / "Cu-aux_data.yaml")
    assert pot.auxdata["_int"] == {"i1": 1, "i2": 2}
    assert pot.auxdata["_string_arr"]["sa1"] == ["1.1", "2.2", "3.3"]
    pot = load_potential(POTENTIALS / "Cu-I_active_learning.yaml")
    assert pot.metadata["starttime"] == "2023-05-03 17:48:45.024009"  # a string, not a datetime
    pot.metadata["comment"] = 'quotes " and: colons, #hash'
    again = load_potential(save_potential(pot, tmp_path / "p.yaml"))
    assert again.metadata == pot.metadata


def test_missing_inner_cutoff_type_means_density(reference):
    pot = load_potential(POTENTIALS / "Al-Ni_opt_all.yaml")
    assert pot.inner_cutoff_type == "density"
    assert load_potential(POTENTIALS / "Cu-I_active_learning.yaml").inner_cutoff_type == "distance"
    assert load_potential(POTENTIALS / "ZBL_rep.yaml").inner_cutoff_type == "zbl"


def test_binary_bond_is_shared_by_both_orders(reference):
    pot = load_potential(POTENTIALS / "multispecies_AlNiCu.yaml")
    bonds = pot.bonds()
    assert len(bonds) == 9
    assert bonds[("Al", "Ni")].same_as(bonds[("Ni", "Al")])


MINIMAL = """
global: {DeltaSplineBins: 0.001}
species:
  - speciesblock: Cu
    ndensityi: 1
    npoti: FinnisSinclairShiftedScaled
    parameters: [1, 1]
    nradmaxi: 1
    lmaxi: 1
    rcutij: 5.0
    dcutij: 0.01
    nradbaseij: 2
    radbase: ChebExpCos
    radparameters: [5.25]
    radcoefficients: [[[1, 0], [0, 1]]]
    nbody:
      - {type: Cu Cu, nr: [1], nl: [0], c: [1.0]}
      - {type: Cu Cu Cu, nr: [1, 1], nl: [1, 1], c: [0.5]}
      - {type: Cu Cu Cu Cu, nr: [1, 1, 1], nl: [1, 1, 0], lint: [0], c: [0.1]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


def test_minimal_file_loads(tmp_path):
    pot = load_potential(_write(tmp_path, MINIMAL))
    assert pot.elements == ["Cu"] and len(pot.functions()) == 3


@pytest.mark.parametrize("old,new,words", [
    ("radbase: ChebExpCos", "radbase: Bessel", ["radbase", "Bessel", "species block 'Cu'"]),
    ("npoti: FinnisSinclairShiftedScaled", "npoti: Tanh", ["npoti", "Tanh"]),
    ("radcoefficients: [[[1, 0], [0, 1]]]", "radcoefficients: [[[1, 0]]]", ["radcoefficients", "shape"]),
    ("c: [0.5]", "c: [0.5, 1.0]", ["'c' has 2 values", "nbody[1]"]),
    ("nl: [1, 1], c: [0.5]", "nl: [1, 2], c: [0.5]", ["even"]),
    ("lint: [0]", "lint: [3]", ["triangle"]),
    ("global: {DeltaSplineBins: 0.001}", "global: {}", ["DeltaSplineBins"]),
    ("type: Cu Cu Cu, nr: [1, 1]", "type: Cu Cu Cu, nr: [1]", ["rank 2"]),
    ("type: Cu Cu, nr", "type: Ni Cu, nr", ["central element Ni"]),
    ("rcutij: 5.0", "rcutij: five", ["rcutij", "number"]),
    ("    nradbaseij: 2\n", "", ["nradbaseij"]),
])
def test_malformed_files_name_file_and_field(tmp_path, old, new, words):
    assert old in MINIMAL
    p = _write(tmp_path, MINIMAL.replace(old, new))
    with pytest.raises(PotentialError) as exc:
        load_potential(p)
    msg = str(exc.value)
    assert str(p) in msg
    for w in words:
        assert w in msg, msg


def test_yaml_syntax_error_names_the_file(tmp_path):
    p = _write(tmp_path, "global: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_potential(p)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_potential(tmp_path / "nope.yaml")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    pot = load_potential(_write(tmp_path, MINIMAL))
    target = tmp_path / "out.yaml"
    target.write_text("old content")
    save_potential(pot, target)
    assert load_potential(target).functions() == pot.functions()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.yaml", "out.yaml"]
