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
from paceui.errors import PaceuiError

__version__ = "0.1.0"

__all__ = ["ACECalculator", "ACEModel", "ACEPotential", "PaceuiError", "PotentialError", "Session", "__version__",
           "load_potential", "load_yace", "save_potential", "save_yace"]


def __getattr__(name: str) -> object:
    """``paceui.Session`` is imported on first use (it pulls in the data and fit layers)."""
    if name == "Session":
        from paceui.session import Session

        return Session
    raise AttributeError(f"module 'paceui' has no attribute {name!r}")
