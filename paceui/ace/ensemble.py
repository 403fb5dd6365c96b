"""Ensemble calculator: mean and standard deviation of E, F, σ over several potentials.

The spread of the members (e.g. the ``ensemble_potential_*.yaml`` that fits with
``randomize_func_coeffs`` cycles write) is a second, cheap uncertainty measure
(shared/spec/active_learning.md §7). Standard deviations are population std (ddof=0) over members.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from paceui.ace.ctilde import CTildePotential
from paceui.ace.evaluator import ACEModel
from paceui.ace.potential import ACEPotential

Member = str | os.PathLike[str] | ACEPotential | CTildePotential | ACEModel


class EnsembleCalculator(Calculator):
    """ASE calculator over potentials: ``energy``/``forces``/``stress`` are the ensemble means.

    Extra results: ``energy_std`` (eV), ``energies_std`` (eV per atom), ``forces_std`` (N×3, eV/Å),
    ``force_std_per_atom`` (N, eV/Å: √(Σ_a var F_ia)), ``max_force_std`` (eV/Å), ``stress_std``
    (eV/Å³), and the members' values ``energy_members``, ``forces_members``.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, potentials: Sequence[Member], spline: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(potentials) < 2:
            raise ValueError(f"an ensemble needs at least 2 potentials, got {len(potentials)}")
        self.models = [p if isinstance(p, ACEModel) else ACEModel(p, spline=spline) for p in potentials]
        els = [sorted(m.elements) for m in self.models]
        if any(e != els[0] for e in els[1:]):
            raise ValueError(f"ensemble members describe different elements: {els}")

    def calculate(self, atoms: Any = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        res = [m.evaluate(self.atoms) for m in self.models]
        E = np.array([r.energy for r in res])
        Ei = np.array([r.energies for r in res])
        F = np.array([r.forces for r in res])
        fstd = F.std(axis=0)
        per_atom = np.sqrt((F.var(axis=0)).sum(axis=1))
        self.results = {
            "energy": float(E.mean()), "free_energy": float(E.mean()), "energies": Ei.mean(axis=0),
            "forces": F.mean(axis=0), "energy_std": float(E.std()), "energies_std": Ei.std(axis=0),
            "forces_std": fstd, "force_std_per_atom": per_atom,
            "max_force_std": float(per_atom.max()) if len(per_atom) else 0.0,
            "energy_members": E, "forces_members": F,
        }
        if all(r.stress is not None for r in res):
            S = np.array([r.stress for r in res])
            self.results["stress"] = S.mean(axis=0)
            self.results["stress_std"] = S.std(axis=0)
