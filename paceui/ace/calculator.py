"""ASE calculator for ACE potentials: energy (eV), energies, forces (eV/Å), stress (eV/Å³), γ.

With an active set (``.asi``, shared/spec/active_learning.md §3) it also gives the per-atom
extrapolation grade ``results["gamma"]`` and its maximum ``results["max_gamma"]``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from paceui.ace.ctilde import CTildePotential
from paceui.ace.evaluator import ACEModel
from paceui.ace.potential import ACEPotential
from paceui.errors import ExtrapolationError

__all__ = ["ACECalculator", "ExtrapolationError", "ExtrapolationWarning"]


class ExtrapolationWarning(UserWarning):
    """max γ of a structure exceeds ``gamma_upper_bound``."""


class ACECalculator(Calculator):
    """Evaluate a pacemaker ``.yaml``/``.yace`` potential (a path, a loaded potential or an ACEModel).

    ``spline=True`` (default) tabulates the radial functions as pyace and LAMMPS do; stress is
    provided for cells periodic in all three directions. ``active_set`` (a ``.asi`` path or an
    :class:`~paceui.ace.activeset.ActiveSet`, B-basis potentials only) adds γ; a structure with
    max γ > ``gamma_upper_bound`` gives an :class:`ExtrapolationWarning`, or raises
    :class:`ExtrapolationError` with ``stop_at_large_extrapolation=True``. With
    ``keep_extrapolative_structures`` the structures with max γ > ``gamma_lower_bound`` are kept
    (copies, γ in ``info["gamma"]``) in ``extrapolative_structures``.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, potential: str | os.PathLike[str] | ACEPotential | CTildePotential | ACEModel,
                 spline: bool = True, active_set: Any = None, gamma_lower_bound: float = 1.1,
                 gamma_upper_bound: float = 5.0, stop_at_large_extrapolation: bool = False,
                 keep_extrapolative_structures: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = potential if isinstance(potential, ACEModel) else ACEModel(potential, spline=spline)
        if gamma_upper_bound < gamma_lower_bound:
            raise ValueError(f"gamma_upper_bound {gamma_upper_bound} < gamma_lower_bound {gamma_lower_bound}")
        self.gamma_lower_bound = float(gamma_lower_bound)
        self.gamma_upper_bound = float(gamma_upper_bound)
        self.stop_at_large_extrapolation = bool(stop_at_large_extrapolation)
        self.keep_extrapolative_structures = bool(keep_extrapolative_structures)
        self.extrapolative_structures: list[Any] = []
        self.active_set = None
        if active_set is not None:
            self.set_active_set(active_set)

    def set_active_set(self, active_set: Any) -> None:
        """Load an ``.asi`` (or take an ActiveSet) and check it against the potential."""
        from paceui.ace.activeset import ActiveSet

        if not isinstance(active_set, ActiveSet):
            active_set = ActiveSet.load(active_set, potential=self.model)
        else:
            active_set.check(self.model)
        self.active_set = active_set
        if "gamma" not in self.implemented_properties:
            self.implemented_properties = [*self.implemented_properties, "gamma", "max_gamma"]

    def calculate(self, atoms: Any = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        res = self.model.evaluate(self.atoms)
        self.results = {"energy": res.energy, "free_energy": res.energy, "energies": res.energies,
                        "forces": res.forces}
        if res.stress is not None:
            self.results["stress"] = res.stress
        if self.active_set is not None:
            self._gamma()

    def _gamma(self) -> None:
        from paceui.ace.activeset import structure_gamma

        assert self.active_set is not None
        g = structure_gamma(self.model, self.active_set, [self.atoms])[0]
        gmax = float(g.max()) if len(g) else 0.0
        self.results["gamma"] = g
        self.results["max_gamma"] = gmax
        if self.keep_extrapolative_structures and gmax > self.gamma_lower_bound:
            a = self.atoms.copy()
            a.info["gamma"] = gmax
            a.arrays["gamma"] = np.asarray(g)
            self.extrapolative_structures.append(a)
        if gmax > self.gamma_upper_bound:
            msg = (f"extrapolation: max γ = {gmax:.4g} (atom {int(np.argmax(g))}) exceeds gamma_upper_bound "
                   f"{self.gamma_upper_bound:g}: the potential is unreliable for this structure")
            if self.stop_at_large_extrapolation:
                raise ExtrapolationError(msg)
            warnings.warn(msg, ExtrapolationWarning, stacklevel=3)
