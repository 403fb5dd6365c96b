"""The session's active-learning commands on tiny Zuo Cu sessions: active set and its staleness, γ tables,
candidates and selection, adding labelled structures (incremental neighbour lists and weights equal to a
full preparation) and the fit going on, all saved and resumed."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

from paceui.data import build_packed_neighbors
from paceui.session import Phase, Session, SessionError
from paceui.session.testing import TINY_BASIS, tiny_session, zuo_frame
from tests.session_fixtures import _cache  # noqa: F401


def _named(df, prefix):
    df = df.copy()
    df["name"] = [f"{prefix}{i}" for i in range(len(df))]
    return df


def _al():
    pytest.importorskip("paceui.ace.activeset", reason="paceui.ace.activeset (branch al) is not merged yet")
    pytest.importorskip("paceui.ace.selection", reason="paceui.ace.selection (branch al) is not merged yet")


@pytest.fixture
def session(tmp_path):
    s = tiny_session(path=tmp_path / "s", n=10)
    yield s
    s.close()


def test_add_structures_equals_a_full_preparation(tmp_path):
    """Appending labelled structures computes neighbour lists and uniform weights for the new ones only;
    the result equals preparing old + new from scratch, and the fit continues as a new cycle."""
    old, new = zuo_frame(8), _named(zuo_frame(4, start=20), "new")
    s = Session.from_objects(TINY_BASIS, old, {"maxiter": 100},
                             data_config={"reference_energy": {"Cu": 0.0}}, path=tmp_path / "a")
    s.run(iterations=3)
    cycle, theta = s.status.cycle, s.fitter.theta.copy()
    assert s.add_structures(new).result(60) == 4
    assert s.data.n_train == 12 and s.status.cycle == cycle + 1
    assert np.array_equal(s.fitter.theta, theta)              # continues from the current potential
    full = np.concatenate([np.asarray(old["energy"], float), np.asarray(new["energy"], float)])
    assert np.allclose(s.data.train.e_ref, full)              # reference energy 0: corrected = total
    assert np.allclose(s.data.train.w_e, 1 / 12)             # uniform: as if weighted all together
    n_at = int(s.data.train.n_atoms.sum())
    assert np.allclose(s.data.train.w_f, 1 / n_at)
    atoms = list(old["ase_atoms"]) + list(new["ase_atoms"])
    ref = build_packed_neighbors(atoms, s.data.prepared.cutoff, ["Cu"], use_cache=False, progress=False)
    got = s.data.prepared.train_neighbors
    for f in ("atom_offsets", "species", "nbr_offsets", "nbr_j"):
        assert np.array_equal(getattr(got, f), getattr(ref, f)), f
    assert np.allclose(got.vec, ref.vec, rtol=0, atol=1e-12)
    s.run(iterations=2)
    assert s.status.total_iterations == 5
    s.save()
    back = Session.load(tmp_path / "a")
    assert back.data.n_train == 12 and len(back.data.added) == 4
    assert np.allclose(back.data.train.w_e, s.data.train.w_e)
    # preparing the data again (a new aug_factor re-reads the sources) keeps the added structures
    back.change_settings(aug_factor=2e-4).result(60)
    assert back.data.n_train == 12 and set(new["name"]) <= set(back.data.prepared.train["name"])
    back.close()
    s.close()


def test_added_structures_keep_their_weight_factor(session):
    new = _named(zuo_frame(2, start=20), "new")
    assert session.add_structures(new, weight=3.0).result(60) == 2
    w = session.data.train.w_e
    assert np.allclose(w[-2:], 3 * w[0]) and np.isclose(w.sum(), 1.0)
    assert session.options["weight_factors"] == {"new0": 3.0, "new1": 3.0}
    session.change_settings(aug_factor=2e-4).result(60)    # the data are prepared again from the sources
    w = session.data.train.w_e
    assert session.data.n_train == 9 and np.allclose(w[-2:], 3 * w[0])


def test_add_structures_refuses_bad_input(session):
    with pytest.raises(ValueError, match="already in the dataset"):
        session.add_structures(zuo_frame(2)).result(60)
    unlabelled = _named(zuo_frame(2, start=30), "u").drop(columns=["forces"])
    with pytest.raises(ValueError, match="no forces"):
        session.add_structures(unlabelled).result(60)
    with pytest.raises(SessionError, match="no selection"):
        session.add_structures("selection").result(60)
    assert session.data.n_train == 7


def test_active_set_gamma_selection_and_resume(session, tmp_path):
    _al()
    s = session
    s.run(iterations=3)
    with pytest.raises(SessionError, match="no active set"):
        s.gamma("train").result(60)
    a = s.compute_active_set().result(300)
    assert a.iteration == 3 and a.sizes == {"Cu": 14} and a.n_train == 7
    assert s.status.active_set == "current"
    train = s.gamma("train").result(300)
    assert len(train.table) == 7 and train.max <= 1.01 + 1e-9 and not train.stale
    assert train.table["n_atoms"].tolist() == s.data.train.n_atoms.tolist()
    test = s.gamma("test").result(300)
    assert len(test.table) == 3

    cand = _named(zuo_frame(12, start=40), "cand")
    path = tmp_path / "cand.xyz"
    ase.io.write(path, list(cand["ase_atoms"]), format="extxyz")   # positions only: unlabelled
    assert s.load_candidates(path).result(60) == 12 and s.status.n_candidates == 12
    g = s.gamma("candidates").result(300)
    sel = s.select_candidates(4).result(300)
    assert len(sel) == 4 and s.status.n_selected == 4 and not sel["labelled"].any()
    assert np.all(np.diff(sel["gamma"].to_numpy()) <= 0)     # largest γ first
    assert np.allclose(sel["gamma"], g.table["gamma"].to_numpy()[sel["index"]])
    with pytest.raises(SessionError, match="no DFT labels"):
        s.add_structures("selection").result(60)
    out = s.save_selection(tmp_path / "sel.xyz")
    back_sel = ase.io.read(out, index=":")
    assert [a.info["gamma"] for a in back_sel] == pytest.approx(sel["gamma"].tolist())
    asi = s.save_active_set(tmp_path / "pot.asi")
    with np.load(asi) as z:
        assert z.files == ["Cu"] and z["Cu"].shape == (14, 14)

    s.save()
    back = Session.load(tmp_path / "s")
    assert back.status.active_set == "current" and back.status.n_candidates == 12 and back.status.n_selected == 4
    assert back.selection["name"].tolist() == sel["name"].tolist()
    assert np.allclose(back.active_set.active_set.inverse["Cu"], a.active_set.inverse["Cu"])
    again = back.gamma("train").result(300)
    assert np.allclose(again.table["gamma"], train.table["gamma"], rtol=1e-12)
    back.run(iterations=1)                                    # the coefficients move: the active set is stale
    assert back.status.active_set == "stale" and back.status.phase is Phase.STOPPED
    assert back.gamma("train").result(300).stale
    back.close()
