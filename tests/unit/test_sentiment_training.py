"""Unit tests of the offline training's NB-LR penalty (tools/train_sentiment.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse

from tools.train_sentiment import NB_PENALTY_FLOOR, naive_bayes_penalty

NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2


def test_naive_bayes_penalty_frees_the_weights_of_class_specific_features() -> None:
    labels = np.asarray([NEGATIVE, NEGATIVE, NEUTRAL, NEUTRAL, POSITIVE, POSITIVE])
    # Sparse columns: "bravo" only in positive texts, "le" in every text, "honte" only in
    # negative ones; then one dense column.
    rows = [
        [0.0, 1.0, 1.0, 0.5],
        [0.0, 1.0, 1.0, -0.2],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.1],
        [1.0, 1.0, 0.0, 0.9],
        [1.0, 1.0, 0.0, 0.3],
    ]
    penalty = naive_bayes_penalty(scipy.sparse.csr_matrix(rows), labels, n_sparse=3)
    bravo, le, honte, dense = 0, 1, 2, 3
    assert penalty.shape == (4, 3)
    assert penalty[bravo, POSITIVE] < penalty[le, POSITIVE]
    assert penalty[honte, NEGATIVE] < penalty[le, NEGATIVE]
    # No feature is penalised more than one scaled by the floor alone.
    assert np.all(penalty[:3] <= 1.0 / NB_PENALTY_FLOOR**2)
    assert np.all(penalty[dense] == 1.0)
