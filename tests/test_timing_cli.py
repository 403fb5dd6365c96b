"""``paceui timing``: µs/atom of energy+forces on pace_timing's random cells, driven through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paceui.ace.timing import random_cells
from paceui.cli import main
from tests.conftest import POTENTIALS


def test_random_cells_are_pace_timing_cells():
    cells = random_cells(3, 4, seed=1)
    assert [c.lattice for c in cells] == ["fcc", "bcc", "fcc", "bcc"]
    assert [len(c.species) for c in cells] == [32, 16, 32, 16]
    for c in cells:
        assert 3.5 <= c.a <= 4.5
        assert np.allclose(c.cell, np.eye(3) * 2 * c.a)
        assert set(c.species.tolist()) <= {0, 1, 2}
        d = np.linalg.norm(c.positions[:, None] - c.positions[None], axis=-1)[np.triu_indices(len(c.species), 1)]
        assert d.min() > 0.5  # 0.1 Å noise on a lattice of >= 3.03 Å nearest-neighbour distance
    with pytest.raises(ValueError, match="nstructures"):
        random_cells(1, 0)


def test_timing_cli_json_and_table(reference, capsys):
    pot = str(POTENTIALS / "multispecies_AlNi.yaml")
    assert main(["timing", pot, "-n", "2", "--repeat", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["elements"] == ["Al", "Ni"] and out["structures"] == 2 and out["atoms"] == 48
    threads = [t["threads"] for t in out["timings"]]
    assert threads[0] == 1 and threads == sorted(set(threads))
    for t in out["timings"]:
        vals = [t["min_us_per_atom"], t["median_us_per_atom"], t["max_us_per_atom"]]
        assert all(math.isfinite(v) and v > 0 for v in vals)
        assert vals == sorted(vals)
    assert main(["timing", pot, "-n", "1", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "1 random fcc/bcc 2x2x2 cells (32 atoms)" in lines[0]
    assert lines[1].split()[:2] == ["threads", "µs/atom"]
    assert int(lines[2].split()[0]) == 1 and float(lines[2].split()[1]) > 0


def test_timing_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["timing", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("paceui timing: error:") and "missing.yaml" in err[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("just: [a, list\n")
    assert main(["timing", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml" in err[0]
    for arg in ("0", "x"):
        with pytest.raises(SystemExit) as exc:
            main(["timing", str(bad), "-n", arg])
        assert exc.value.code == 2
        assert "-n/--nstructures" in capsys.readouterr().err
