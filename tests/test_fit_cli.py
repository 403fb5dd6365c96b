"""``paceui fit`` on pacemaker's Cu-I example input, unchanged except maxiter."""

from __future__ import annotations

import shutil

import pytest

from paceui.ace.yaml_io import load_potential
from paceui.cli import main
from paceui.fit.metrics import read_metrics_file
from tests.conftest import REFERENCE, need_reference


@pytest.fixture
def cu_i(tmp_path, monkeypatch):
    need_reference()
    text = (REFERENCE / "inputs" / "examples_Cu-I_input.yaml").read_text()
    (tmp_path / "input.yaml").write_text(text.replace("maxiter: 1000", "maxiter: 2").replace("ladder_step: 15",
                                                                                             "ladder_step: 40"))
    shutil.copy(REFERENCE / "datasets" / "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip", tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dry_run_writes_target_and_data_info(cu_i):
    assert main(["fit", "input.yaml", "--dry-run"]) == 0
    target = load_potential(cu_i / "target_potential.yaml")
    assert len(target.functions()) == 82
    assert (cu_i / "fitting_data_info.pckl.gzip").exists() and (cu_i / "train_ef-distributions.png").exists()
    assert not (cu_i / "output_potential.yaml").exists()
    assert "Dry run" in (cu_i / "log.txt").read_text()


def test_full_run_writes_pacemaker_outputs(cu_i):
    assert main(["fit", "input.yaml", "-o", "pot.yaml"]) == 0
    for name in ("target_potential.yaml", "pot.yaml", "pot.yace", "log.txt", "metrics.txt", "cycle_metrics.txt",
                 "ladder_metrics.txt", "interim_potential_0.yaml", "train_pred.pckl.gzip",
                 "report/train_EF-pairplots.png"):
        assert (cu_i / name).exists(), name
    pot = load_potential(cu_i / "pot.yaml")
    assert len(pot.functions()) == 82  # ladder 40 + 40 + 2
    lad = read_metrics_file(cu_i / "ladder_metrics.txt")
    assert list(lad["nfuncs"]) == [40, 80, 82]
    assert lad["loss"].iloc[-1] < lad["loss"].iloc[0]
    log = (cu_i / "log.txt").read_text()
    assert "Iteration   #2 " in log and "Time/eval:" in log and "Fit stopped" in log
    assert "reference_energy" not in pot.metadata or pot.metadata["reference_energy"].startswith("{")


def test_missing_cutoff_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input.yaml").write_text("potential: p.yaml\ndata: d.pckl.gzip\n")
    assert main(["fit", "input.yaml"]) == 1
    assert "cutoff" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.yaml"]  # nothing written for a bad input


def test_a_distributed_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    from paceui.errors import DistributedError

    def fail(*a, **kw):
        raise DistributedError("shard 1 could not be rebuilt:\nno workers left")

    monkeypatch.setattr("paceui.fit.runner.run_fit", fail)
    assert main(["fit", "input.yaml"]) == 1
    err = capsys.readouterr().err
    assert err == "paceui fit: error: shard 1 could not be rebuilt: | no workers left\n"
