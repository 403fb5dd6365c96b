"""The one settings table: the typed configs, input.yaml's key check, plan_change and both front ends' forms
agree with it."""

from __future__ import annotations

import dataclasses

import pytest

from paceui.data.prepare import DataConfig
from paceui.errors import SettingsError
from paceui.fit import config
from paceui.fit.config import BackendConfig, FitConfig, InputConfig
from paceui.fit.loss import LossConfig
from paceui.fit.settings_table import KINDS, REQUIRED, SETTINGS, changeable, current_value, form_settings, keys_in
from paceui.session import settings as session_settings


def _defaults(cls: type) -> dict[str, object]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = REQUIRED
    return out


@pytest.mark.parametrize("cls, section, extra", [
    (FitConfig, "fit", {"loss"}),            # fit.loss: a section of its own (LossConfig)
    (LossConfig, "fit.loss", set()),
    (BackendConfig, "backend", {"batch_size"}),  # pacemaker's TF batches: accepted, no effect (paceui._keys)
])
def test_dataclass_fields_and_defaults_are_the_tables(cls, section, extra):
    table = {s.key: s.default for s in SETTINGS if s.section_path == section}
    fields = _defaults(cls)
    assert set(fields) - extra <= set(table), f"{cls.__name__} fields missing from the settings table"
    for k in set(fields) - extra:
        assert fields[k] == table[k], f"{section}.{k}: dataclass default {fields[k]!r}, table {table[k]!r}"
    ignored = set(table) - set(fields)
    assert ignored <= {"w1_coeffs", "w2_coeffs"}  # accepted as in pacemaker's template, no effect


def test_data_and_top_level_defaults_are_the_tables():
    data = _defaults(DataConfig)
    for s in SETTINGS:
        if s.section_path == "data":
            assert data[s.key] == s.default, s.path
    top = _defaults(InputConfig)
    assert top["cutoff"] == REQUIRED and top["seed"] == 42
    assert {s.key: s.default for s in SETTINGS if s.key in ("cutoff", "seed")} == {"cutoff": REQUIRED, "seed": 42}


def test_input_key_sets_come_from_the_table():
    assert config.FIT_KEYS == keys_in("fit") | {"loss"}
    assert config.LOSS_KEYS == keys_in("fit.loss")
    assert config.BACKEND_KEYS == keys_in("backend")
    assert {"cutoff", "seed", "potential", "metadata"} <= config.TOP_KEYS
    with pytest.raises(config.InputError, match="fit: unknown key 'maxiters'; did you mean 'maxiter'"):
        config._fit({"maxiters": 3}, "in.yaml")


def test_every_changeable_setting_lands_at_its_path():
    """plan_change's routing is the table's path: each changeable key is written where the table says and
    read back from there by the front ends."""
    for row in changeable():
        new: dict = {"fit": {"loss": {}}, "data": {}}
        opts: dict = {}
        where = session_settings._place(row.key, new, opts)
        where[row.key] = "v"
        assert current_value(row, new, opts) == "v", row.path
        assert row.effect is not None and row.effect.kind in KINDS


def test_fixed_settings_are_refused_with_their_reason():
    s = {"cutoff": 5.0, "potential": "p.yaml", "data": {"filename": "x"}, "fit": {}}
    for row in SETTINGS:
        if row.effect is None:
            assert row.fixed, f"{row.path}: a fixed setting says why"
            with pytest.raises(SettingsError, match=f"{row.key} cannot be changed"):
                session_settings.plan_change(s, {}, {row.key: 1})
    with pytest.raises(SettingsError, match="unknown setting 'kapa'; did you mean 'kappa'"):
        session_settings.plan_change(s, {}, {"kapa": 1})


def test_report_takes_effects_from_the_table():
    s = {"cutoff": 5.0, "potential": "p.yaml", "data": {"filename": "x"}, "fit": {}}
    _, opts, report = session_settings.plan_change(s, {}, {"maxiter": 5, "autosave_every": 3})
    assert report.kind == "rebuild" and opts == {"autosave_every": 3}
    assert report.effects == tuple(r.effect.text for r in SETTINGS if r.key in ("maxiter", "autosave_every"))


def test_both_forms_are_the_tables_labelled_rows():
    pytest.importorskip("textual")
    pytest.importorskip("ipywidgets")
    from paceui.notebook.forms import FIELDS as notebook_fields
    from paceui.tui.pane_setup import FIELDS as tui_fields

    assert tuple(notebook_fields) == tuple(tui_fields) == form_settings()
    assert {f.key for f in form_settings()} >= {"kappa", "optimizer", "cutoff", "evaluator", "autosave_every"}


def test_kappa_grid_is_a_row_written_under_fit_options_and_checked():
    """``fit.options.kappa_grid`` (the linear solves' κ choice on the validation split) is changed like any
    setting: it lands under fit.options (also when input.yaml has ``options:`` empty), keeps the other
    options, and a bad grid is refused naming the key, in a session and in input.yaml."""
    s = {"cutoff": 5.0, "potential": "p.yaml", "data": {"filename": "x"},
         "fit": {"optimizer": "linear", "options": None}}
    new, _, report = session_settings.plan_change(s, {}, {"kappa_grid": [0.01, 0.1]})
    assert new["fit"]["options"] == {"kappa_grid": [0.01, 0.1]} and report.kind == "restart"
    s["fit"]["options"] = {"gtol": 1e-8}
    new, _, _ = session_settings.plan_change(s, {}, {"kappa_grid": (0.2,)})
    assert new["fit"]["options"] == {"gtol": 1e-8, "kappa_grid": [0.2]}
    for bad in ([0.0, 0.1], [1.5], [], "0.1", [True]):
        with pytest.raises(SettingsError, match=r"fit\.options\.kappa_grid must be a list of numbers in \(0, 1\)"):
            session_settings.plan_change(s, {}, {"kappa_grid": bad})
    with pytest.raises(config.InputError, match=r"in\.yaml: fit\.options\.kappa_grid must be"):
        config._fit({"optimizer": "linear", "options": {"kappa_grid": [2]}}, "in.yaml")
    assert config._fit({"optimizer": "linear", "options": {"kappa_grid": ["1e-3", 0.5]}}, "in.yaml").options
    s["fit"]["options"] = "gtol"
    with pytest.raises(SettingsError, match="kappa_grid: fit.options is 'gtol', not a mapping"):
        session_settings.plan_change(s, {}, {"kappa_grid": [0.1]})


def test_refit_all_is_a_row_under_fit_options_and_needs_a_kappa_grid():
    """``fit.options.refit_all`` (the final solve on training + validation at the chosen κ) lands under
    fit.options beside the grid; on without a grid, or not a boolean, is refused naming the key."""
    s = {"cutoff": 5.0, "potential": "p.yaml", "data": {"filename": "x"},
         "fit": {"optimizer": "bayesian_ridge", "options": {"kappa_grid": [0.01, 0.1]}}}
    new, _, report = session_settings.plan_change(s, {}, {"refit_all": True})
    assert new["fit"]["options"] == {"kappa_grid": [0.01, 0.1], "refit_all": True} and report.kind == "restart"
    s["fit"]["options"] = None
    with pytest.raises(SettingsError, match=r"fit\.options\.refit_all needs fit\.options\.kappa_grid"):
        session_settings.plan_change(s, {}, {"refit_all": True})
    assert session_settings.plan_change(s, {}, {"refit_all": False})[0]["fit"]["options"] == {"refit_all": False}
    with pytest.raises(config.InputError, match=r"in\.yaml: fit\.options\.refit_all must be true or false, got 'yes'"):
        config._fit({"optimizer": "linear", "options": {"kappa_grid": [0.1], "refit_all": "yes"}}, "in.yaml")
