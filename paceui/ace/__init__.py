"""The ACE model: potentials, C-tilde conversion, numba evaluator and ASE calculator."""

from paceui.ace.calculator import ACECalculator
from paceui.ace.ctilde import CTildePotential, bbasis_to_ctilde
from paceui.ace.evaluator import ACEModel, EvalResult, load_any
from paceui.ace.potential import ACEPotential, BFunction, Bond, Embedding, PotentialError, SpeciesBlock
from paceui.ace.yace import load_yace, save_yace
from paceui.ace.yaml_io import load_potential, save_potential

__all__ = [
    "ACECalculator", "ACEModel", "ACEPotential", "BFunction", "Bond", "CTildePotential", "Embedding",
    "EvalResult", "PotentialError", "SpeciesBlock", "bbasis_to_ctilde", "load_any", "load_potential",
    "load_yace", "save_potential", "save_yace",
]
