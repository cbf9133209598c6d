"""A small prediction folder made by hand: what ``riotvit predict`` writes, without a model.

16 x 12 non-overlapping 672 m cells in UTM 37S (EPSG:32737) with a risk gradient and a hot
spot, half-empty cells along the right edge, an RGB image underneath, ``cells.gpkg`` with count
columns and ``shap_*`` drivers, ``run.json`` with the forecast window, styles and ``riotvit.qgs``.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

from riotvit.publish.qgis_project import LayerSpec, write_qgis_project
from riotvit.publish.styles import raster_rgb_qml, risk_raster_qml, risk_vector_qml

CRS = "EPSG:32737"
X0, Y1, CELL = 500_000.0, 9_000_000.0, 672.0
ROWS, COLS = 12, 16
EXTENT = (X0, Y1 - ROWS * CELL, X0 + COLS * CELL, Y1)
WINDOW = {"as_of": "2022-06-15", "start": "2022-06-15", "end": "2024-06-14", "lead_days": 0,
          "horizon_days": 731, "event_types": ["Riots"], "label": "P(≥ 1 riot), 2022-06-15 → 2024-06-14"}
DRIVERS = ("hist_riots_365d_2km", "census_youth_share", "image")


def risk_grid() -> np.ndarray:
    """(ROWS, COLS) probabilities: a west-east gradient plus a hot spot at row 4, col 10."""
    r, c = np.mgrid[0:ROWS, 0:COLS]
    p = 0.05 + 0.25 * c / (COLS - 1) + 0.45 * np.exp(-((r - 4) ** 2 + (c - 10) ** 2) / 6.0)
    return np.round(np.clip(p, 0, 0.95), 6)


def cells_frame() -> gpd.GeoDataFrame:
    """One polygon per cell with the prediction's columns (expected events = 3 * probability)."""
    p = risk_grid()
    r, c = np.mgrid[0:ROWS, 0:COLS]
    r, c = r.ravel(), c.ravel()
    x0, y1 = X0 + c * CELL, Y1 - r * CELL
    geom = shapely.box(x0, y1 - CELL, x0 + CELL, y1)
    prob = p.ravel()
    mu = np.round(3.0 * prob, 6)
    rng = np.random.default_rng(0)
    df = {"crop_id": [f"32737_672_{cc}_{rr}" for cc, rr in zip(c, r)], "riot_probability": prob,
          "expected_events": mu, "events_p10": np.floor(mu * 0.4), "events_p90": np.ceil(mu * 1.8),
          "uncertainty": np.round(0.02 + 0.05 * prob, 6),
          "valid_fraction": np.where(c == COLS - 1, 0.5, 1.0)}
    for i, name in enumerate(DRIVERS):
        df[f"shap_{name}"] = np.round(rng.normal(0, 0.02, r.size) + (0.1 - 0.04 * i) * (prob - prob.mean()), 6)
    return gpd.GeoDataFrame(df, geometry=geom, crs=CRS)


def write_prediction(out: Path, window: bool = True) -> Path:
    """Write the prediction folder into ``out`` (created) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    p = risk_grid().astype(np.float32)
    bands = np.stack([p, 3 * p, 0.02 + 0.05 * p]).astype(np.float32)
    tr = from_origin(X0, Y1, CELL, CELL)
    with rasterio.open(out / "risk.tif", "w", driver="GTiff", width=COLS, height=ROWS, count=3, dtype="float32",
                       crs=CRS, transform=tr, nodata=-9999.0) as ds:
        ds.write(bands)
        for i, name in enumerate(("riot_probability", "expected_events", "uncertainty"), 1):
            ds.set_band_description(i, name)
    # imagery: 48 m pixels, a green field with grey "streets", red roofs near the hot spot
    px = 48.0
    h, w = int(ROWS * CELL / px), int(COLS * CELL / px)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([np.full((h, w), 500.0), np.full((h, w), 900.0), np.full((h, w), 450.0)])
    streets = (xx % 14 == 0) | (yy % 14 == 0)
    rgb[:, streets] = 1300.0
    roofs = ((yy - 4.5 * CELL / px) ** 2 + (xx - 10.5 * CELL / px) ** 2) < (2 * CELL / px) ** 2
    rgb[0, roofs & ~streets], rgb[1, roofs & ~streets] = 1500.0, 700.0
    with rasterio.open(out / "imagery.tif", "w", driver="GTiff", width=w, height=h, count=3, dtype="uint16",
                       crs=CRS, transform=from_origin(X0, Y1, px, px)) as ds:
        ds.write(rgb.astype(np.uint16))
    cells_frame().to_file(out / "cells.gpkg", layer="cells", driver="GPKG")
    run = {"date": "2022-06-15", "region": {"name": "Testville"}, "crs": CRS,
           "imagery": [{"id": "s2-test", "path": "imagery.tif", "date": "2022-06-15", "bands": ["red", "green", "blue"]}],
           "model": {"path": "no-bundle"}}
    if window:
        run["window"] = WINDOW
    (out / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    label = WINDOW["label"]
    layers = [
        LayerSpec(f"cells: {label}", "cells.gpkg", "vector", "ogr", risk_vector_qml(), layer_name="cells",
                  visible=False),
        LayerSpec(f"risk: {label}", "risk.tif", "raster", "gdal", risk_raster_qml(1), opacity=0.7),
        LayerSpec("imagery s2-test (2022-06-15)", "imagery.tif", "raster", "gdal",
                  raster_rgb_qml(1, 2, 3, [(300.0, 1600.0)] * 3)),
    ]
    write_qgis_project(out / "riotvit.qgs", layers, CRS, EXTENT, "riotvit: riot risk, Testville")
    return out
