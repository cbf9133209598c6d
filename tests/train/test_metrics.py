"""Metrics (hand-checked values), the metrics report (metrics.json / metrics.md) and the plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_poisson_deviance

from riotvit.errors import ConfigError
from riotvit.train.metrics import (
    binary_metrics,
    choose_threshold,
    count_metrics,
    evaluate_heads,
    expected_calibration_error,
    metrics_by_group,
    ordinal_metrics,
    pool_reliability,
    reliability_bins,
)
from riotvit.train.plots import pr_curves, reliability_diagram, training_curves
from riotvit.train.report import (
    build_metrics_table,
    merge_results,
    read_metrics,
    write_metrics,
    write_reliability_plots,
)

Y4 = np.array([0, 0, 1, 1])
P4 = np.array([0.1, 0.4, 0.35, 0.8])


# --------------------------------------------------------------------------- binary metrics


def test_binary_metrics_hand_checked():
    m = binary_metrics(Y4, P4, threshold=0.5)
    # positive/negative pairs won: (0.35>0.1), (0.8>0.1), (0.8>0.4); lost (0.35<0.4) -> 3/4
    assert m["auroc"] == pytest.approx(0.75)
    # ranked 0.8(+) 0.4(-) 0.35(+) 0.1(-): AP = 0.5 * 1 + 0.5 * 2/3
    assert m["aupr"] == pytest.approx(0.5 + 1 / 3)
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    # only 0.8 >= 0.5: tp 1, fp 0, fn 1
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert (m["n"], m["n_pos"], m["prevalence"], m["threshold"], m["n_flagged"]) == (
        4,
        2,
        0.5,
        0.5,
        1,
    )
    # 4 crops < 30: one equal-mass bin, ECE = |mean y - mean p| = |0.5 - 0.4125|
    assert m["ece"] == pytest.approx(0.0875)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    assert m["note"] == "" and m["n_dropped"] == 0
    assert m["reliability"]["count"] == [4] and m["reliability"]["strategy"] == "quantile"
    # the old equal-width bins: every prediction is alone in its bin, ECE = mean |y - p|
    u = binary_metrics(Y4, P4, threshold=0.5, strategy="uniform")
    assert u["ece"] == pytest.approx((0.1 + 0.4 + 0.65 + 0.2) / 4)
    assert sum(u["reliability"]["count"]) == 4 and len(u["reliability"]["count"]) == 15


def test_ece_shared_bins_and_edges():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.25, 0.9, 0.95])
    # bin [0, .5): mean .225 obs .5; bin [.5, 1]: mean .925 obs .5
    ece = expected_calibration_error(y, p, n_bins=2, strategy="uniform")
    assert ece == pytest.approx((2 * 0.275 + 2 * 0.425) / 4)
    # equal mass with min_count 2: the same two bins here
    assert expected_calibration_error(y, p, n_bins=2, min_count=2) == pytest.approx(ece)
    b = reliability_bins([1, 0, 1], [1.0, 0.0, 0.5], n_bins=4, strategy="uniform")
    assert b["count"] == [1, 0, 1, 1]  # p = 1 lands in the last bin, p = .5 in [.5, .75)
    assert math.isnan(b["mean_pred"][1]) and b["upper"][-1] == 1.0


def test_pooled_reliability_equals_bins_of_pooled_rows():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 300), rng.random(300)
    pooled = pool_reliability(
        [
            reliability_bins(y[:100], p[:100], strategy="uniform"),
            reliability_bins(y[100:], p[100:], strategy="uniform"),
        ]
    )
    direct = reliability_bins(y, p, strategy="uniform")
    assert pooled["count"] == direct["count"]
    np.testing.assert_allclose(pooled["mean_pred"], direct["mean_pred"])
    np.testing.assert_allclose(pooled["obs_freq"], direct["obs_freq"])


def test_one_class_fold_gives_nan_with_note():
    m = binary_metrics([0, 0, 0, np.nan], [0.1, 0.6, 0.2, 0.9], threshold=0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["aupr"])
    assert "only one class" in m["note"]
    assert m["n"] == 3 and m["n_dropped"] == 1 and m["n_pos"] == 0
    assert math.isnan(m["recall"]) and m["f1"] == 0.0 and m["precision"] == 0.0
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.04) / 3)
    empty = binary_metrics([], [])
    assert empty["n"] == 0 and math.isnan(empty["brier"]) and "no rows" in empty["note"]


def test_choose_threshold():
    # candidates: .8 -> F1 2/3, .4 -> 1/2, .35 -> 4/5, .1 -> 2/3
    assert choose_threshold(Y4, P4) == pytest.approx(0.35)
    assert choose_threshold(Y4, P4, "prevalence") == 0.5
    # flag as many rows as there are positives: p >= 0.4 flags two
    assert choose_threshold(Y4, P4, "rate") == pytest.approx(0.4)
    assert choose_threshold([0, 0], [0.2, 0.3]) == 0.5
    with pytest.raises(ConfigError, match="did you mean: f1"):
        choose_threshold(Y4, P4, "f2")


# --------------------------------------------------------------------------- counts, ordinal, groups


def test_count_metrics_hand_checked():
    y, mu = np.array([0, 1, 3]), np.array([0.5, 1.0, 2.0])
    m = count_metrics(y, mu)
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(math.sqrt(1.25 / 3))
    # y=0: 2 mu = 1; y=mu: 0; y=3, mu=2: 2 (3 ln 1.5 - 1)
    assert m["poisson_deviance"] == pytest.approx((1.0 + 2 * (3 * math.log(1.5) - 1)) / 3)
    assert m["poisson_deviance"] == pytest.approx(mean_poisson_deviance(y, mu))
    assert (m["mean_pred"], m["mean_obs"], m["n"]) == pytest.approx((3.5 / 3, 4 / 3, 3))
    assert count_metrics(y, np.full(3, y.mean()))["d2"] == pytest.approx(0.0)
    assert count_metrics([2, np.nan], [1.0, 1.0])["n_dropped"] == 1
    # CRPS of Poisson forecasts, by hand: mu = 1, y = 3 sums (F(k) - 1{3 <= k})^2 over k
    from scipy.stats import poisson

    k = np.arange(60)
    by_hand = [np.sum((poisson.cdf(k, m) - (v <= k)) ** 2) for v, m in zip(y, mu)]
    assert m["crps"] == pytest.approx(np.mean(by_hand), abs=1e-12)


def test_ordinal_metrics():
    m = ordinal_metrics([0, 1, 2, 3], [0, 2, 2, 1], num_classes=4)
    assert (m["accuracy"], m["mae"], m["within_one"]) == (0.5, 0.75, 0.75)
    assert m["confusion"][1][2] == 1 and m["confusion"][3][1] == 1 and np.trace(m["confusion"]) == 2
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.2, 0.6, 0.1]])
    mp = ordinal_metrics([0, 3], probs)
    assert (mp["accuracy"], mp["mae"]) == (0.5, 0.5)
    assert mp["mae_expected"] == pytest.approx((0.4 + (3 - 1.7)) / 2)


def test_evaluate_heads_and_groups():
    df = pd.DataFrame(
        {
            "fold": [0, 0, 0, 0, 1, 1, 1],
            "riot": [0, 0, 1, 1, 0, 1, 0],
            "p": [0.1, 0.4, 0.35, 0.8, 0.3, 0.6, 0.2],
            "event_count": [0, 1, 3, 2, 0, 4, 0],
            "mu": [0.5, 1.0, 2.0, 2.0, 0.2, 3.0, 0.1],
        }
    )
    by = metrics_by_group(
        df, "fold", "riot", "p", threshold=0.5, count_col="event_count", mu_col="mu"
    )
    assert list(by) == [0, 1] and all(type(k) is int for k in by)
    assert by[0]["riot"]["auroc"] == pytest.approx(0.75)
    assert by[1]["riot"]["auroc"] == 1.0 and by[1]["riot"]["n"] == 3
    assert by[1]["event_count"]["mae"] == pytest.approx((0.2 + 1.0 + 0.1) / 3)
    heads = evaluate_heads(
        {"riot": Y4, "crowd_size": [0, 1, 2, 3], "fatalities": [0, 0, 1, 0]},
        {"riot": P4, "crowd_size": [0, 1, 2, 2], "fatalities": [0.1] * 4, "extra": [1] * 4},
    )
    assert list(heads) == ["riot", "crowd_size", "fatalities"]
    assert heads["crowd_size"]["accuracy"] == 0.75 and heads["fatalities"]["n"] == 4


# --------------------------------------------------------------------------- report


def _heads(auroc: float, aupr: float, n: int = 100, n_pos: int = 10, mae: float = 0.5) -> dict:
    bins = reliability_bins([0, 1, 1], [0.1, 0.6, 0.9])
    return {
        "riot": {
            "n": n,
            "n_pos": n_pos,
            "prevalence": n_pos / n,
            "auroc": auroc,
            "aupr": aupr,
            "brier": 0.08,
            "f1": 0.3,
            "ece": 0.02,
            "threshold": 0.2,
            "note": "",
            "reliability": bins,
        },
        "event_count": {"n": n, "mae": mae, "poisson_deviance": 0.7, "note": ""},
    }


@pytest.fixture
def table():
    model = {
        "fold0": {"riotvit": _heads(0.85, 0.40)},
        "fold1": {"riotvit": _heads(0.80, 0.30)},
        "fold2": {"riotvit": _heads(float("nan"), float("nan"), n_pos=0)},
        "temporal": {"riotvit": _heads(0.7, 0.25)},
    }
    base = {
        s: {"prevalence": _heads(0.5, a), "history_census": _heads(0.7, b)}
        for s, a, b in (
            ("fold0", 0.10, 0.20),
            ("fold1", 0.15, 0.25),
            ("fold2", float("nan"), float("nan")),
            ("temporal", 0.1, 0.2),
        )
    }
    return build_metrics_table(
        merge_results(model, base),
        primary="riotvit",
        calibration={"method": "temperature", "temperature": 1.7},
        threshold_method="f1",
        meta={"run": "test", "samples": Path("/data/samples.parquet")},
    )


def test_metrics_table_json_lift_and_summary(table, tmp_path):
    assert table.models == ["riotvit", "prevalence", "history_census"]
    assert table.splits == ["fold0", "fold1", "fold2", "temporal"]
    d = table.to_dict()
    assert d["folds"] == [0, 1, 2] and d["temporal"] == ["temporal"]
    lift = d["lift"]["aupr"]
    assert lift["per_split"]["fold0"]["prevalence"]["ratio"] == pytest.approx(4.0)
    assert lift["per_split"]["fold1"]["history_census"]["ratio"] == pytest.approx(1.2)
    assert lift["per_split"]["fold0"]["history_census"]["difference"] == pytest.approx(0.2)
    assert lift["per_split"]["fold2"]["prevalence"]["ratio"] is None  # nan -> null
    assert lift["per_split"]["temporal"]["prevalence"]["ratio"] == pytest.approx(2.5)
    # means over the spatial folds with a value (fold2 is undefined, temporal excluded)
    assert lift["mean"]["prevalence"]["ratio_mean"] == pytest.approx((4.0 + 2.0) / 2)
    assert lift["mean"]["prevalence"]["ratio_of_means"] == pytest.approx(0.35 / 0.125)
    assert lift["mean"]["history_census"]["difference_mean"] == pytest.approx((0.2 + 0.05) / 2)
    s = d["summary"]["spatial"]["riotvit"]["riot"]["aupr"]
    assert (
        s["mean"] == pytest.approx(0.35)
        and s["std"] == pytest.approx(np.std([0.4, 0.3], ddof=1))
        and s["n"] == 2
    )
    assert d["thresholds"]["fold1"]["riotvit"] == 0.2
    assert d["meta"]["samples"] == "/data/samples.parquet"
    paths = write_metrics(tmp_path, table)
    assert read_metrics(tmp_path) == d == json.loads(json.dumps(d))
    assert "NaN" not in paths["json"].read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "metrics.md"]


def test_metrics_markdown_rows(table):
    md = table.to_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]  # skip the header
    body = [r.split(" | ")[0][2:] for r in rows]
    assert body.count("fold0") == body.count("fold1") == body.count("fold2") == 3
    assert body.count("temporal") == 3 and body.count("mean") == 3
    assert len(rows) == 5 * 3
    fold0_model = next(r for r in rows if r.startswith("| fold0 | riotvit |"))
    assert fold0_model.split(" | ")[2:7] == ["100", "10", "0.850", "0.400", "0.080"]
    fold2_model = next(r for r in rows if r.startswith("| fold2 | riotvit |"))
    assert fold2_model.split(" | ")[4] == "–"
    mean_model = next(r for r in rows if r.startswith("| mean | riotvit |"))
    assert mean_model.split(" | ")[2] == "300" and mean_model.split(" | ")[5] == "0.350 ± 0.071"
    assert "AUPR lift of riotvit over prevalence: 3.00×" in md
    assert "Calibration: temperature" in md
    assert table.to_rich().row_count == 15


# --------------------------------------------------------------------------- plots


def _png(path, shape):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == shape
        arr = np.asarray(im.convert("L"), dtype=np.float64)
    assert arr.var() > 0


def test_plots_are_valid_png(tmp_path, table):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.4 + rng.random(500) * 0.6, 0, 1)
    bins = {
        "riotvit": reliability_bins(y, p),
        "prevalence": reliability_bins(y, np.full(500, y.mean())),
    }
    _png(reliability_diagram(bins, tmp_path / "rel.png"), (600, 650))
    hist = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [0.9, 0.6, 0.5],
            "val_loss": [0.95, 0.7, 0.66],
            "val_aupr": [0.2, 0.3, 0.35],
            "val_auroc": [0.6, 0.7, 0.75],
            "lr": [1e-3, 5e-4, 1e-4],
            "images_per_s": [900.0, 1000.0, 1100.0],
        }
    )
    _png(training_curves(hist, tmp_path / "curves.png"), (1000, 400))
    _png(
        pr_curves(
            {"riotvit": (y, p), "prevalence": (y, np.full(500, y.mean()))}, tmp_path / "pr.png"
        ),
        (600, 500),
    )
    written = write_reliability_plots(tmp_path / "run", table)
    assert [w.name for w in written] == [
        "reliability.png",
        "reliability_fold0.png",
        "reliability_fold1.png",
        "reliability_fold2.png",
        "reliability_temporal.png",
    ]
    _png(written[0], (600, 650))
    assert not list(tmp_path.glob("**/*.tmp*"))


def test_reliability_diagram_is_deterministic_and_draws_what_it_says(tmp_path):
    rng = np.random.default_rng(3)
    p = rng.beta(1, 8, 2000)
    y = (rng.random(2000) < p).astype(int)
    bins = {"riotvit": reliability_bins(y, p), "persistence": reliability_bins(y, np.where(p > 0.2, 0.4, 0.05))}
    assert all(c >= 30 for c in bins["riotvit"]["count"]) and len(bins["riotvit"]["count"]) == 15
    title = "test origin 2022-06-15, held-out blocks, calibrated"
    a = reliability_diagram(bins, tmp_path / "a.png", title=title)
    b = reliability_diagram(bins, tmp_path / "b.png", title=title)
    assert a.read_bytes() == b.read_bytes()
    _png(a, (600, 650))
    # the figure carries the title, the bin rule, error bars and one count label per bin
    from unittest import mock

    import matplotlib.axes

    calls = []
    real = matplotlib.axes.Axes.annotate
    with mock.patch.object(matplotlib.axes.Axes, "annotate", autospec=True,
                           side_effect=lambda self, *a, **k: calls.append(a[0]) or real(self, *a, **k)):
        reliability_diagram(bins, tmp_path / "c.png", title=title)
    n_bins = len(bins["riotvit"]["count"]) + len(bins["persistence"]["count"])
    assert calls == [str(c) for m in bins.values() for c in m["count"]] and len(calls) == n_bins
    # old equal-width bins without intervals still draw
    old = {k: v for k, v in reliability_bins(y, p, strategy="uniform").items() if not k.startswith("ci_")}
    _png(reliability_diagram({"old": old}, tmp_path / "old.png"), (600, 650))


def test_thin_labels_replace_the_lift_with_a_plain_sentence():
    model = {f"fold{k}": {"riotvit": _heads(0.9, 0.6, n=40, n_pos=3)} for k in range(3)}
    base = {f"fold{k}": {"prevalence": _heads(0.5, 0.08, n=40, n_pos=3)} for k in range(3)}
    table = build_metrics_table(merge_results(model, base), primary="riotvit")
    md = table.to_markdown()
    assert "Data too thin for a meaningful AUPR: 9 positive crops of 120" in md
    assert "AUPR lift" not in md
    d = table.to_dict()["thin_data"]
    assert d["thin"] and d["positives"] == 9 and d["crops"] == 120
    assert table.to_rich().caption.startswith("Data too thin")


def test_forecast_verdicts_say_thin_instead_of_beats():
    from riotvit.train.forecast_report import ForecastReport

    rep = ForecastReport(0, 365)
    rep.origins = [{"origin": "2023-01-01"}]
    scores = lambda aupr, pos: {"aupr": aupr, "n": 173, "positives": pos}  # noqa: E731
    rep.scores = {"2023-01-01": {
        "held-out blocks": {"riotvit": scores(0.41, 8), "persistence": scores(0.06, 8)},
        "all blocks": {"riotvit": scores(0.5, 30), "persistence": scores(0.2, 30)},
    }}
    v = rep.verdicts()
    assert v[0].startswith("2023-01-01, held-out blocks: Data too thin for a meaningful AUPR: 8 positive crops of 173")
    assert v[1] == "2023-01-01, all blocks: riotvit beats persistence in AUPR (0.500 vs 0.200)"
