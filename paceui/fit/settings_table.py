"""The one table of settings: every key of input.yaml's ``fit:``, ``fit.loss:`` and ``backend:`` sections, the
changeable ``data:`` keys, the cutoff and the session options, each with its place, type, default, unit, the
effect of changing it in a session, and the label and help the front ends show.

Derived from it: the key sets that input.yaml is checked against (:mod:`paceui.fit.config`), what
``Session.change_settings`` accepts, where each key lives and what a change does
(:func:`paceui.session.settings.plan_change`, docs/session.md (S7)), the TUI's Setup fields and the
notebook's settings form. Adding a setting is one row here (and its use).

>>> setting("kappa").path, setting("kappa").effect.kind
('fit.loss.kappa', 'restart')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

REQUIRED = "required"
"""The default of a key input.yaml must give (the cutoff)."""
KINDS = ("none", "rebuild", "restart", "data", "neighbors")
"""Effect kinds, weakest first (docs/session.md (S7))."""


@dataclass(frozen=True)
class Effect:
    """What a change of a setting does to a session: ``kind`` (one of :data:`KINDS`), the sentence the change
    report gives, and what it invalidates."""

    kind: str
    text: str
    invalidates: tuple[str, ...] = ()


_RESTART = "the optimizer restarts (a new cycle) from the current parameters"
LOSS = Effect("restart", f"the loss changes: {_RESTART}; loss values before and after the change are not comparable",
              ("optimizer state",))
RESTART = Effect("restart", _RESTART, ("optimizer state",))
TRAINABLE = Effect("restart", f"the set of trained parameters changes: {_RESTART}", ("optimizer state",))
MAXITER = Effect("rebuild", "the current cycle goes on under the new iteration limit (optimizer state kept)")
CYCLES = Effect("none", "the current and later ladder steps run this many cycles")
NEXT_CYCLE = Effect("none", "applies from the next cycle")
STOPPING = Effect("none", "early stopping checks use it from the next iteration")
NEXT_STEP = Effect("none", "applies from the next ladder step")
WEIGHTING = Effect("data", f"the dataset is prepared again (weights and selected structures); {_RESTART}; "
                   "metrics before and after are not comparable", ("data weights", "optimizer state"))
DATA = Effect("data", f"the dataset is prepared again (split, reference energies, weights); {_RESTART}; "
              "metrics before and after are not comparable", ("train/test split", "data weights", "optimizer state"))
WEIGHT_FACTORS = Effect("data", f"per-structure weights change (weights normalised again); {_RESTART}",
                        ("data weights", "optimizer state"))
CUTOFF = Effect("neighbors", f"the radial cutoff rcut of every bond changes and the neighbour lists are rebuilt "
                f"(from the cache when possible); {_RESTART}", ("neighbour lists", "radial basis", "optimizer state"))
DISPLAY = Effect("none", "test metrics every display_step iterations from now on")
BACKEND = Effect("rebuild", "the evaluator is built again (numba in this process, or Dask workers that load the "
                 "shards); the fit goes on from the same parameters and optimizer state")
WARM_START = Effect("restart", "on: a new cycle starts from the linear solve of the current basis (first-density "
                    "coefficients solved, other densities 0, radial coefficients as they are); off: a new cycle "
                    "from the current parameters", ("optimizer state",))
AUTOSAVE = Effect("none", "autosave interval from now on (0: only on pause, stop and finish)")


@dataclass(frozen=True)
class Setting:
    """One setting. ``path``: where it lives, dotted (``fit.loss.kappa``; ``options.*`` are session options,
    saved with the session, not in input.yaml). ``kind``: float, int, value (a number, list, mapping or word),
    bool, choice (one of ``choices``) or combo (``choices`` suggested, any text); a trailing ``?``: empty means
    None. ``effect``: what a change does in a session; None when it is fixed for a session (``fixed`` says why).
    ``label``: the form label (empty: not in the front ends' forms); ``section``: the form section."""

    path: str
    kind: str
    default: Any
    effect: Effect | None
    label: str = ""
    section: str = ""
    unit: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    fixed: str = ""

    @property
    def key(self) -> str:
        """The name ``change_settings`` takes (the last part of the path)."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def section_path(self) -> str:
        """The input.yaml section holding it (``fit.loss``, ``fit``, ``backend``, ``data``, ``options``; '' top)."""
        return self.path.rpartition(".")[0]


_BASIS_FIXED = "the basis is fixed for a session: create a new session for another basis"
_DATA_FIXED = "the dataset is fixed for a session: create a new session for other data"
_L, _O, _S, _D, _B = "Loss", "Optimizer", "Ladder & stopping", "Data", "Backend"

SETTINGS: tuple[Setting, ...] = (
    # fit.loss: the weights of the loss (docs/loss.md)
    Setting("fit.loss.kappa", "value", 0.0, LOSS, "κ (force vs energy)", _L,
            help="0: energies only, 1: forces only, or 'auto'"),
    Setting("fit.loss.L1_coeffs", "float", 0.0, LOSS, "L1 coefficients", _L),
    Setting("fit.loss.L2_coeffs", "float", 0.0, LOSS, "L2 coefficients", _L),
    Setting("fit.loss.w0_rad", "float", 0.0, LOSS, "w0 radial smoothness", _L),
    Setting("fit.loss.w1_rad", "float", 0.0, LOSS, "w1 radial smoothness", _L),
    Setting("fit.loss.w2_rad", "float", 0.0, LOSS, "w2 radial smoothness", _L),
    Setting("fit.loss.w_orth", "float", 0.0, LOSS, "orthogonality", _L),
    Setting("fit.loss.stress", "float", 0.0, LOSS, help="λ_σ: weight of the stress term (0: pacemaker's loss)"),
    Setting("fit.loss.w1_coeffs", "float", 0.0, None, fixed="accepted as in pacemaker's template; no effect"),
    Setting("fit.loss.w2_coeffs", "float", 0.0, None, fixed="accepted as in pacemaker's template; no effect"),
    # fit
    Setting("fit.optimizer", "combo", "BFGS", RESTART, "optimizer", _O, choices=("BFGS", "L-BFGS-B", "CG", "Adam",
                                                                                   "SGD")),
    Setting("fit.warm_start", "choice", None, WARM_START, "linear warm start", _O,
            choices=("none", "bayesian_ridge", "linear", "ard"),
            help="start a non-linear fit from the linear solve of its first density (paceui; none: pacemaker's "
                 "start)"),
    Setting("fit.maxiter", "int", 100, MAXITER, "max iterations per cycle", _O),
    Setting("fit.fit_cycles", "int", 1, CYCLES, "fit cycles", _O),
    Setting("fit.options", "value?", None, RESTART, "optimizer options", _O, help="a mapping, e.g. {gtol: 1e-8}"),
    Setting("fit.options.kappa_grid", "value?", None, RESTART, "κ grid (linear solves)", _O,
            help="linear solves only: every κ of the list is solved from one assembly and the one with the smallest "
                 "validation energy MAE × force MAE kept, e.g. [0.01, 0.1, 0.5]; needs a test split"),
    Setting("fit.options.refit_all", "bool", False, RESTART, "refit on train + validation", _O,
            help="with kappa_grid: solve once more at the chosen κ on the training and validation data together "
                 "(the potential written; the κ table keeps the training-only validation errors)"),
    Setting("fit.trainable_parameters", "value", "ALL", TRAINABLE, "trainable parameters", _O,
            help="ALL, func, radial, …"),
    Setting("fit.noise_relative_sigma", "float", 0.0, NEXT_CYCLE, "noise σ (relative) per cycle", _O),
    Setting("fit.noise_absolute_sigma", "float", 0.0, NEXT_CYCLE, "noise σ (absolute) per cycle", _O),
    Setting("fit.randomize_func_coeffs", "float", 0.0, NEXT_CYCLE),
    Setting("fit.ladder_step", "value?", None, NEXT_STEP, "ladder step", _S,
            help="functions per step: N, fraction, or a list; empty: no ladder"),
    Setting("fit.ladder_type", "choice", "body_order", NEXT_STEP, "ladder type", _S,
            choices=("body_order", "power_order")),
    Setting("fit.min_relative_train_loss_per_iter", "float?", None, STOPPING, "min. relative train-loss gain", _S),
    Setting("fit.min_relative_test_loss_per_iter", "float?", None, STOPPING, "min. relative test-loss gain", _S),
    Setting("fit.early_stopping_patience", "int", 200, STOPPING, "early-stopping patience", _S),
    Setting("fit.repulsion", "value?", None, None, fixed="the core repulsion is chosen when the session is created"),
    Setting("fit.callbacks", "value?", (), None, fixed="callbacks are fixed when the session is created"),
    # top level and data
    Setting("cutoff", "float", REQUIRED, CUTOFF, "cutoff (Å)", _D, unit="Å"),
    Setting("seed", "int", 42, None, fixed="the seed is fixed for a session (split and weights depend on it)"),
    Setting("metadata", "value?", None, None, fixed="metadata are written when the session is created"),
    Setting("potential", "value", REQUIRED, None, fixed=_BASIS_FIXED),
    Setting("potential.elements", "value", REQUIRED, None,
            fixed="the basis is fixed for a session: create a new session for other elements"),
    Setting("data.filename", "value", REQUIRED, None, fixed=_DATA_FIXED),
    Setting("data.test_filename", "value?", None, None, fixed=_DATA_FIXED),
    Setting("data.test_size", "value?", None, DATA, "test size", _D, help="fraction or number of structures"),
    Setting("data.reference_energy", "value?", None, DATA, "reference energy", _D,
            help="auto, a number (eV) or {Cu: eV}"),
    Setting("data.aug_factor", "float", 1e-4, DATA, "augmentation factor", _D),
    Setting("data.ignore_weights", "bool", False, DATA, "ignore weights in the data", _D),
    Setting("fit.weighting", "value?", None, WEIGHTING, "weighting", _D, help="pacemaker's weighting mapping"),
    Setting("data.group_weights", "value?", None, DATA, help="{group: {energy, forces, stress: factor}}"),
    Setting("data.split_by_group", "bool", False, DATA, help="test_size drawn within every group"),
    Setting("data.group_key", "value", "config_type", DATA, help="column / info key naming each structure's group"),
    Setting("data.group_patterns", "value?", None, DATA, help="{regex on name: group}, before group_key"),
    # backend
    Setting("backend.evaluator", "choice", "numba", BACKEND, "evaluator", _B, choices=("numba", "dask")),
    Setting("backend.scheduler", "value?", None, BACKEND, "Dask scheduler address", _B,
            help="empty: a local cluster"),
    Setting("backend.n_workers", "int?", None, BACKEND, "Dask workers", _B),
    Setting("backend.threads_per_worker", "int?", None, BACKEND, "threads per worker", _B),
    Setting("backend.shard_dir", "value?", None, BACKEND, help="a folder every Dask worker can read"),
    Setting("backend.display_step", "int", 20, DISPLAY, "test metrics every N iterations", _B),
    Setting("backend.imagetype", "value", "png", None, fixed="the report's image type is fixed for a session"),
    # session options (saved with the session)
    Setting("options.autosave_every", "int", 20, AUTOSAVE, "autosave every N iterations", "Session",
            help="0: only on pause and stop"),
    Setting("options.weight_factors", "value", {}, WEIGHT_FACTORS, help="{structure name: factor}"),
)

_BY_KEY = {s.key: s for s in SETTINGS}
assert len(_BY_KEY) == len(SETTINGS), "two settings share a key"


def setting(key: str) -> Setting:
    """The setting called ``key`` (KeyError otherwise)."""
    return _BY_KEY[key]


def keys_in(section: str) -> set[str]:
    """The keys of input.yaml section ``section`` (``fit``, ``fit.loss``, ``backend``, ...)."""
    return {s.key for s in SETTINGS if s.section_path == section}


def changeable() -> tuple[Setting, ...]:
    """The settings a session can change (those with an effect), in table order."""
    return tuple(s for s in SETTINGS if s.effect is not None)


def form_settings() -> tuple[Setting, ...]:
    """The settings the front ends' forms show (those with a label), in table order."""
    return tuple(s for s in SETTINGS if s.label and s.effect is not None)


def current_value(row: Setting, settings: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    """The value of ``row`` in a session's settings (pacemaker input) or options; None when it is not set."""
    parts = row.path.split(".")
    where: Any = options if parts[0] == "options" else settings
    for part in parts[1:-1] if parts[0] == "options" else parts[:-1]:
        where = where.get(part) if isinstance(where, Mapping) else None
    return where.get(parts[-1]) if isinstance(where, Mapping) else None
