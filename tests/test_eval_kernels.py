"""The evaluator's spline kernel and threaded neighbour list give the same bits as the general ones."""

from __future__ import annotations

import numpy as np
import pytest

from paceui.ace import eval_kernels as EK
from paceui.ace import kernels as K
from paceui.ace import neighbors as N
from paceui.ace.evaluator import ACEModel
from tests.conftest import POTENTIALS, random_cluster

CASES = [("Cu-I_active_learning.yaml", ["Cu"] * 40), ("ethanol.yaml", ["C"] * 10 + ["H"] * 24 + ["O"] * 6),
         ("ZBL_rep.yaml", None), ("multispecies_AlNi.yaml", ["Al"] * 20 + ["Ni"] * 12),
         ("ternary_AlCuZn.yaml", ["Al"] * 12 + ["Cu"] * 12 + ["Zn"] * 12)]


def _general(m: ACEModel, at: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies, forces, virial from :func:`paceui.ace.kernels.ace_atoms` (the fit's kernel)."""
    sp = m.species_of(at.get_chemical_symbols())  # type: ignore[attr-defined]
    nl = N.neighbor_list(at.positions, at.cell.array, at.pbc, m.cutoff)  # type: ignore[attr-defined]
    e, pf = np.zeros(len(sp)), np.zeros((len(nl), 3))
    K.ace_atoms(sp, nl.offsets, nl.j, nl.vec, *m.compiled, 2, e, pf, False, *K.empty_pair_cache())
    f, v = K.reduce_pair_forces(len(sp), nl.offsets, nl.j, nl.vec, pf)
    return e, f, v


@pytest.mark.parametrize("name,symbols", CASES)
def test_spline_kernel_is_bit_identical_to_the_general_one(name, symbols, reference):
    m = ACEModel(POTENTIALS / name)
    if symbols is None:
        symbols = [m.elements[k % len(m.elements)] for k in range(30)]
    at = random_cluster(symbols, seed=4, dmin=1.2 if "ZBL" in name else 1.9)
    at.rattle(0.02, seed=1)
    e, f, v = _general(m, at)
    for _ in range(2):  # the second call uses the one-pass neighbour list with the first call's pair count
        res = m.evaluate(at)
        assert np.array_equal(res.energies, e) and np.array_equal(res.forces, f) and np.array_equal(res.virial, v)


def test_spline_table_layout_and_signs():
    tab = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)  # 2 densities, R columns 2, 3, φ 4
    t = EK.value_table(tab, 2, core=True)
    assert t.shape == (2, 4, 2 * 3 + 4 * 2)
    np.testing.assert_array_equal(t[:, :3, :3], tab[:, :, 0, 2:])
    np.testing.assert_array_equal(t[:, :3, 3:6], tab[:, :, 1, 2:])
    np.testing.assert_array_equal(t[:, :3, 6 + 2 * 3:6 + 2 * 4], tab[:, :, 3, :2])
    assert not t[:, 3].any()
    assert EK.value_table(tab, 2, core=False).shape == (2, 4, 2 * 2 + 4 * 2)
    sr, si = EK.factor_signs(np.array([[0, 1, -1, -2, -3]]))
    np.testing.assert_array_equal(sr, [[1, 1, -1, 1, -1]])
    np.testing.assert_array_equal(si, [[1, 1, 1, -1, 1]])


@pytest.mark.parametrize("pbc", [True, [True, False, True], False])
def test_threaded_neighbour_list_is_the_serial_one(pbc):
    at = random_cluster(["Cu"] * 150, seed=7, pbc=pbc)
    ref = N.neighbor_list(at.positions, at.cell.array, at.pbc, 5.5)
    was = N._threaded_cached[0]
    N._threaded_cached[0] = True  # take the threaded path (its kernels compile here if not cached)
    try:
        for threads in (1, 2, 3):
            for hint in (0.0, 0.5, len(ref) / len(at), 400.0):
                nl = N.neighbor_list_threads(at.positions, at.cell.array, at.pbc, 5.5, threads, hint)
                for field in ("offsets", "j", "vec", "shift"):
                    assert np.array_equal(getattr(nl, field), getattr(ref, field)), (threads, hint, field)
    finally:
        N._threaded_cached[0] = was


def test_too_close_atoms_are_named(reference):
    m = ACEModel(POTENTIALS / "Cu-I_active_learning.yaml")
    at = random_cluster(["Cu"] * 8, seed=2)
    at.positions[3] = at.positions[5] + [1e-4, 0.0, 0.0]
    with pytest.raises(ValueError, match="atoms (3 and 5|5 and 3) are .* closer than the spline step"):
        m.evaluate(at)
