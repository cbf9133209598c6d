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


# --------------------------------------------------------------------------- persistence, counts, storage


def with_persistence(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Add ``persist_riot``: riots persist (P(riot) is 0.6 with persistence 1, else 0.05)."""
    rng = np.random.default_rng(seed)
    persist = (rng.random(len(df)) < 0.3).astype(np.int64)
    riot = (rng.random(len(df)) < np.where(persist == 1, 0.6, 0.05)).astype(np.int64)
    count = rng.poisson(np.where(persist == 1, 3.0, 0.2))
    return df.assign(persist_riot=persist, riot=riot, event_count=count)


def test_persistence_probabilities_are_the_training_group_rates(samples):
    df = with_persistence(samples)
    res = evaluate_baselines(df, folds=[0, 3])
    for name, fold in (("fold0", 0), ("fold3", 3)):
        assert list(res[name]) == ["prevalence", "persistence", "history_census"]
        sp = spatial_split(df, fold)
        train, test = df[sp.train], df[sp.test]
        rate = train.groupby("persist_riot")["riot"].mean()
        mean_count = train.groupby("persist_riot")["event_count"].mean()
        pers = res[name]["persistence"]
        assert pers["info"]["rate"] == {"0": rate[0], "1": rate[1]}
        assert pers["info"]["column"] == "persist_riot" and pers["info"]["calibration"] == "none"
        p = test["persist_riot"].map(rate).to_numpy()
        mu = test["persist_riot"].map(mean_count).to_numpy()
        # the heads are exactly those of the hand-computed forecasts
        from riotvit.train.metrics import evaluate_heads

        expected = evaluate_heads(
            {"riot": test["riot"].to_numpy(), "event_count": test["event_count"].to_numpy()},
            {"riot": p, "event_count": mu},
            threshold=pers["riot"]["threshold"],
        )
        assert pers["riot"]["brier"] == pytest.approx(expected["riot"]["brier"], abs=1e-15)
        assert pers["event_count"]["mae"] == pytest.approx(expected["event_count"]["mae"], abs=1e-12)
        assert pers["riot"]["auroc"] > 0.75 > res[name]["prevalence"]["riot"]["auroc"]
        # prevalence's count forecast is the training mean count
        prev_mu = train["event_count"].mean()
        assert res[name]["prevalence"]["event_count"]["mae"] == pytest.approx(
            np.mean(np.abs(test["event_count"] - prev_mu))
        )
    # no column, or persistence_column=None: no persistence row
    assert "persistence" not in evaluate_baselines(samples, folds=[0])["fold0"]
    assert "persistence" not in evaluate_baselines(df, folds=[0], persistence_column=None)["fold0"]


def test_persistence_missing_group_and_missing_values():
    from riotvit.train.baselines import PersistenceBaseline

    train = pd.DataFrame({"persist_riot": [0, 0, 0, 0], "riot": [0, 1, 0, 0], "event_count": [0, 2, 0, 0]})
    pb = PersistenceBaseline().fit(train)
    assert pb.rate_ == {0: 0.25, 1: 0.25} and "no training crops with persist_riot = 1" in pb.note
    test = pd.DataFrame({"persist_riot": [0, 1, np.nan]})
    assert pb.predict_proba(test).tolist() == [0.25, 0.25, 0.25]
    assert pb.predict_count(test).tolist() == [0.5, 0.5, 0.5]


def outlier_table(seed: int = 0, n: int = 240) -> pd.DataFrame:
    """A small table with heavy-tailed features and a few absurd values (the MAE 4,158 bug)."""
    rng = np.random.default_rng(seed)
    hist = rng.lognormal(0.0, 2.0, size=n)
    pop = rng.lognormal(8.0, 2.5, size=n)
    noise = rng.standard_cauchy(size=n)
    mu = np.exp(-1.0 + 0.4 * np.log1p(hist))
    count = rng.poisson(mu)
    df = pd.DataFrame(
        {"hist_events": hist, "census_population": pop, "census_noise": noise,
         "riot": (count > 0).astype(int), "event_count": count}
    )
    df.loc[rng.choice(n, 6, replace=False), "census_population"] = 1e9  # absurd outliers
    df.loc[rng.choice(n, 6, replace=False), "hist_events"] = 5e4
    return df


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_count_model_is_sane_on_outlying_features(seed):
    df = outlier_table(seed)
    train, test = df.iloc[:80], df.iloc[80:]
    model = HistoryCensusBaseline().fit(train)
    mu = model.predict_count(test)
    assert np.all(np.isfinite(mu)) and mu.min() >= 0
    assert mu.max() <= 2 * train["event_count"].max() == model.count_max_
    mae = np.mean(np.abs(test["event_count"] - mu))
    prev_mae = np.mean(np.abs(test["event_count"] - train["event_count"].mean()))
    assert mae <= 2 * prev_mae
    # extreme test values are clipped to the training range: no extrapolation
    extreme = test.head(1).assign(hist_events=1e12, census_population=-1e12, census_noise=1e30)
    assert model.predict_count(extreme)[0] <= model.count_max_


def test_logistic_baseline_round_trips_through_json(samples):
    import json

    train = samples[samples.fold != 0]
    model = HistoryCensusBaseline().fit(train)
    d = json.loads(json.dumps(model.to_dict(), allow_nan=False))
    assert d["features"] == feature_columns(samples) and d["kind"] == "logistic"
    # census_unemployment_rate has missing values: its indicator is the 4th model input
    assert d["prep"]["indicators"] == [1] and len(d["classifier"]["coef"]) == 4
    assert d["prep"]["medians"][1] == pytest.approx(np.nanmedian(train["census_unemployment_rate"]))
    back = HistoryCensusBaseline.from_dict(d)
    test = samples[samples.fold == 0]
    assert np.array_equal(back.predict_proba(test), model.predict_proba(test))
    assert np.array_equal(back.predict_count(test), model.predict_count(test))
    # the numpy prediction is scikit-learn's on the same preprocessed inputs
    from sklearn.linear_model import LogisticRegression

    x = model._x(train)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(x, train["riot"]).predict_proba(model._x(test))[:, 1]
    np.testing.assert_allclose(model.predict_proba(test), ref, rtol=1e-9)
    # without a count column the count model is absent and survives the trip as such
    no_count = HistoryCensusBaseline().fit(train, count_col=None)
    again = HistoryCensusBaseline.from_dict(json.loads(json.dumps(no_count.to_dict(), allow_nan=False)))
    assert again.regressor_ is None and np.isnan(again.predict_count(test)).all()


def test_baseline_store_errors(samples):
    from riotvit.errors import BundleError, RiotvitError
    from riotvit.train.baselines import BaselineStoreError

    gbm = HistoryCensusBaseline("gbm").fit(samples[samples.fold > 2])
    with pytest.raises(BaselineStoreError, match="only the logistic .* set eval.baseline to logistic"):
        gbm.to_dict()
    assert issubclass(BaselineStoreError, RiotvitError)
    d = HistoryCensusBaseline().fit(samples[samples.fold > 2]).to_dict()
    with pytest.raises(BundleError, match="invalid.*retrain"):
        HistoryCensusBaseline.from_dict({**d, "classifier": {"coef": [1.0], "intercept": 0.0}})
    with pytest.raises(BundleError, match="invalid"):
        HistoryCensusBaseline.from_dict({**d, "kind": "gbm"})
