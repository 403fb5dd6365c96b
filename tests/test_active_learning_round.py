"""One active-learning round through the session on Zuo Cu (fixed seeds, a 14-function basis):

fit on ten near-equilibrium MD snapshots, compute the active set, γ of 44 candidates (40 like the training
set, 4 from the hot MD runs the fit has never seen: the rare events active learning is for), select 2
D-optimally, add them with their DFT labels and refit; a copy of the session adds as many random candidates
(seed 1) instead. The selection must be the extrapolating, largest-γ candidates, and the held-out test error
after adding them lower than after the random ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("paceui.ace.activeset", reason="paceui.ace.activeset (branch al) is not merged yet")
pytest.importorskip("paceui.ace.selection", reason="paceui.ace.selection (branch al) is not merged yet")

from paceui.ace.evaluator import ACEModel  # noqa: E402
from paceui.session import Session  # noqa: E402
from paceui.session.testing import TINY_BASIS  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

ZUO_CU = Path(__file__).resolve().parents[2] / "shared" / "zuo" / "Cu_train.xyz.gz"
K = 2            # at most this many structures added per round
ITERATIONS = 60  # per fit


@pytest.fixture(scope="module")
def zuo():
    if not ZUO_CU.exists():
        pytest.skip(f"{ZUO_CU} not found (the shared/ folder beside the checkout): the active-learning round "
                    "uses the Zuo Cu training set")
    import ase.io

    from paceui.data.io import frame_from_atoms

    df = frame_from_atoms(ase.io.read(ZUO_CU, index=":"), ZUO_CU.name)
    df["name"] = [f"zuo{i}" for i in range(len(df))]
    epa = np.array([e / len(a) for e, a in zip(df["energy"], df["ase_atoms"])])
    idx = np.arange(len(df))
    md = (idx >= 48) & (idx < 156)                     # the 108-atom MD snapshots at several temperatures
    hot = idx[md & (epa > -3.9)]                       # the hot runs (|F| up to 6 eV/Å)
    cold = np.setdiff1d(idx[idx >= 48], hot)           # cooler MD and the relaxed / strained cells
    rng = np.random.default_rng(0)
    hot, cold = rng.permutation(hot), rng.permutation(cold)
    return {"frame": df, "hot": hot, "train": cold[:10], "candidates": np.concatenate([cold[10:50], hot[:4]]),
            "test": np.concatenate([cold[50:56], hot[4:10]])}


def _test_errors(pot, df, test) -> tuple[float, float]:
    """Energy RMSE (meV/atom) and force-component RMSE (meV/Å) of ``pot`` on the held-out structures."""
    model = ACEModel(pot)
    de, dfs = [], []
    for i in test:
        atoms = df["ase_atoms"].iloc[i]
        res = model.evaluate(atoms)
        de.append((res.energy - df["energy"].iloc[i]) / len(atoms))
        dfs.append((res.forces - np.asarray(df["forces"].iloc[i])).ravel())
    return float(np.sqrt(np.mean(np.square(de))) * 1e3), float(np.sqrt(np.mean(np.square(np.concatenate(dfs)))) * 1e3)


def _greedy_picks(pot, active_set, atoms, n: int, tol: float = 1.01) -> set[int]:
    """The first n picks of greedy D-optimal selection, computed here independently of the selection code:
    each pick has the largest structure γ among the candidates not yet picked, with respect to the active set
    augmented by the earlier picks (MaxVol over its rows and the picks' atoms)."""
    from paceui.ace.activeset import ActiveSet, structure_gamma
    from paceui.ace.maxvol import maxvol
    from paceui.ace.projections import compute_projections

    inv = dict(active_set.inverse)
    left = list(range(len(atoms)))
    picks: set[int] = set()
    for _ in range(n):
        g = structure_gamma(pot, ActiveSet(active_set.kind, inv), [atoms[c] for c in left])
        k = left[int(np.argmax([x.max() for x in g]))]
        picks.add(k)
        left.remove(k)
        for el, r in compute_projections(pot, [atoms[k]], active_set.kind).rows.items():
            if len(r):
                inv[el] = maxvol(np.vstack([np.linalg.inv(inv[el]), r]), tol).inverse
    return picks


def test_active_learning_round(zuo, tmp_path):
    df, cand = zuo["frame"], zuo["candidates"]
    fit = {"loss": {"kappa": 0.3, "L2_coeffs": 1e-8}, "maxiter": 1000}
    s = Session.from_objects(TINY_BASIS, df.iloc[zuo["train"]].reset_index(drop=True), fit, path=tmp_path / "a",
                             data_config={"reference_energy": {"Cu": 0.0}}, seed=1)
    b = None
    try:
        s.run(iterations=ITERATIONS)
        before = _test_errors(s.potential, df, zuo["test"])
        s.compute_active_set().result(600)
        assert s.gamma("train").result(600).max <= 1.01 + 1e-9
        assert s.load_candidates(df.iloc[cand].reset_index(drop=True)).result(60) == len(cand)
        gamma = s.gamma("candidates").result(600).table["gamma"].to_numpy()
        sel = s.select_candidates(K).result(600)
        chosen = sel["index"].to_numpy()
        n = len(chosen)  # MaxVol may need fewer than K structures to extend the active set
        assert 1 <= n <= K and np.allclose(sel["gamma"], gamma[chosen])
        by_gamma = np.argsort(-gamma)
        # MaxVol's first swap takes the row of largest |coefficient|, the atom of largest γ: the candidate of
        # highest γ is always selected; every later swap grows the volume, so each selected row had γ > tol.
        # (The selection is not simply the n largest γ: a candidate whose new directions an already selected
        # one covers is not needed.)
        assert chosen[0] == by_gamma[0] and np.all(np.diff(sel["gamma"]) <= 0)   # largest γ first
        assert np.all(gamma[chosen] > 1.01)
        unselected = np.setdiff1d(np.arange(len(cand)), chosen)
        assert gamma[chosen].min() > np.median(gamma[unselected])
        assert set(chosen) <= set(by_gamma[:2 * K])                                # among the most extrapolating
        # the selection is greedy D-optimal: each pick the largest γ given the earlier picks (a structure that
        # extends the active set in the same directions as an earlier pick is not taken); random picks are not
        greedy = _greedy_picks(s.potential, s.active_set.active_set, list(df["ase_atoms"].iloc[cand]), n)
        assert set(chosen.tolist()) == greedy
        assert set(np.random.default_rng(1).choice(len(cand), n, replace=False).tolist()) != greedy
        hot = np.isin(cand, zuo["hot"])
        assert hot[chosen].sum() >= max(n - 1, 1) and gamma[hot].min() > np.median(gamma[~hot])

        s.save()
        shutil.copytree(tmp_path / "a", tmp_path / "b")
        b = Session.load(tmp_path / "b")
        assert s.add_structures("selection").result(600) == n
        s.run(iterations=ITERATIONS)
        random = np.random.default_rng(1).choice(len(cand), n, replace=False)
        assert b.add_structures(df.iloc[cand[random]].reset_index(drop=True)).result(600) == n
        b.run(iterations=ITERATIONS)
        assert s.data.n_train == b.data.n_train == len(zuo["train"]) + n
        selected, randomly = _test_errors(s.potential, df, zuo["test"]), _test_errors(b.potential, df, zuo["test"])
        print(f"selected {sel['name'].tolist()} γ {sel['gamma'].round(2).tolist()}; random {cand[random].tolist()} "
              f"({int(hot[random].sum())} hot)")
        print(f"test errors (E meV/atom, F meV/Å): before {before}, D-optimal {selected}, random {randomly}")
        assert selected[0] < randomly[0] and selected[1] < randomly[1]
        assert selected[1] < before[1]
    finally:
        s.close()
        if b is not None:
            b.close()
