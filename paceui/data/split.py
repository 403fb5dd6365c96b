"""Train/test split (pacemaker ``data: test_size``): a seeded random subset, indices sorted."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["n_test_structures", "split_indices", "train_test_split"]


def n_test_structures(n: int, test_size: float | int) -> int:
    """Test-set size: ``int(n*f)`` for a fraction 0 < f < 1, else the count ``int(f)`` (>= 1, < n)."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer, np.floating)):
        raise ValueError(f"test_size must be a number, got {test_size!r}")
    f = float(test_size)
    if not np.isfinite(f) or f <= 0:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count >= 1, got {test_size}")
    k = int(n * f) if f < 1 else int(f)
    if k >= n:
        raise ValueError(f"test_size {test_size} leaves no training structures out of {n}")
    return k


def split_indices(n: int, test_size: float | int, seed: int | None = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions, each sorted, from a permutation with ``RandomState(seed)``."""
    k = n_test_structures(n, test_size)
    perm = np.random.RandomState(seed).permutation(n)
    return np.sort(perm[k:]).astype(np.int64), np.sort(perm[:k]).astype(np.int64)


def train_test_split(df: pd.DataFrame, test_size: float | int, seed: int | None = 42
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of the train and test rows (original index kept)."""
    tr, te = split_indices(len(df), test_size, seed)
    return df.iloc[tr].copy(), df.iloc[te].copy()
