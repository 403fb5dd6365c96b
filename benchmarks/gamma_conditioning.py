"""How precisely γ = max_k |b · A_act⁻¹|_k (shared/spec/active_learning.md §3) is determined by float64 data,
for the reference active sets: the answer to "can paceui's γ agree with pyace's to 1e-8 on DFT10B-AgCu?".

For each reference potential and its .asi: cond(A_act) per element, and the spread of γ when every projection
b is perturbed by one rounding error (b ← b(1 + ε u), u uniform in [−1, 1], ε = 2⁻⁵³, 20 draws), i.e. what two
correct float64 implementations that sum in different orders can disagree by. Also the spread between the two
equally valid orders of the product: (b · A⁻¹) row by row vs the whole batch at once (BLAS blocking).
The rattled/strained structures are those of tests/test_activeset.py. Run: PYTHONPATH=. python
benchmarks/gamma_conditioning.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POTENTIALS = ROOT.parent / "shared" / "reference" / "potentials"
REF_ASI = {"Cu-I_active_learning": ["Cu"], "multispecies_AlNi": ["Al", "Ni"], "DFT10B-AgCu": ["Ag", "Cu"]}


def main() -> None:
    from paceui.ace.activeset import ActiveSet
    from paceui.ace.projections import compute_projections
    from tests.test_activeset import rattled_and_strained

    rng = np.random.default_rng(0)
    eps = 2.0 ** -53
    for name, els in REF_ASI.items():
        pot = POTENTIALS / f"{name}.yaml"
        aset = ActiveSet.load(POTENTIALS / f"{name}.asi", potential=pot)
        proj = compute_projections(pot, rattled_and_strained(els, seed=1), aset.kind)
        for el in els:
            b, inv = proj.rows[el], aset.inverse[el]
            if not len(b):
                continue
            g = np.abs(b @ inv).max(axis=1)
            g_rows = np.array([np.abs(np.dot(inv.T, r)).max() for r in b])  # another valid summation order
            spread = 0.0
            for _ in range(20):
                gp = np.abs((b * (1.0 + eps * rng.uniform(-1, 1, b.shape))) @ inv).max(axis=1)
                spread = max(spread, float(np.max(np.abs(gp - g) / g)))
            other = float(np.max(np.abs(g_rows - g) / g))
            print(f"{name:22s} {el:2s}: cond(A_act) {np.linalg.cond(inv):.1e}, max γ {g.max():9.3g}; relative "
                  f"γ change: one-ulp projections {spread:.1e}, other product order {other:.1e}")


if __name__ == "__main__":
    main()
