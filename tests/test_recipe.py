"""The data-driven recipe (paceui.fit.recipe): cutoff from the number density, a valid input, budget scaling."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from ase import Atoms
from ase.build import bulk

from paceui.fit.config import InputConfig
from paceui.fit.recipe import (
    BASIS_LADDER,
    NEIGHBOURS,
    ROWS_PER_COLUMN,
    DataSummary,
    basis_for,
    choose_basis,
    columns,
    cutoff_for,
    fits,
    input_dict,
    n_functions,
    pass_seconds,
    recipe_for,
    shortest_distance,
    summarize,
    training_rows,
)

ZUO_CU = Path(__file__).resolve().parents[1] / "assets" / "zuo" / "Cu_train.xyz.gz"


def test_summary_and_cutoff_of_perfect_crystals():
    cu = [bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)]
    s = summarize(cu)
    assert s.elements == ("Cu",) and s.n_structures == 1 and s.n_atoms == 32
    assert s.density == pytest.approx(4 / 3.6 ** 3, rel=1e-12)
    assert s.nn_distance == pytest.approx(3.6 / math.sqrt(2), rel=1e-9)
    rc = cutoff_for(s)
    # the sphere of radius rc holds NEIGHBOURS atoms at this density (to the 0.1 Å rounding)
    assert abs(4 / 3 * math.pi * rc ** 3 * s.density - NEIGHBOURS) < 4 * math.pi * 5.6 ** 2 * 0.05 * s.density
    si = summarize([bulk("Si", "diamond", a=5.43)])
    assert si.nn_distance == pytest.approx(5.43 * math.sqrt(3) / 4, rel=1e-9)
    assert cutoff_for(si) > rc  # the open diamond lattice needs a larger sphere for the same neighbours


def test_cutoff_is_clipped_to_the_nearest_neighbour_distance():
    sparse = DataSummary(("X",), 1, 10, density=1e-4, nn_distance=2.0)
    dense = DataSummary(("X",), 1, 10, density=10.0, nn_distance=2.0)
    assert cutoff_for(sparse) == 6.0 and cutoff_for(dense) == 4.0
    assert shortest_distance(bulk("Cu", "fcc", a=3.6)) == pytest.approx(3.6 / math.sqrt(2))


def test_iterations_follow_the_budget_and_the_input_is_valid():
    s = DataSummary(("Cu",), 100, 10000, density=0.0831, nn_distance=2.4)
    short, long_ = recipe_for(s, minutes=5), recipe_for(s, minutes=10)
    assert long_.maxiter > short.maxiter >= 10
    assert recipe_for(DataSummary(("Cu",), 100, 20000, 0.0831, 2.4), minutes=10).maxiter < long_.maxiter
    d = input_dict(long_, ["Cu"], "Cu_train.xyz.gz", test_size=0.1)
    cfg = InputConfig.from_dict(d)
    assert cfg.cutoff == long_.cutoff == d["potential"]["bonds"]["ALL"]["rcut"]
    assert cfg.fit.optimizer == "bayesian_ridge" and cfg.data["test_size"] == 0.1
    assert cfg.fit.options == {"kappa_grid": list(long_.kappa_grid), "refit_all": True}
    # κ is chosen on a validation split only: with a test file there is no grid
    assert "options" not in input_dict(long_, ["Cu"], "a.xyz", test_filename="b.xyz")["fit"]
    r = InputConfig.from_dict(input_dict(long_, ["Cu"], "a.xyz", test_size=0.1, stage="refine",
                                         initial_potential="lin.yaml"))
    assert r.fit.optimizer == "BFGS" and r.fit.maxiter == long_.maxiter
    assert r.potential["initial_potential"] == "lin.yaml"
    with pytest.raises(ValueError, match="stage"):
        input_dict(long_, ["Cu"], "a.xyz", stage="nonlinear")


def test_basis_grows_with_the_budget_and_shrinks_with_the_data():
    assert [n_functions(*b.shape) for b in BASIS_LADDER] == [336, 894, 3106, 3970]
    ni = DataSummary(("Ni",), 263, 27420, density=0.0915, nn_distance=2.4)   # Zuo Ni: 1.4 M pairs
    costs = [pass_seconds(b, ni) for b in BASIS_LADDER]
    assert costs == sorted(costs) and 150 < costs[2] < 250    # 3106 functions: about 3.3 min of the pass
    assert 300 < costs[3] < 400                               # 3970: over half of 10 min
    assert basis_for(ni, minutes=10) == BASIS_LADDER[2].shape
    assert basis_for(ni, minutes=12) == BASIS_LADDER[3].shape
    si = DataSummary(("Si",), 214, 13233, density=0.0489, nn_distance=2.2)   # Zuo Si: half Ni's atoms
    assert basis_for(si, minutes=10) == BASIS_LADDER[3].shape
    assert basis_for(ni, minutes=3) == BASIS_LADDER[1].shape    # the largest does not fit
    assert basis_for(ni, minutes=0.5) == BASIS_LADDER[0].shape
    big = DataSummary(("Ni",), 5260, 548400, density=0.0915, nn_distance=2.4)   # twenty times the data
    assert basis_for(big, minutes=10) == BASIS_LADDER[0].shape
    assert basis_for(big, minutes=60) == BASIS_LADDER[1].shape
    assert basis_for(big, minutes=240) == BASIS_LADDER[3].shape
    r = recipe_for(ni, minutes=10)
    assert (r.nradmax_by_orders, r.lmax_by_orders) == BASIS_LADDER[2].shape
    d = input_dict(r, ["Ni"], "Ni_train.xyz", test_size=0.1)["potential"]["functions"]
    assert d == {"ALL": {"nradmax_by_orders": [16, 8, 6, 2, 1], "lmax_by_orders": [0, 6, 5, 2, 1]}}


def test_several_elements_keep_the_rung_size_per_element_and_rows_per_column():
    """A binary or ternary gets a size per element (``number_of_functions_per_element``: every species
    combination of the rung's shape would be 4502–69492 functions for two elements), at least
    ``ROWS_PER_COLUMN`` training rows per column, and between two rungs the next rung's shape cut to the largest
    size (in tens) that still fits: ACEData's Ti-Al tutorial (329 structures, 1756 atoms, 5037 training rows)
    gets 1000 per element of the 3106 shape (2000 columns), not 3106 (6212)."""
    from paceui.ace.basis import build_potential

    tial = DataSummary(("Al", "Ti"), 329, 1756, density=0.0657, nn_distance=2.55)
    r = recipe_for(tial, minutes=10)
    assert (r.nradmax_by_orders, r.lmax_by_orders) == BASIS_LADDER[2].shape and r.functions_per_element == 1000
    assert fits(BASIS_LADDER[2], tial, per_element=1000) and not fits(BASIS_LADDER[2], tial, per_element=1010)
    assert ROWS_PER_COLUMN * columns(BASIS_LADDER[2], tial, 1000) <= training_rows(tial)
    d = input_dict(r, ["Al", "Ti"], "TiAl.xyz", test_size=0.1)
    assert d["potential"]["functions"]["number_of_functions_per_element"] == 1000
    pot = build_potential(d["potential"])
    assert {el: sum(len(b.functions) for b in pot.blocks if b.elements[0] == el) for el in ("Al", "Ti")} == \
        {"Al": 1000, "Ti": 1000}
    # a budget that the cut does not fit keeps the rung that fits, at its own size
    rung, per = choose_basis(tial, minutes=0.8)   # 894 fits 24 s; the 3106 shape's assembly alone costs 8 s more
    assert (rung, per) == (BASIS_LADDER[1], 894) and not fits(BASIS_LADDER[2], tial, minutes=0.8, per_element=900)
    # the cut may come within 10 of the next rung's size (15 516 rows: 3103 per element at 2.5 rows per column)
    assert choose_basis(DataSummary(("Al", "Ti"), 20, 5740, 0.08, 2.5), minutes=1e4) == (BASIS_LADDER[2], 3100)
    # molecules: 8 neighbours per atom, the QR of their many force rows per pair and 9 solves bound the size
    eth = DataSummary(("C", "H", "O"), 1000, 9000, density=math.nan, nn_distance=0.97, reach=3.18, neighbours=8)
    rung, per = choose_basis(eth)
    assert rung == BASIS_LADDER[2] and per == 1480 and not fits(rung, eth, per_element=1490)
    tiny = DataSummary(("Cu",), 4, 128, density=0.0831, nn_distance=2.5)   # 349 training rows
    assert basis_for(tiny, minutes=10) == BASIS_LADDER[0].shape
    small = DataSummary(("Cu",), 10, 1000, density=0.0831, nn_distance=2.5)  # 2709 training rows at 0.1, 1505 at 0.5
    assert recipe_for(small).nradmax_by_orders == BASIS_LADDER[1].nradmax_by_orders
    assert recipe_for(small, test_size=0.5).nradmax_by_orders == BASIS_LADDER[0].nradmax_by_orders
    assert recipe_for(DataSummary(("Ni",), 263, 27420, 0.0915, 2.4)).functions_per_element is None


@pytest.mark.skipif(not ZUO_CU.exists(), reason="assets/zuo/Cu_train.xyz.gz absent")
def test_zuo_cu_gets_the_benchmark_cutoff():
    import ase.io

    s = summarize(ase.io.read(ZUO_CU, index=":"))
    assert s.n_structures == 262 and s.n_atoms == 27416
    assert cutoff_for(s) == 5.5


@pytest.mark.skipif(not ZUO_CU.exists(), reason="assets/zuo/Cu_train.xyz.gz absent")
def test_the_shipped_zuo_input_is_what_the_recipe_writes(tmp_path):
    """``assets/zuo/input.yaml`` says it is what ``paceui recipe Cu_train.xyz.gz`` writes: every key equal
    (the data file named beside it), so a change of the rule cannot leave it behind."""
    import shutil

    import yaml

    from paceui.fit.recipe import write_recipe

    shutil.copy(ZUO_CU, tmp_path / ZUO_CU.name)
    write_recipe(str(tmp_path / ZUO_CU.name), str(tmp_path / "input.yaml"))
    written = yaml.safe_load((tmp_path / "input.yaml").read_text())
    shipped = yaml.safe_load((ZUO_CU.parent / "input.yaml").read_text())
    assert written == shipped and shipped["data"]["filename"] == ZUO_CU.name
    assert shipped["fit"]["options"]["refit_all"] is True


def test_paceui_recipe_writes_an_input_that_paceui_reads(tmp_path, capsys):
    import ase.io
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    from paceui.cli import main

    frames = []
    rng = np.random.default_rng(0)
    for k in range(4):
        at = bulk("Cu", "fcc", a=3.6 + 0.02 * k, cubic=True).repeat(2)
        at.rattle(0.05, seed=k)
        at.calc = SinglePointCalculator(at, energy=-3.5 * len(at) + rng.normal(), forces=rng.normal(size=(32, 3)))
        frames.append(at)
    ase.io.write(tmp_path / "cu.extxyz", frames)
    out = tmp_path / "run" / "input.yaml"
    out.parent.mkdir()
    assert main(["recipe", str(tmp_path / "cu.extxyz"), "-o", str(out), "--test-size", "0.25"]) == 0
    said = capsys.readouterr().out
    # 128 atoms, 291 training rows: the smallest basis (no more columns than rows), a pass of seconds
    assert "cutoff" in said and "basis 336 functions per element (one pass ≈ 0.1 min" in said
    cfg = InputConfig.from_file(out)
    assert cfg.data["filename"] == "../cu.extxyz" and cfg.data["test_size"] == 0.25
    assert cfg.cutoff == cutoff_for(summarize(frames)) and cfg.fit.optimizer == "bayesian_ridge"
    assert main(["recipe", str(tmp_path / "missing.xyz"), "-o", str(out)]) == 1


def test_paceui_recipe_names_label_keys_of_its_own(tmp_path, capsys):
    """Labels under other names (``dft_energy``, ``dft_force``): without --energy-key / --forces-key the recipe
    stops before writing anything and names the keys the file has; with them the input carries
    ``data: energy_key / forces_key`` and paceui reads it."""
    import ase.io
    import numpy as np

    from paceui.cli import main

    frames = []
    for k in range(4):
        at = bulk("Cu", "fcc", a=3.6 + 0.02 * k, cubic=True).repeat(2)
        at.rattle(0.05, seed=k)
        at.info["dft_energy"] = -3.5 * len(at) + 0.01 * k
        at.arrays["dft_force"] = np.zeros((len(at), 3))
        frames.append(at)
    ase.io.write(tmp_path / "cu.extxyz", frames)
    out = tmp_path / "input.yaml"
    assert main(["recipe", str(tmp_path / "cu.extxyz"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "info keys dft_energy" in err and "arrays keys dft_force" in err and "--energy-key" in err
    assert not out.exists()
    assert main(["recipe", str(tmp_path / "cu.extxyz"), "-o", str(out), "--energy-key", "dft_energy",
                 "--forces-key", "dft_force"]) == 0
    cfg = InputConfig.from_file(out)
    assert cfg.data["energy_key"] == "dft_energy" and cfg.data["forces_key"] == "dft_force"


def test_paceui_recipe_reads_a_pacemaker_pickle_of_molecules(tmp_path, capsys):
    """A pacemaker DataFrame pickle of non-periodic molecules (no density to read): the cutoff is the median
    atom's distance to the farthest atom of its molecule (9 atoms < 58) plus ``REACH_MARGIN``, computed here
    from the distance matrices; the pass is costed at 8 neighbours per atom, not 58."""
    import numpy as np
    import pandas as pd
    from ase.build import molecule

    from paceui.cli import main
    from paceui.data.io import save_dataframe
    from paceui.fit.recipe import REACH_MARGIN

    rng = np.random.default_rng(1)
    mols = []
    for k in range(6):
        m = molecule("CH3CH2OH")
        m.rattle(0.05, seed=k)
        mols.append(m)
    df = pd.DataFrame({"ase_atoms": mols, "energy": rng.normal(size=6) - 40.0,
                       "forces": [rng.normal(size=(9, 3)) for _ in mols]})
    save_dataframe(df, tmp_path / "ethanol.pckl.gzip")
    farthest = np.concatenate([m.get_all_distances().max(axis=1) for m in mols])
    rc = round(float(np.median(farthest)) + REACH_MARGIN, 1)
    s = summarize(mols)
    assert math.isnan(s.density) and s.neighbours == 8 and cutoff_for(s) == rc
    assert pass_seconds(BASIS_LADDER[0], s) < pass_seconds(BASIS_LADDER[0], DataSummary(
        s.elements, 6, 54, density=0.08, nn_distance=1.0))   # 58 neighbours cost more than 8
    out = tmp_path / "input.yaml"
    assert main(["recipe", str(tmp_path / "ethanol.pckl.gzip"), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "no periodic structure" in said and f"cutoff {rc:g} Å" in said
    cfg = InputConfig.from_file(out)
    assert cfg.cutoff == rc and cfg.data["filename"] == "ethanol.pckl.gzip" and cfg.potential["elements"] == \
        ["C", "H", "O"]


def test_molecules_in_boxes_are_sized_as_molecules_and_partly_periodic_cells_refused():
    """DFT codes that need a cell write molecules in boxes (pbc on, a density of vacuum): they are found by
    their bonds (no chain reaches an image) and get the molecules' cutoff, also when a molecule straddles a
    face of the box; crystals are not in a box; a slab (pbc [T, T, F]) is refused by name, as paceui fit
    refuses it."""
    from ase.build import fcc111, molecule

    from paceui.fit.recipe import in_a_box

    free, boxed = [], []
    for k in range(5):
        m = molecule("CH3CH2OH")
        m.rattle(0.05, seed=k)
        free.append(m.copy())
        m.set_cell([10.0, 10.0, 10.0])
        m.pbc = True
        m.center()
        m.positions += [5.0, 0.0, 0.0]   # across the x face, then wrapped: bonds cross the boundary
        m.wrap()
        boxed.append(m)
    assert all(in_a_box(m) for m in boxed)
    assert not any(in_a_box(a) for a in (bulk("Cu"), bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3),
                                         bulk("Si", "diamond", a=5.43)))
    s_free, s_boxed = summarize(free), summarize(boxed)
    assert math.isnan(s_boxed.density) and s_boxed.reach == pytest.approx(s_free.reach, abs=1e-9)
    assert cutoff_for(s_boxed) == cutoff_for(s_free)
    with pytest.raises(ValueError, match=r"structure 1 has pbc \[True, True, False\]"):
        summarize([bulk("Cu", "fcc", a=3.6, cubic=True), fcc111("Cu", (2, 2, 3), vacuum=5.0)])


def test_a_large_cluster_gets_the_sphere_of_its_58_nearest_atoms():
    """A non-periodic cluster of more than 58 atoms: an atom's reach is its distance to the 58th nearest
    neighbour (no margin: the density rule's sphere), from at most 256 evenly spaced atoms, equal to the sorted
    full distance matrix's column 58 for those atoms; the cutoff is the median reach, at most ``SHELL_CAP`` ×
    the median distance to the 4th nearest."""
    import numpy as np
    from ase.cluster import Octahedron

    from paceui.fit.recipe import SHELL_CAP, cluster_reach

    c = Octahedron("Cu", 12)   # 1156 atoms, fcc a = 3.61 Å
    r = cluster_reach(c)
    full = np.sort(c.get_all_distances(), axis=1)[:, int(NEIGHBOURS)]
    assert len(r) == len(full[::5]) <= 256 and np.allclose(r, full[::5], rtol=0, atol=1e-12)
    s = summarize([c])
    # fcc shells hold 12, 6, 24, 12, 24 atoms: an interior atom's 58th neighbour is in the fifth, a·√(5/2)
    assert float(np.median(r)) == pytest.approx(3.61 * math.sqrt(2.5), abs=1e-9)   # 5.71 Å
    # ... and its 4th in the first, a/√2: the cap 2.2 × 2.55 Å binds
    d4 = np.sort(c.get_all_distances(), axis=1)[::5, 4]
    assert s.neighbours == NEIGHBOURS and s.reach == pytest.approx(SHELL_CAP * float(np.median(d4)), abs=1e-9)
    assert cutoff_for(s) == round(SHELL_CAP * 3.61 / math.sqrt(2), 1) == 5.6


def test_paceui_recipe_errors_name_the_file_once(tmp_path, capsys):
    from paceui.cli import main

    assert main(["recipe", str(tmp_path / "missing.xyz")]) == 1
    assert capsys.readouterr().err.strip() == f"paceui recipe: error: data file not found: {tmp_path / 'missing.xyz'}"
    (tmp_path / "bad.xyz").write_text("not a structure\n")
    assert main(["recipe", str(tmp_path / "bad.xyz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"paceui recipe: error: {tmp_path / 'bad.xyz'}: ase.io.read could not read it")
    assert err.count("bad.xyz") == 1 and "\n" not in err
    (tmp_path / "bad.pckl.gzip").write_bytes(b"not a pickle")
    assert main(["recipe", str(tmp_path / "bad.pckl.gzip")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("bad.pckl.gzip") == 1 and "not a readable pandas pickle" in err
    with pytest.raises(ValueError, match="two atoms"):
        summarize([Atoms("Cu")])   # an isolated atom alone: no distance to size the cutoff by


AL_CLUSTERS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "datasets" / \
    "df-FHI-aims_PBE_tight-Al-ref.pckl.gzip"


@pytest.mark.skipif(not AL_CLUSTERS.exists(), reason="../shared/reference (pyace's FHI-aims Al clusters) absent")
def test_metal_clusters_of_tens_of_atoms_are_capped_by_the_first_shell():
    """pyace's FHI-aims Al clusters (19–54 atoms and isolated atoms): seeing across a whole cluster would take
    12.9 Å; the first-shell cap gives 6.7 Å (bulk Al by the density rule: about 6 Å)."""
    from paceui.data.io import load_dataframe
    from paceui.fit.recipe import SHELL_CAP

    s = summarize(list(load_dataframe(AL_CLUSTERS)["ase_atoms"]))
    assert math.isnan(s.density) and cutoff_for(s) == 6.7
    assert s.reach == pytest.approx(SHELL_CAP * 3.05, abs=0.05)   # the median 4th-nearest distance ≈ 3.05 Å
