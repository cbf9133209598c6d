"""The forecast window, the feature labels, quantile risk classes, stride cells and the Identify sentence."""

from __future__ import annotations

import sqlite3
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from riotvit.errors import InputError
from riotvit.grid import CropGrid
from riotvit.labels import axis_label, driver_phrase, feature_label
from riotvit.publish.identify import field_aliases, summary_text
from riotvit.publish.layers import stride_cells, write_gpkg
from riotvit.publish.styles import embed_gpkg_style, quantile_classes, risk_class, risk_vector_qml
from riotvit.train.plots import best_epoch_of, training_curves
from riotvit.window import ForecastWindow, forecast_window

W = ForecastWindow.from_origin(date(2022, 6, 15), 0, 730, ("Riots",))


def test_window_dates_label_and_round_trip():
    assert (W.start, W.end) == (date(2022, 6, 15), date(2024, 6, 13))  # 730 days, the last one inclusive
    assert W.label == "P(≥ 1 riot), 2022-06-15 → 2024-06-13" and W.short == "Jun 2022–Jun 2024"
    d = W.to_dict()
    assert d == {"as_of": "2022-06-15", "start": "2022-06-15", "end": "2024-06-13", "lead_days": 0,
                 "horizon_days": 730, "event_types": ["Riots"], "label": W.label}
    assert ForecastWindow.from_dict(d) == W
    lead = ForecastWindow.from_origin(date(2022, 6, 15), 30, 365)
    assert (lead.start, lead.end) == (date(2022, 7, 15), date(2023, 7, 14))
    with pytest.raises(InputError, match="run.json"):
        ForecastWindow.from_dict({"as_of": "2022-06-15"})


def test_window_from_bundle_meta_prefers_the_forecast_entry():
    meta = {"targets": {"lead_days": 0, "horizon_days": 365, "riot_event_types": ["Riots", "Protests"]}}
    w = forecast_window(meta, date(2022, 1, 1))
    assert w.end == date(2022, 12, 31) and w.event_types == ("Riots", "Protests") and w.noun == "riot or protest"
    w2 = forecast_window({**meta, "forecast": {"lead_days": 7, "horizon_days": 30}}, date(2022, 1, 1))
    assert (w2.start, w2.end) == (date(2022, 1, 8), date(2022, 2, 6))
    with pytest.raises(InputError, match="bundle.json"):
        forecast_window({"targets": {}}, date(2022, 1, 1))


@pytest.mark.parametrize("name, value, text", [
    ("hist_riots_365d_2km", 4, "4 riots within 2 km in the year before"),
    ("hist_protests_90d_crop", 2, "2 protests in the cell in the 3 months before"),
    ("hist_battles_90d_10km", 1, "1 battle within 10 km in the 3 months before"),
    ("hist_days_since_riot_10km", 120, "days since the last riot within 10 km 120"),
    ("census_youth_share", 0.38, "youth share 38%"),
    ("census_population", 51068.287, "population 51,068 people"),
    ("census_pop_density_km2", 1234.5, "population density 1,234 people/km²"),
    ("image", float("nan"), "imagery"),
])
def test_features_read_as_words_with_units(name, value, text):
    assert feature_label(name).describe(value) == text


def test_driver_phrases_axis_labels_and_aliases():
    assert driver_phrase("hist_riots_365d_2km", 4, 0.2712) == "4 riots within 2 km in the year before (+0.27)"
    assert driver_phrase("image", float("nan"), 0.09) == "imagery (+0.09)"
    assert axis_label("census_pop_density_km2") == "population density (people/km²)"
    al = field_aliases(["riot_probability", "hist_riots_365d_2km", "shap_census_youth_share", "driver_1_shap"])
    assert al == {"riot_probability": "riot probability (probability)",
                  "hist_riots_365d_2km": "riots within 2 km in the year before",
                  "shap_census_youth_share": "effect of youth share (SHAP, log-odds)",
                  "driver_1_shap": "driver 1: SHAP (log-odds)"}


def test_quantile_classes_show_the_ranking_of_any_distribution():
    p = np.random.default_rng(0).uniform(0.07, 0.53, 1335)  # the demo range: fixed classes gave 2 tones
    classes = quantile_classes(p)
    assert len(classes) == 5 and classes[0].lower == 0.07 and classes[-1].upper == 0.53
    counts = pd.Series(risk_class(p, classes)).value_counts()
    assert counts.min() >= 250 and counts.max() <= 290  # about a fifth each
    assert classes[0].label.startswith("0.070–0.1") and classes[-1].name == "highest fifth"
    flat = quantile_classes(np.full(10, 0.2))
    assert len(flat) == 1 and (risk_class(np.full(10, 0.2), flat) == flat[0].name).all()


def test_stride_cells_average_the_covering_crops_and_rank_drivers_again():
    grid = CropGrid(32737, crop_m=672.0, stride_m=336.0, crop_px=32)
    crops = pd.DataFrame({"crop_id": ["a", "b"], "col": [0, 1], "row": [0, 0], "riot_probability": [0.2, 0.4],
                          "valid_fraction": [1.0, 0.5], "shap_x": [0.3, -0.1], "shap_image": [0.1, 0.5],
                          "drivers_reliable": [True, True], "driver_1": ["x", "image"]})
    cells = stride_cells(crops, grid).set_index(["col", "row"])
    assert len(cells) == 6  # crop a covers cells 0..1 x 0..1, crop b 1..2 x 0..1
    assert cells.loc[(1, 0), "riot_probability"] == pytest.approx(0.3) and cells.loc[(1, 0), "crops"] == 2
    assert cells.loc[(0, 1), "riot_probability"] == pytest.approx(0.2) and cells.loc[(2, 1), "valid_fraction"] == 0.5
    assert cells.loc[(1, 0), "driver_1"] == "image" and cells.loc[(0, 0), "driver_1"] == "x"
    assert np.isnan(cells.loc[(1, 0), "driver_1_value"])


def test_summary_sentence_of_a_cell():
    cells = pd.DataFrame({"riot_probability": [0.3412], "uncertainty": [0.05], "valid_fraction": [0.5],
                          "shap_hist_riots_365d_2km": [0.27], "shap_image": [0.09], "expected_events": [0.84],
                          "events_p10": [0.0], "events_p90": [2.0],
                          "driver_1": ["hist_riots_365d_2km"], "driver_1_value": [4.0], "driver_1_shap": [0.27],
                          "driver_2": ["image"], "driver_2_value": [np.nan], "driver_2_shap": [0.09]})
    assert summary_text(cells, W) == ["P(≥ 1 riot, Jun 2022–Jun 2024) = 0.34 (± 0.05); expected riots 0.8 (10–90%: "
                                      "0–2); drivers: 4 riots within 2 km in the year before (+0.27), imagery (+0.09); "
                                      "partial cell: 50% imagery"]


def test_the_style_is_stored_in_the_geopackage(tmp_path):
    gdf = gpd.GeoDataFrame({"riot_probability": [0.1, 0.4], "edge": [False, True], "summary": ["a", "b"]},
                           geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs="EPSG:32737")
    path = tmp_path / "cells.gpkg"
    write_gpkg(gdf, path, "cells", "2022-06-15T00:00:00.000Z")
    qml = risk_vector_qml("riot_probability", 1.0, quantile_classes(gdf["riot_probability"]), hatch_edges=True,
                          aliases={"riot_probability": "riot probability"}, map_tip='[% "summary" %]',
                          display='"summary"')
    embed_gpkg_style(path, "cells", qml)
    embed_gpkg_style(path, "cells", qml)  # rewriting replaces, never duplicates
    con = sqlite3.connect(path)
    rows = con.execute("SELECT f_table_name, f_geometry_column, useAsDefault, styleQML FROM layer_styles").fetchall()
    con.close()
    assert len(rows) == 1 and rows[0][:3] == ("cells", "geom", 1) and rows[0][3] == qml
    assert 'mapTip>[% "summary" %]</mapTip>' in qml and "b_diagonal" in qml


def test_history_plot_marks_the_kept_epoch(tmp_path):
    h = pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [1.1, 0.9, 0.95, 1.0],
                      "val_aupr": [0.3, 0.5, 0.5, 0.4], "val_auroc": [0.6, 0.7, 0.7, 0.65],
                      "images_per_s": [500.0, 540.0, 560.0, 570.0]})
    assert best_epoch_of(h) == 2  # the first epoch with the highest AUPR, as training keeps it
    from PIL import Image

    def green(path):
        img = np.asarray(Image.open(path).convert("RGB")).astype(int)
        return int(((abs(img[..., 0] - 0x2C) < 30) & (abs(img[..., 1] - 0xA0) < 30) & (abs(img[..., 2] - 0x2C) < 30)).sum())

    assert green(training_curves(h, tmp_path / "history.png", images_per_s=453.0)) > 100  # the kept-epoch line, star
    assert green(training_curves(h.drop(columns="val_aupr"), tmp_path / "none.png")) == 0  # no AUPR: nothing marked
