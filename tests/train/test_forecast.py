"""Forecasts tested forward in time on the synthetic city observed at four dates.

The must-shows of honest forecasting: riotvit against persistence, history + census and
prevalence on the same crops at the last origin; onset cells; calibration; uncertainty that
ranks errors; count intervals that cover; a world whose imagery carries no signal; and
``riotvit evaluate`` reproducing the table from the bundle alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_fixtures import make_world

from riotvit.config import build_config
from riotvit.train.config import TrainConfig
from riotvit.train.evaluate import evaluate_bundle
from riotvit.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def forecast_config() -> TrainConfig:
    return build_config(TrainConfig, REPO / "configs" / "train_tiny.yaml")


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    world = make_world(root, size_km=12.0, crop_px=64, overlap=0.0, block_m=2688.0, buffer_m=0.0,
                       history_event_types=["Riots"], horizon_days=365, all_dates=True, exclude_geo_precision=(2, 3))
    res = train(world.tiles, world.samples, root / "model", forecast_config())
    return world, res


def scores(res, scope):
    rep = res.table
    return rep.scores[rep.last][scope]


def test_bundle_is_an_ensemble_tested_at_the_last_origin(forecast_run):
    world, res = forecast_run
    meta = json.loads((res.path / "bundle.json").read_text())
    fc = meta["forecast"]
    assert fc["origin"] == "2022-06-15" and fc["horizon_days"] == 365 and fc["lead_days"] == 0
    assert len(fc["members"]) == 5 and sorted(m["test_fold"] for m in fc["members"]) == [0, 1, 2, 3, 4]
    for m in fc["members"]:
        assert m["train_origins"] == ["2019-06-15", "2020-06-15", "2021-06-15"]
        assert (res.path / m["weights"]).is_file() and m["weights"] in meta["checksums"]
        base = m["baseline"]  # the history + census baseline travels as JSON, and predicts again from it
        assert base["kind"] == "logistic" and {"features", "classifier", "regressor", "prep"} <= set(base)
        assert base["features"] == meta["features"]["names"]
    md = (res.path / "metrics.md").read_text()
    card = (res.path / "model_card.md").read_text()
    for text in (md, card):
        assert "rolling-origin x spatial blocks" in text and "2019-06-15, 2020-06-15, 2021-06-15" in text
        for name in ("persistence", "history + census", "prevalence"):
            assert name in text
    assert not list(res.path.glob("cv*")) and not list(res.path.glob("checkpoint*"))


def test_riotvit_beats_history_and_persistence_where_the_city_changed(forecast_run):
    _, res = forecast_run
    held = scores(res, "held-out blocks")
    onset = scores(res, "held-out blocks / onset")
    assert held["riotvit"]["aupr"] > held["persistence"]["aupr"]
    assert held["riotvit"]["aupr"] > held["history + census"]["aupr"]
    assert onset["riotvit"]["aupr"] > onset["history + census"]["aupr"]
    assert held["riotvit"]["bss_climatology"] > 0


def test_calibrated_and_counts_sane(forecast_run):
    """Calibrated on 2021's validation crops, applied at 2022, whose riot rate rose from 6.5% to 10.5%.

    The stack is a residual on history + census, so the forecast's level follows the history
    features' rise; a free stack averaged 0.059 at 2022 and had ECE 0.062. Equal-mass bins of >= 30 crops.
    """
    _, res = forecast_run
    held = scores(res, "held-out blocks")
    assert held["riotvit"]["ece"] <= 0.05
    assert held["riotvit"]["ece"] <= held["history + census"]["ece"] + 0.01
    for model in ("history + census", "persistence", "riotvit"):
        assert held[model]["count_mae"] <= 2 * held["prevalence"]["count_mae"]


def test_uncertainty_ranks_errors_and_count_intervals_cover(forecast_run):
    _, res = forecast_run
    u = res.table.uncertainty
    assert u["members"] == 5
    assert u["top_quintile_abs_error"] > u["bottom_quintile_abs_error"]
    assert 0.75 <= u["count_coverage_80"] <= 0.85  # randomised PIT in [0.1, 0.9]
    assert u["count_interval_coverage_80"] >= 0.8  # the integer interval covers at least its level


def test_evaluate_reproduces_the_table_from_the_bundle(forecast_run):
    _, res = forecast_run
    rep, _ = evaluate_bundle(str(res.path))
    a, b = res.table.scores[res.table.last], rep.scores[rep.last]
    assert a.keys() == b.keys()
    for scope in a:
        for model in a[scope]:
            for k, v in a[scope][model].items():
                assert b[scope][model][k] == pytest.approx(v, abs=1e-9, nan_ok=True), (scope, model, k)


def test_imagery_without_signal_falls_back_to_history(forecast_run, tmp_path):
    """Shuffle which chip each row sees: the image carries no signal; riotvit must not fall below history."""
    world, _ = forecast_run
    df = pd.read_parquet(world.samples)
    import pyarrow.parquet as pq

    table = pq.read_table(world.samples)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(df))  # each row sees another crop's chip (crop_id travels with its chip)
    df[["chip_index", "crop_id"]] = df[["chip_index", "crop_id"]].to_numpy()[perm]
    shuffled = tmp_path / "samples.parquet"
    pq.write_table(pa_table(df, table.schema.metadata), shuffled)
    cfg = forecast_config()
    cfg = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"epochs": 8})})
    res = train(world.tiles, shuffled, tmp_path / "model", cfg)
    held = scores(res, "held-out blocks")
    assert held["riotvit"]["aupr"] >= held["history + census"]["aupr"] - 0.02
    print("no-signal world:", res.table.selected, {m: round(v["aupr"], 3) for m, v in held.items()})


def pa_table(df, metadata):
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(metadata)
