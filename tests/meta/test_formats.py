"""The artifact formats: docs/formats.md matches the models, and files written before the models load."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from riotvit.errors import BundleError, SamplesError, TileSetError
from riotvit.formats import render_formats_md
from riotvit.join.samples import SamplesMeta
from riotvit.predict.meta import PredictionMeta
from riotvit.tile.meta import TileSetMeta
from riotvit.train.meta import BundleMeta

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"

GRID = {"epsg": 32737, "crop_m": 672.0, "stride_m": 336.0, "crop_px": 32, "gsd_m": 21.0, "stride_px": 16,
        "overlap": 0.5}
SOURCE = {"id": "city", "path": "/data/city.tif", "sha256": "d8ca", "date": "2022-06-15", "crs": "EPSG:32737",
          "res": [3.0, 3.0], "size": [1344, 1344], "dtype": "uint16", "nodata": None,
          "bands": ["blue", "green", "red", "nir"], "mask": "all_valid", "categorical": False, "n_crops": 165}
ACLED = {"path": "/data/acled.csv", "sha256": "9380", "variant": "current 31-column export",
         "date_range": ["2018-12-22", "2024-12-07"], "assumptions": ["event_date read as YYYY-MM-DD (%Y-%m-%d)"],
         "events": {"read": 325, "skipped while reading": 0, "used": 300}}
CENSUS = {"path": "/data/wards.gpkg", "sha256": "0a2e", "method": "areal",
          "columns": {"extensive": ["population"], "intensive": [], "population": ["population"], "id": ["ward"]},
          "coverage": 0.87, "population_raster": None}
FOLDS = {"n": 5, "block_m": 1344.0, "buffer_m": 0.0, "seed": 0, "test_fold": 0, "val_fold": 1}

# v1 documents as riotvit 0.1.0 wrote them (trimmed lists, same keys and shapes)
TILESET_V1 = {
    "format": "riotvit-tileset", "format_version": 1, "riotvit_version": "0.1.0", "signature": "526f267af5f352c6",
    "grid": GRID, "bands": ["blue", "green", "red", "nir"], "dtype": "uint16", "fill_value": 0, "n_crops": 165,
    "chip_shape": [4, 32, 32], "chips": {"path": "chips.npy", "masks": "masks.npy", "n_masked": 44},
    "tiles": "tiles.parquet", "extent": [432432.0, 9708048.0, 437136.0, 9712752.0], "dates": ["2022-06-15"],
    "stats": {"blue": {"mean": 880.0, "std": 418.3, "min": 308.0, "max": 2496.0, "p2": 336.0, "p98": 2010.0,
                       "count": 146432}},
    "stats_sample": {"rule": "(col + 7919 * row) % every == 0", "every": 1}, "sources": [SOURCE],
    "config": {"crop_m": 672.0, "crop_px": 32, "overlap": 0.5}, "warnings": [],
}
SAMPLES_V1 = {
    "format": "riotvit-samples", "format_version": 1, "riotvit_version": "0.1.0",
    "tileset": {"path": "/run/tiles", "signature": "526f267af5f352c6", "n_crops": 165, "grid": GRID,
                "bands": ["blue", "green", "red", "nir"]},
    "acled": ACLED, "census": CENSUS, "config": {"lead_days": 0, "horizon_days": 365, "riot_event_types": ["Riots"]},
    "features": ["census_population", "hist_riots_90d_crop"], "targets": ["riot", "event_count", "count_riots"],
    "type_counts": ["count_riots"], "label_windows": [["2022-06-15", "2023-06-15"]], "folds": FOLDS, "warnings": [],
}
BUNDLE_V1 = {
    "format": "riotvit-bundle", "format_version": 1, "riotvit_version": "0.1.0",
    "bands": ["blue", "green", "red", "nir"],
    "normalisation": {"bands": ["blue", "green", "red", "nir"], "mean": [1.0, 2.0, 3.0, 4.0], "std": [1.0] * 4},
    "input_px": 32, "tile_px": 32, "grid": GRID, "dtype": "uint16",
    "features": {"names": ["census_population"], "log1p": [True], "mean": [0.5], "std": [1.5]},
    "targets": {"heads": ["riot", "event_count"], "type_counts": ["count_riots"],
                "label_windows": [["2022-06-15", "2023-06-15"]], "riot_event_types": ["Riots"], "lead_days": 0,
                "horizon_days": 365},
    "calibration": {"method": "temperature", "temperature": 1.5, "note": ""}, "threshold": 0.498,
    "metrics": {"riotvit": {"riot": {"aupr": {"mean": 0.95, "std": float("nan"), "n": 1}}}},
    "split": {"name": "fold0", "test_fold": 0, "val_fold": 1, "n_train": 63, "n_val": 33, "n_test": 34},
    "config": {"model": {"backbone": "vit_tiny_patch16_224"}, "eval": {"baseline": "auto"}},
    "model": {"backbone": "vit_tiny_patch16_224", "params_total": 38679},
    "training": {"best_epoch": 1, "epochs_run": 2, "best_val_aupr": 0.89, "stopped_early": False, "seconds": 0.1,
                 "images_per_s": 982.6, "device": "cpu", "bf16": False, "compile": False},
    "provenance": {"tileset": {"path": "/run/tiles", "signature": "526f267af5f352c6",
                               "sources": [SOURCE]},
                   "samples": {"path": "/run/samples.parquet", "sha256": "abcd"},
                   "join": {"acled": ACLED, "census": {}, "config": {"lead_days": 0}, "folds": FOLDS}},
}
RUN_V0 = {  # run.json before it recorded its format
    "riotvit_version": "0.1.0",
    "model": {"path": "/run/model", "sha256": "a200", "format_version": 1, "backbone": "vit_tiny_patch16_224",
              "threshold": 0.498},
    "region": {"name": "bbox", "source": "bbox", "bbox_lonlat": [38.39, -2.63, 38.42, -2.60], "area_km2": 10.404},
    "date": "2022-06-15", "crs": "EPSG:32737", "grid": GRID,
    "imagery": [{"id": "city", "path": "/data/city.tif", "sha256": "d8ca", "date": "2022-06-15",
                 "bands": ["blue", "green", "red", "nir"]}],
    "metadata": {"mode": "none"},
    "counts": {"candidate_crops": 121, "predicted_crops": 121, "skipped_crops": 0},
    "tta_views": 2, "outputs": ["cells.geojson", "risk.tif"], "warnings": [],
}


def test_formats_doc_matches_the_models():
    assert DOC.read_text() == render_formats_md(), (
        "docs/formats.md is out of date with the metadata models; regenerate it with "
        "`python -m riotvit.formats > docs/formats.md`")


@pytest.mark.parametrize("model, doc", [(TileSetMeta, TILESET_V1), (SamplesMeta, SAMPLES_V1), (BundleMeta, BUNDLE_V1)])
def test_v1_documents_load_and_round_trip(model, doc):
    meta = model.from_dict(copy.deepcopy(doc), "old.json")
    assert json.dumps(meta.to_dict()) == json.dumps(doc)  # the same keys, order and values are written back


def test_typed_and_dict_style_reads_agree():
    b = BundleMeta.from_dict(copy.deepcopy(BUNDLE_V1), "bundle.json")
    assert b.features.names == b["features"]["names"] == ["census_population"]
    assert b.provenance.join.census is None and b.to_dict()["provenance"]["join"]["census"] == {}
    s = SamplesMeta.from_dict(copy.deepcopy(SAMPLES_V1), "samples.parquet")
    assert s.census.method == "areal" and s.folds.n == 5
    t = TileSetMeta.from_dict(copy.deepcopy(TILESET_V1), "tileset.json")
    assert t.crop_grid.crop_px == 32 and t.sources[0].n_crops == 165


def test_run_json_without_format_is_version_1():
    run = PredictionMeta.from_dict(copy.deepcopy(RUN_V0), "run.json")
    assert run.format == "riotvit-prediction" and run.format_version == 1 and run.explain is None
    out = run.to_dict()
    assert "explain" not in out and list(out)[:3] == ["format", "format_version", "riotvit_version"]


@pytest.mark.parametrize("model, doc, error", [(TileSetMeta, TILESET_V1, TileSetError),
                                               (SamplesMeta, SAMPLES_V1, SamplesError),
                                               (BundleMeta, BUNDLE_V1, BundleError)])
def test_unusable_documents_are_one_line_errors(model, doc, error):
    newer = dict(doc, format_version=99)
    with pytest.raises(error, match=r"format v99 is newer .*re-run riotvit"):
        model.from_dict(newer, "x.json")
    with pytest.raises(error, match=r"unknown.json: not a riotvit-\w+ document .*make it with riotvit"):
        model.from_dict(dict(doc, format="something"), "unknown.json")
    with pytest.raises(error, match=r"'surprise': Extra inputs are not permitted.*re-run riotvit"):
        model.from_dict(dict(doc, surprise=1), "x.json")
