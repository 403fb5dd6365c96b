"""paceui activeset / eval --active-set / select, driven as a user would (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np

from paceui.ace.activeset import ActiveSet, structure_gamma
from paceui.data.io import load_dataframe
from tests.conftest import POTENTIALS, REFERENCE, ROOT, need_reference
from tests.test_activeset import clusters


def paceui(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "paceui.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_activeset_eval_select(tmp_path):
    need_reference()
    pot = tmp_path / "AlNi.yaml"
    pot.write_text((POTENTIALS / "multispecies_AlNi.yaml").read_text())
    data = REFERENCE / "datasets" / "exmpl_df_AlNi.pckl.gzip"
    r = paceui("activeset", pot, "-d", data, "--memory-limit", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "AlNi.asi").exists()
    for el, size in (("Al", "9"), ("Ni", "8")):
        line = next(ln for ln in r.stdout.splitlines() if f" {el} " in ln)
        assert f" {size} " in line
    assert "time" in r.stdout and "written" in r.stdout
    aset = ActiveSet.load(tmp_path / "AlNi.asi", potential=pot)
    train = list(load_dataframe(data).ase_atoms)
    assert max(g.max() for g in structure_gamma(pot, aset, train)) <= 1.01 + 1e-9

    cands = clusters(["Al", "Ni"], 6, seed=3)
    ase.io.write(tmp_path / "cand.extxyz", cands)
    ase.io.write(tmp_path / "cand.traj", cands[:2])
    r = paceui("eval", pot, tmp_path / "cand.extxyz", "--active-set", tmp_path / "AlNi.asi", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    mine = structure_gamma(pot, aset, ase.io.read(tmp_path / "cand.extxyz", ":"))
    np.testing.assert_allclose([o["max_gamma"] for o in out], [g.max() for g in mine], rtol=1e-12)

    r = paceui("select", pot, tmp_path / "cand.extxyz", tmp_path / "cand.traj", "-a", tmp_path / "AlNi.asi",
               "-m", "3", "-o", tmp_path / "sel.extxyz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sel = ase.io.read(tmp_path / "sel.extxyz", ":")
    assert len(sel) == 3
    g = [a.info["gamma"] for a in sel]
    assert g == sorted(g, reverse=True) and g[0] > 1.01
    df = load_dataframe(tmp_path / "sel.pckl.gzip")
    assert list(df["gamma"]) == g and len(df) == 3


def test_cli_errors_are_one_line(tmp_path):
    need_reference()
    ase.io.write(tmp_path / "al.extxyz", clusters(["Al"], 2, seed=1))
    r = paceui("activeset", POTENTIALS / "multispecies_AlNi.yaml", "-d", tmp_path / "al.extxyz", cwd=tmp_path)
    assert r.returncode == 1 and "no atoms of element(s) Ni" in r.stderr and "Traceback" not in r.stderr
    r = paceui("eval", POTENTIALS / "multispecies_AlNi.yaml", tmp_path / "al.extxyz", "-a",
               POTENTIALS / "DFT10B-AgCu.asi", cwd=tmp_path)
    assert r.returncode == 1 and "no entry for element Al" in r.stderr


def test_output_paths_are_checked_before_any_work(tmp_path):
    """An -o that cannot be written is refused at once, naming the flag, and leaves nothing behind (the tests
    run as root, so unwritable means under a regular file or a folder in the file's place, not permissions)."""
    need_reference()
    ase.io.write(tmp_path / "c.extxyz", clusters(["Al", "Ni"], 2, seed=1))
    (tmp_path / "plain").write_text("a file, not a folder")
    (tmp_path / "dir").mkdir()
    pot = POTENTIALS / "multispecies_AlNi.yaml"
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (("activeset", pot, "-d", tmp_path / "c.extxyz", "-o", tmp_path / "plain" / "x.asi"),
                 ("select", pot, tmp_path / "c.extxyz", "-o", tmp_path / "plain" / "sel.extxyz"),
                 ("select", pot, tmp_path / "c.extxyz", "-o", tmp_path / "dir")):
        r = paceui(*args, cwd=tmp_path)
        assert r.returncode == 1 and "-o/--output" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not list((tmp_path / "dir").iterdir())
