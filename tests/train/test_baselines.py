"""Baselines and the honest row selection: buffer exclusion, folds, known-signal recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riotvit.errors import ConfigError, SamplesError
from riotvit.train.baselines import (
    HistoryCensusBaseline,
    evaluate_baselines,
    feature_columns,
    prevalence_baseline,
)
from riotvit.train.splits import (
    column_split,
    default_val_fold,
    make_splits,
    spatial_split,
    temporal_split,
    train_rows,
)


def synthetic_samples(n: int = 40, seed: int = 0, temporal: bool = False) -> pd.DataFrame:
    """An n x n grid of crops in 5 spatial folds (10-crop blocks) with a known riot model.

    ``logit P(riot) = -4.5 + 2 log1p(hist_riots_365d_2km) + 25 (census_unemployment_rate -
    0.15)``; ``event_count ~ Poisson(exp(logit + 0.3))``. 10 % of the unemployment values are
    missing and ``census_noise`` carries no signal. ``near_folds`` sets bit f for every crop
    with a fold-f neighbour in its 8-neighbourhood.
    """
    rng = np.random.default_rng(seed)
    rr, cc = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    fold = ((cc // 10) + 2 * (rr // 10)) % 5
    near = np.zeros_like(fold)
    pad = np.pad(fold, 1, constant_values=-1)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            nb = pad[1 + dr : 1 + dr + n, 1 + dc : 1 + dc + n]
            near |= np.where((nb >= 0) & (nb != fold), 1 << np.maximum(nb, 0), 0)
    m = n * n
    hist = rng.poisson(2.0, size=m).astype(float)
    unemp = rng.uniform(0.02, 0.3, size=m)
    z = -4.5 + 2.0 * np.log1p(hist) + 25.0 * (unemp - 0.15)
    riot = (rng.random(m) < 1 / (1 + np.exp(-z))).astype(np.int64)
    count = rng.poisson(np.exp(z + 0.3))
    unemp_obs = np.where(rng.random(m) < 0.1, np.nan, unemp)
    df = pd.DataFrame(
        {
            "crop_id": [f"c{i}" for i in range(m)],
            "fold": fold.ravel(),
            "near_folds": near.ravel(),
            "hist_riots_365d_2km": hist,
            "census_unemployment_rate": unemp_obs,
            "census_noise": rng.normal(size=m),
            "riot": riot,
            "event_count": count,
        }
    )
    if temporal:
        df = pd.concat(
            [df.assign(time_split="past"), df.assign(time_split="future")], ignore_index=True
        )
        df.loc[df.time_split == "future", "riot"] = (rng.random(m) < 1 / (1 + np.exp(-z))).astype(
            np.int64
        )
    return df


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return synthetic_samples()


def test_train_rows_hand_table():
    # fold:        0  0  1  1  2  2  3   -1
    # near_folds:  0  2  1  4  0  8  4   0
    df = pd.DataFrame({"fold": [0, 0, 1, 1, 2, 2, 3, -1], "near_folds": [0, 2, 1, 4, 0, 8, 4, 0]})
    # test fold 1, validation fold 2: drop folds 1 and 2, rows near 1 (bit 1: row 1), rows near
    # 2 (bit 2: rows 3, 6) and the fold -1 row.
    assert train_rows(df, 1, 2).tolist() == [True, False, False, False, False, False, False, False]
    # without the validation ring, row 6 (near fold 2 only) comes back
    assert train_rows(df, 1, 2, exclude_near_val=False).tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
    ]
    # no validation fold: only the test fold and its ring go
    assert train_rows(df, 0, None).tolist() == [False, False, False, True, True, True, True, False]


def test_spatial_split_excludes_buffer_and_is_disjoint(samples):
    sp = spatial_split(samples, 2)
    assert (sp.name, sp.kind, sp.test_fold, sp.val_fold) == ("fold2", "spatial", 2, 3)
    near = samples["near_folds"].to_numpy()
    fold = samples["fold"].to_numpy()
    assert not np.any(sp.train & (((near >> 2) & 1) == 1))
    assert not np.any(sp.train & (((near >> 3) & 1) == 1))
    assert not np.any(sp.train & np.isin(fold, [2, 3]))
    assert (
        not np.any(sp.train & sp.test)
        and not np.any(sp.train & sp.val)
        and not np.any(sp.val & sp.test)
    )
    assert sp.test.sum() == (fold == 2).sum() == 400
    # every training row is a row of the other three folds outside both rings
    expected = np.isin(fold, [0, 1, 4]) & (((near >> 2) & 1) == 0) & (((near >> 3) & 1) == 0)
    assert np.array_equal(sp.train, expected)
    assert 0 < sp.train.sum() < np.isin(fold, [0, 1, 4]).sum()


def test_default_val_fold_cycles():
    assert [default_val_fold([0, 1, 2, 3, 4], f) for f in range(5)] == [1, 2, 3, 4, 0]


def test_split_errors(samples):
    with pytest.raises(SamplesError, match="near_folds"):
        train_rows(samples.drop(columns="near_folds"), 0, 1)
    with pytest.raises(SamplesError, match="at least 3"):
        spatial_split(samples[samples.fold < 2], 0)
    with pytest.raises(SamplesError, match="fold 7 does not exist"):
        spatial_split(samples, 7)
    with pytest.raises(SamplesError, match="equals the test fold"):
        spatial_split(samples, 1, 1)
    with pytest.raises(ConfigError, match="did you mean: gbm"):
        HistoryCensusBaseline("gbn")


def test_prevalence_and_features(samples):
    assert prevalence_baseline([0, 1, 1, np.nan, 0]) == 0.5
    assert np.isnan(prevalence_baseline([]))
    assert feature_columns(samples) == [
        "hist_riots_365d_2km",
        "census_unemployment_rate",
        "census_noise",
    ]


def test_logistic_baseline_recovers_known_signal(samples):
    res = evaluate_baselines(samples)
    assert list(res) == [f"fold{f}" for f in range(5)]
    for name, models in res.items():
        hc, prev = models["history_census"], models["prevalence"]
        assert hc["riot"]["auroc"] > 0.8, name
        assert hc["riot"]["aupr"] > prev["riot"]["aupr"] + 0.1, name
        assert prev["riot"]["auroc"] == 0.5
        # the prevalence baseline's AUPR is the test prevalence
        assert prev["riot"]["aupr"] == pytest.approx(prev["riot"]["prevalence"])
        # count heads: the Poisson GLM beats the constant mean on deviance
        assert hc["event_count"]["poisson_deviance"] < prev["event_count"]["poisson_deviance"]
        info = hc["info"]
        fold = int(name[4:])
        assert info["test_fold"] == fold and info["val_fold"] == (fold + 1) % 5
        assert info["n_test"] == (samples.fold == fold).sum()
        assert info["n_train"] == spatial_split(samples, fold).train.sum()
        assert info["estimator"] == "logistic" and info["calibration"] == "none"
    # deterministic
    again = evaluate_baselines(samples, folds=[0])
    assert again["fold0"]["history_census"]["riot"] == res["fold0"]["history_census"]["riot"]


def test_gbm_baseline_and_calibration(samples):
    res = evaluate_baselines(samples, folds=[1], kind="gbm", calibration="isotonic")
    hc = res["fold1"]["history_census"]
    assert hc["info"]["estimator"] == "gbm" and hc["info"]["calibration"] == "isotonic"
    assert hc["riot"]["auroc"] > 0.75
    assert hc["riot"]["aupr"] > res["fold1"]["prevalence"]["riot"]["aupr"]
    assert 0.0 <= hc["riot"]["threshold"] <= 1.0


def test_temporal_split():
    df = synthetic_samples(n=30, temporal=True)
    t = temporal_split(df)
    assert t is not None and t.kind == "temporal" and t.val_fold == 0
    past = (df.time_split == "past").to_numpy()
    assert t.test.sum() == 900 and not np.any(t.train & ~past) and not np.any(t.val & ~past)
    assert not np.any(t.train & ((df.fold.to_numpy() == 0) | ((df.near_folds.to_numpy() & 1) == 1)))
    splits = make_splits(df, folds=[0])
    assert [s.name for s in splits] == ["fold0", "temporal"]
    res = evaluate_baselines(df, splits=splits)
    assert set(res) == {"fold0", "temporal"}
    assert res["temporal"]["history_census"]["riot"]["auroc"] > 0.75
    assert temporal_split(df.drop(columns="time_split")) is None


def test_one_class_training_falls_back_to_prevalence(samples):
    df = samples.assign(riot=0)
    model = HistoryCensusBaseline().fit(df)
    assert "one class" in model.note
    assert np.all(model.predict_proba(df.head(5)) == 0.0)
    # the count model is still fitted
    assert model.regressor_ is not None


def test_column_split_follows_the_join_split_column(samples):
    sp_ref = spatial_split(samples, 2)
    split = np.where(
        sp_ref.test, "test", np.where(sp_ref.val, "val", np.where(sp_ref.train, "train", "buffer"))
    )
    sp = column_split(samples.assign(split=split))
    assert (sp.name, sp.test_fold, sp.val_fold) == ("fold2", 2, 3)
    assert np.array_equal(sp.train, sp_ref.train) and np.array_equal(sp.test, sp_ref.test)
    res = evaluate_baselines(samples, splits=[sp])
    assert res["fold2"]["history_census"]["riot"]["n"] == 400
    with pytest.raises(SamplesError, match="0 train"):
        column_split(samples.assign(split="test"))
