"""Unit tests of the offline training's NB-LR penalty (tools/train_sentiment.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse

from tools.train_sentiment import (
    NB_PENALTY_FLOOR,
    BlendChoice,
    blend_logits,
    choose_blend,
    naive_bayes_penalty,
    nested_blend_scores,
)

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


def test_blend_chooses_the_average_that_corrects_both_models() -> None:
    # 30 texts, 10 of each class. The LR confuses the even texts with the next class, NB-LR the
    # odd ones with the class after that; only their even average is right everywhere.
    labels = np.asarray([row % 3 for row in range(30)])
    lr_logits = np.zeros((30, 3))
    nb_logits = np.zeros((30, 3))
    for row, label in enumerate(labels):
        lr_logits[row, label] = nb_logits[row, label] = 2.0
        if row % 2 == 0:
            lr_logits[row, (label + 1) % 3] = 3.5
        else:
            nb_logits[row, (label + 2) % 3] = 3.5
    useless = np.zeros((30, 3))
    candidates = blend_logits({1e-4: lr_logits, 1e-3: useless}, {3e-4: nb_logits})
    choice = choose_blend(candidates, labels, np.arange(30))
    assert choice == BlendChoice(lr_l2=1e-4, nb_l2=3e-4, lr_share=0.5, neutral_offset=0.0)
    # Chosen on four folds, the same blend is right on the fifth.
    assert nested_blend_scores(candidates, labels) == [1.0] * 5
