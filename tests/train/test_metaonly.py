"""The image-free riotvit learns from metadata alone, reproducibly."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from riotvit.train.metaonly import fit_meta_only, meta_only_logits


def data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[rng.random((n, 4)) < 0.1] = np.nan  # missing values are part of the input
    z = 2.0 * np.nan_to_num(x[:, 0]) - 1.5 * np.nan_to_num(x[:, 2]) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float32)
    train = np.arange(n) < 400
    val = (np.arange(n) >= 400) & (np.arange(n) < 500)
    test = np.flatnonzero(np.arange(n) >= 500)
    return x, y, train, val, test, z


def test_learns_the_signal_and_is_deterministic():
    x, y, train, val, test, z = data()
    m1 = fit_meta_only(x, y, train, val, hidden=32, seed=3)
    m2 = fit_meta_only(x, y, train, val, hidden=32, seed=3)
    a, b = meta_only_logits(m1, x, test), meta_only_logits(m2, x, test)
    assert np.array_equal(a, b)
    assert roc_auc_score(y[test], a) > 0.8
    assert np.corrcoef(a, z[test])[0, 1] > 0.8


def test_no_features_no_model():
    x, y, train, val, _, _ = data()
    assert fit_meta_only(x[:, :0], y, train, val) is None
    assert meta_only_logits(None, x, np.arange(3)) is None
