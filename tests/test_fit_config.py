"""pacemaker input files are accepted unchanged; typos are refused with file and key."""

from __future__ import annotations

import pytest

from paceui.fit.config import InputConfig, InputError
from tests.conftest import REFERENCE, need_reference


def test_every_reference_input_parses():
    need_reference()
    files = sorted(p for p in (REFERENCE / "inputs").glob("*.yaml") if "template" not in p.name)
    assert len(files) >= 8
    for f in files:
        cfg = InputConfig.from_file(f)
        assert cfg.cutoff > 0 and cfg.fit.maxiter >= 0
        assert cfg.backend.evaluator == "numba"  # tensorpot / pyace map to the numba engine


def test_values_and_defaults(reference):
    cfg = InputConfig.from_file(REFERENCE / "inputs" / "testCLI_Cu-I_input.yaml")
    assert cfg.fit.loss["kappa"] == "auto"
    assert cfg.fit.loss["L1_coeffs"] == 1e-8  # YAML 1.1 reads 1e-8 as a string
    assert cfg.fit.min_relative_train_loss_per_iter == 5e-5
    assert cfg.fit.early_stopping_patience == 10
    assert cfg.backend.display_step == 10
    eth = InputConfig.from_file(REFERENCE / "inputs" / "examples_Ethanol_input.yaml")
    assert eth.fit.ladder and eth.fit.ladder_step == 15 and eth.fit.fit_cycles == 2
    assert InputConfig.from_dict({"cutoff": 5, "potential": "p.yaml", "data": "d"}).fit.optimizer == "BFGS"


@pytest.mark.parametrize("d,words", [
    ({"potential": {}, "data": {}}, ["cutoff"]),
    ({"cutoff": 5, "potential": {}, "data": {}, "fitt": {}}, ["fitt"]),
    ({"cutoff": 5, "potential": {}, "data": {}, "fit": {"maxiters": 3}}, ["maxiters"]),
    ({"cutoff": 5, "potential": {}, "data": {}, "fit": {"loss": {"kapa": 0.1}}}, ["kapa"]),
    ({"cutoff": 5, "potential": {}, "data": {}, "fit": {"loss": {"kappa": "x"}}}, ["kappa"]),
    ({"cutoff": 5, "potential": {}, "data": {}, "fit": {"ladder_type": "random"}}, ["ladder_type"]),
    ({"cutoff": 5, "potential": {}, "data": {}, "backend": {"evaluator": "gpu"}}, ["evaluator"]),
])
def test_bad_inputs_name_the_key(d, words):
    with pytest.raises(InputError) as exc:
        InputConfig.from_dict(d, source="my_input.yaml")
    assert "my_input.yaml" in str(exc.value)
    for w in words:
        assert w in str(exc.value)


def test_command_line_overrides():
    cfg = InputConfig.from_dict({"cutoff": 5, "potential": {"elements": ["Cu"]}, "data": {"filename": "a"}})
    o = cfg.with_overrides(initial_potential="start.yaml", data="b.pckl.gzip")
    assert o.potential["initial_potential"] == "start.yaml" and o.data == {"filename": "b.pckl.gzip"}
    assert cfg.potential == {"elements": ["Cu"]}  # the original is untouched
    assert cfg.with_overrides(potential="x.yaml").potential == "x.yaml"
    with pytest.raises(InputError):
        cfg.with_overrides(potential="x.yaml").with_overrides(initial_potential="y.yaml")
