"""The errors paceui raises on purpose: one tree under :class:`PaceuiError`.

Every message is one line that names the file, key, structure or command concerned, so a front end
can show it as it is (``paceui`` prints it and exits with status 1). Each error keeps the built-in base
it had before the tree existed (``ValueError`` or ``RuntimeError``), so ``except ValueError`` still
catches the input, potential and data errors::

    PaceuiError
    ├── InputError              input.yaml / settings that cannot be used
    │   ├── CallbackError       fit.callbacks entry that cannot be imported
    │   └── SettingsError       a settings change that cannot be applied
    ├── PotentialError          potential file or basis that cannot be read or is inconsistent
    ├── ActiveSetError          active set (.asi) that cannot be built or does not fit the potential
    ├── ExtrapolationError      max γ above the calculator's upper bound (when asked to stop)
    ├── DataError               dataset that cannot be used
    │   ├── DataValidationError structures rejected by validation
    │   ├── UnsafePickleError   pickle referencing a global outside the allow-list
    │   └── DatasetChangedError a session's source data file missing or changed
    ├── SessionError            session command that cannot be carried out now
    │   └── SessionFormatError  folder that is not a loadable session
    └── DistributedError        Dask cluster that could not evaluate the loss
"""

from __future__ import annotations


class PaceuiError(Exception):
    """Base of every error paceui raises on purpose; the message is one line meant for the user."""


class InputError(PaceuiError, ValueError):
    """Raised when an input.yaml (or a mapping in its place) cannot be used: unknown or ill-typed key,
    missing file; the message names the file and the key."""


class CallbackError(InputError):
    """Raised when a ``fit: callbacks:`` entry cannot be imported or is not callable."""


class SettingsError(InputError):
    """Raised by ``Session.change_settings`` / ``preview_settings`` for a change that cannot be applied;
    the message says which key and why (nothing has changed)."""


class PotentialError(PaceuiError, ValueError):
    """Raised when a potential file (``.yaml``, ``.yace``) or a ``potential:`` basis specification cannot
    be read or is inconsistent; the message names the file (or section) and the field."""


class DataError(PaceuiError, ValueError):
    """Raised when a dataset cannot be used as given; the message names the file or the structures."""


class DataValidationError(DataError):
    """Raised when validation rejects the dataset: required columns missing, no structure left, forces
    of the wrong shape; the message names the structures."""


class UnsafePickleError(DataError):
    """Raised when a pickled dataset references a global outside the allow-list (it was not loaded)."""


class DatasetChangedError(DataError, RuntimeError):
    """Raised when a session is (re)prepared and a source file of its dataset is missing or differs from
    the one the session was made from."""


class SessionError(PaceuiError, RuntimeError):
    """Raised when a session command cannot be carried out now (the phase does not allow it, a
    command is pending, the session is closed); the message says why."""


class SessionFormatError(SessionError, ValueError):
    """Raised by ``Session.load`` for a folder that is not a loadable session (missing or corrupt files,
    newer format); the message says why and what to do."""


class DistributedError(PaceuiError, RuntimeError):
    """Raised when the Dask cluster cannot evaluate the loss (a shard lost and not rebuilt, no workers,
    an optimizer the Dask evaluator cannot serve); the fit state is unchanged and the fit can resume."""


class ActiveSetError(PaceuiError, ValueError):
    """Raised when an active set cannot be built (under-determined species, element without data) or an
    ``.asi`` does not fit the potential; the message names the element and the numbers."""


class ExtrapolationError(PaceuiError, RuntimeError):
    """Raised by ``ACECalculator(stop_at_large_extrapolation=True)`` when a structure's max γ exceeds
    ``gamma_upper_bound``; the message gives γ and the atom."""


__all__ = ["ActiveSetError", "CallbackError", "DataError", "DataValidationError", "DatasetChangedError",
           "DistributedError", "ExtrapolationError", "InputError", "PaceuiError", "PotentialError",
           "SessionError", "SessionFormatError", "SettingsError", "UnsafePickleError"]
