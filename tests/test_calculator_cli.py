"""The ASE calculator in real ASE workflows, and the paceui command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from paceui import ACECalculator, load_potential
from paceui.cli import main
from tests.conftest import POTENTIALS


def test_calculator_relaxes_and_conserves_energy_in_md(reference):
    at = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    at.rattle(0.05, seed=0)
    at.calc = ACECalculator(POTENTIALS / "Cu-I_active_learning.yaml")
    e0 = at.get_potential_energy()
    BFGS(at, logfile=None).run(fmax=1e-3, steps=200)
    assert np.abs(at.get_forces()).max() < 1e-3
    assert at.get_potential_energy() < e0
    assert at.get_stress().shape == (6,)
    at.rattle(0.1, seed=1)
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    MaxwellBoltzmannDistribution(at, temperature_K=300, rng=np.random.default_rng(0))
    etot = lambda: at.get_potential_energy() + at.get_kinetic_energy()  # noqa: E731
    start = etot()
    VelocityVerlet(at, timestep=1.0 * units.fs).run(50)
    assert abs(etot() - start) / len(at) < 2e-4  # eV/atom over 50 fs


def test_calculator_accepts_path_potential_and_model(reference):
    pot = load_potential(POTENTIALS / "ethanol.yaml")
    m = molecule("CH3CH2OH")
    energies = []
    for arg in (POTENTIALS / "ethanol.yaml", pot, ACECalculator(pot).model):
        m.calc = ACECalculator(arg)
        energies.append(m.get_potential_energy())
        assert m.get_potential_energies().sum() == pytest.approx(energies[-1], rel=1e-12)
    assert energies[0] == energies[1] == energies[2]
    with pytest.raises(PropertyNotImplementedError):
        m.get_stress()  # a molecule has no cell


def test_info_json_counts(reference, capsys):
    assert main(["info", "--json", str(POTENTIALS / "Cu-I_active_learning.yaml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["functions"] == 82
    assert info["functions_per_element_rank"]["Cu"] == {"1": 15, "2": 18, "3": 26, "4": 20, "5": 3} or \
        info["functions_per_element_rank"]["Cu"] == {1: 15, 2: 18, 3: 26, 4: 20, 5: 3}
    assert info["cutoff"] == 7.0 and info["bonds"]["Cu-Cu"]["inner_cutoff_type"] == "distance"


def test_yaml2yace_and_eval(reference, tmp_path, capsys):
    out = tmp_path / "p.yace"
    assert main(["yaml2yace", str(POTENTIALS / "multispecies_AlNi.yaml"), "-o", str(out)]) == 0
    assert out.exists()
    assert main(["info", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["functions"] > 0
    s = tmp_path / "s.extxyz"
    bulk("Al", "fcc", a=4.05).repeat((2, 2, 2)).write(s)
    assert main(["eval", "--json", str(out), str(s)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert np.isfinite(r["energy"]) and len(r["forces"]) == 8


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("global: {DeltaSplineBins: 0.001}\nspecies: []\n")
    p = subprocess.run([sys.executable, "-m", "paceui.cli", "info", str(bad)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "bad.yaml" in p.stderr and "Traceback" not in p.stderr
