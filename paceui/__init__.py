"""paceui: an interactive workbench for fitting Atomic Cluster Expansion (ACE) potentials."""

from paceui.ace import (
    ACECalculator,
    ACEModel,
    ACEPotential,
    PotentialError,
    load_potential,
    load_yace,
    save_potential,
    save_yace,
)

__version__ = "0.1.0"

__all__ = ["ACECalculator", "ACEModel", "ACEPotential", "PotentialError", "__version__", "load_potential",
           "load_yace", "save_potential", "save_yace"]
