"""ASE calculator for ACE potentials: energy (eV), energies, forces (eV/Å), stress (eV/Å³)."""

from __future__ import annotations

import os
from typing import Any

from ase.calculators.calculator import Calculator, all_changes

from paceui.ace.ctilde import CTildePotential
from paceui.ace.evaluator import ACEModel
from paceui.ace.potential import ACEPotential


class ACECalculator(Calculator):
    """Evaluate a pacemaker ``.yaml``/``.yace`` potential (a path, a loaded potential or an ACEModel).

    ``spline=True`` (default) tabulates the radial functions as pyace and LAMMPS do; stress is
    provided for cells periodic in all three directions.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, potential: str | os.PathLike[str] | ACEPotential | CTildePotential | ACEModel,
                 spline: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = potential if isinstance(potential, ACEModel) else ACEModel(potential, spline=spline)

    def calculate(self, atoms: Any = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        res = self.model.evaluate(self.atoms)
        self.results = {"energy": res.energy, "free_energy": res.energy, "energies": res.energies,
                        "forces": res.forces}
        if res.stress is not None:
            self.results["stress"] = res.stress
