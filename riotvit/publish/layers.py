"""The vector layers of a prediction: ``cells.gpkg`` (layers ``cells`` and ``crops``) and ``cells.geojson``.

Crops are predicted one by one; with overlap a place lies in several crops. The map a reader
identifies must hold one value per place, the value of ``risk.tif`` there. So the predictor
streams per-crop rows into a temporary GeoPackage (:class:`CropsWriter`), and
:func:`write_cells` turns them into the **cells** layer: one polygon per stride cell (the pixels
of ``risk.tif``, non-overlapping), its probability, expected riots and uncertainty read from
``risk.tif``, its other numbers averaged over the crops covering it (the same crops
``risk.tif`` averages). With overlap the per-crop polygons are kept in the ``crops`` layer.

The risk COG is written by :mod:`riotvit.publish.mosaic`, styles and the QGIS project by
:mod:`~riotvit.publish.styles` and :mod:`~riotvit.publish.qgis_project`. Everything is
deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import rasterio
import shapely
from pyproj import Transformer

from riotvit.explain.drivers import NO_CLEAR_DRIVER
from riotvit.grid import CropGrid
from riotvit.io import to_jsonable
from riotvit.publish.identify import summary_text
from riotvit.publish.styles import RiskClass, quantile_classes, risk_class
from riotvit.window import ForecastWindow

#: Cells with less valid imagery than this are flagged ``edge`` (partial cells at the imagery edge).
EDGE_FRACTION = 0.99
#: Columns read from ``risk.tif`` (its bands, in order).
RASTER_COLUMNS = ("riot_probability", "expected_events", "uncertainty")


@contextmanager
def _ogr_date(stamp: str) -> Iterator[None]:
    """Fix the GeoPackage's timestamps so reruns give identical files."""
    old = os.environ.get("OGR_CURRENT_DATE")
    os.environ["OGR_CURRENT_DATE"] = stamp
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OGR_CURRENT_DATE", None)
        else:
            os.environ["OGR_CURRENT_DATE"] = old


def write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str, stamp: str, append: bool = False) -> None:
    """One layer into a GeoPackage 1.3 (which QGIS 3.22 reads without warnings); date columns stay dates."""
    new = not path.exists()
    with _ogr_date(stamp):
        pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", append=append, use_arrow=True,
                                dataset_options={"VERSION": "1.3"} if new else None)


class CropsWriter:
    """One polygon per predicted crop, appended batch by batch to a GeoPackage layer ``crops``."""

    def __init__(self, path: Path, grid: CropGrid, stamp: str):
        self.path, self.grid, self.stamp = path, grid, stamp
        self._n = 0

    def add(self, df: pd.DataFrame) -> None:
        """Append rows with ``col``, ``row`` and attribute columns (crop_id first)."""
        if df.empty:
            return
        fp = self.grid.footprints(df["col"].to_numpy(), df["row"].to_numpy())
        geom = shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3], ccw=False)
        gdf = gpd.GeoDataFrame(df.reset_index(drop=True), geometry=geom, crs=self.grid.crs)
        write_gpkg(gdf, self.path, "crops", self.stamp, append=self._n > 0)
        self._n += len(df)

    def close(self) -> int:
        return self._n


def cell_rows(crops: pd.DataFrame, pred: dict[str, np.ndarray]) -> pd.DataFrame:
    """The attribute table of predicted crops (one row per crop)."""
    p = pred["riot_probability"].astype(np.float64)
    df = pd.DataFrame({
        "crop_id": crops["crop_id"].to_numpy(),
        "col": crops["col"].to_numpy(),
        "row": crops["row"].to_numpy(),
        "riot_probability": np.round(p, 6),
        "expected_events": np.round(pred.get("expected_events", np.full(p.size, np.nan)).astype(np.float64), 6),
        "uncertainty": np.round(pred["uncertainty"].astype(np.float64), 6),
        "valid_fraction": np.round(crops["valid_fraction"].to_numpy().astype(np.float64), 4),
    })
    for k in ("events_p10", "events_p90", "view_spread"):  # an ensemble's count interval; the views' spread
        if k in pred:
            df[k] = np.round(pred[k].astype(np.float64), 6)
    return df


def cells_per_crop(grid: CropGrid) -> int:
    """Stride cells per crop side: a cell belongs to a crop when its centre lies in the crop (as in ``risk.tif``)."""
    return max(1, int(np.ceil(grid.crop_m / grid.stride_m - 0.5)))


def stride_cells(crops: pd.DataFrame, grid: CropGrid) -> pd.DataFrame:
    """Per-crop rows -> one row per stride cell, numbers averaged over the crops covering the cell.

    A crop at (col, row) covers cells (col + i, row + j), 0 <= i, j < k (:func:`cells_per_crop`).
    With one cell per crop (no overlap) the rows are the crops'. ``driver_*`` columns are kept
    only then: a ranking cannot be averaged (the cells' ``shap_*`` values are, and the top drivers
    are ranked again from them).
    """
    k = cells_per_crop(grid)
    if k == 1:
        return crops.assign(crops=1).reset_index(drop=True)
    num = [c for c in crops.columns if c not in ("crop_id", "col", "row") and not c.startswith("driver_")
           and pd.api.types.is_numeric_dtype(crops[c]) and not pd.api.types.is_bool_dtype(crops[c])]
    parts = [crops[num].assign(col=crops["col"].to_numpy() + i, row=crops["row"].to_numpy() + j)
             for i in range(k) for j in range(k)]
    allc = pd.concat(parts, ignore_index=True)
    g = allc.groupby(["col", "row"], sort=True)
    out = g[num].mean().round(6)
    out["crops"] = g.size()
    out = out.reset_index()
    out.insert(0, "crop_id", grid.crop_ids(out["col"].to_numpy(), out["row"].to_numpy()))
    if "drivers_reliable" in crops:  # a cell's drivers are reliable when every crop's were
        rel = pd.concat([crops[["drivers_reliable"]].assign(col=crops["col"].to_numpy() + i,
                                                            row=crops["row"].to_numpy() + j)
                         for i in range(k) for j in range(k)]).groupby(["col", "row"], sort=True)["drivers_reliable"].all()
        out["drivers_reliable"] = rel.to_numpy()
        out = out.join(rank_drivers(out, [c.removeprefix("shap_") for c in num if c.startswith("shap_")]))
    return out


def rank_drivers(cells: pd.DataFrame, players: list[str], top_k: int = 3) -> pd.DataFrame:
    """``driver_k``/``driver_k_effect``/``driver_k_shap`` ranked by |SHAP| (values unknown: NaN)."""

    v = cells[[f"shap_{p}" for p in players]].to_numpy(dtype=np.float64)
    order = np.argsort(-np.abs(np.nan_to_num(v)), axis=1, kind="stable")[:, :top_k]
    rel = cells["drivers_reliable"].to_numpy(dtype=bool)
    names = np.array(players, dtype=object)
    cols: dict[str, Any] = {}
    for k in range(order.shape[1]):
        s = v[np.arange(len(v)), order[:, k]]
        label = names[order[:, k]]
        label[~rel] = NO_CLEAR_DRIVER if k == 0 else ""
        cols[f"driver_{k + 1}"] = label
        cols[f"driver_{k + 1}_effect"] = np.where(~rel, "", np.where(s >= 0, "raises risk", "lowers risk"))
        cols[f"driver_{k + 1}_value"] = np.full(len(v), np.nan)
        cols[f"driver_{k + 1}_shap"] = np.where(rel, np.round(s, 6), np.nan)
    return pd.DataFrame(cols, index=cells.index)


@dataclass(frozen=True)
class CellLayer:
    """What :func:`write_cells` wrote: counts, the risk classes and the ranges the styles need."""

    n_cells: int
    n_crops: int
    n_edge: int
    classes: tuple[RiskClass, ...]
    probability_range: tuple[float, float]
    uncertainty_range: tuple[float, float]
    expected_range: tuple[float, float]
    fields: tuple[str, ...]
    n_crops_layer: int = 0


def _raster_values(path: Path, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``risk.tif``'s bands at stride cells (cols, rows): (n, bands), NaN where nodata."""
    with rasterio.open(path) as r:
        a = r.read(masked=True).astype(np.float64).filled(np.nan)
        t = r.transform
        stride = t.a
        j = np.round((cols * stride - t.c) / stride).astype(np.int64)
        i = np.round((t.f - (rows + 1) * stride) / stride).astype(np.int64)
    ok = (i >= 0) & (i < a.shape[1]) & (j >= 0) & (j < a.shape[2])
    out = np.full((cols.size, a.shape[0]), np.nan)
    out[ok] = a[:, i[ok], j[ok]].T
    return out


def cell_share(grid: CropGrid) -> float:
    """The share of a crop's expected riots that belongs to one stride cell: ``(stride / crop)²``
    (1 without overlap, a quarter at overlap 0.5)."""
    return (grid.stride_m / grid.crop_m) ** 2


def write_cells(work: Path, crops_path: Path, grid: CropGrid, window: ForecastWindow, stamp: str) -> CellLayer:
    """Write ``cells.gpkg`` (layer ``cells``; with overlap also ``crops``) and ``cells.geojson`` from the crops.

    Cells outside ``risk.tif``'s valid pixels (centre outside the region) are dropped, so the
    cells are exactly the raster's pixels. ``crops_path`` (the streamed per-crop layer) is removed.
    """
    crops = pyogrio.read_dataframe(crops_path, layer="crops", read_geometry=False, use_arrow=True)
    cells = stride_cells(crops, grid)
    vals = _raster_values(work / "risk.tif", cells["col"].to_numpy(), cells["row"].to_numpy())
    keep = ~np.isnan(vals[:, 0])
    cells = cells.loc[keep].reset_index(drop=True)
    for b, name in enumerate(RASTER_COLUMNS):
        cells[name] = np.round(vals[keep, b], 6)
    for name in ("events_p10", "events_p90"):  # the count interval per cell, as expected_events (cell_share)
        if name in cells.columns:
            cells[name] = np.round(cells[name].to_numpy(dtype=np.float64) * cell_share(grid), 6)
    p = cells["riot_probability"].to_numpy()
    classes = quantile_classes(p)
    cells.insert(cells.columns.get_loc("riot_probability") + 1, "risk_class", risk_class(p, classes))
    cells["edge"] = cells["valid_fraction"].to_numpy() < EDGE_FRACTION
    date32 = pd.ArrowDtype(pa.date32())
    for name, d in (("acquisition_date", window.as_of), ("window_start", window.start), ("window_end", window.end)):
        cells[name] = pd.Series([d] * len(cells), dtype=date32)
    cells["summary"] = summary_text(cells, window)
    s = grid.stride_m
    x0, y0 = cells["col"].to_numpy() * s, cells["row"].to_numpy() * s
    geom = shapely.box(x0, y0, x0 + s, y0 + s, ccw=False)
    gdf = gpd.GeoDataFrame(cells.drop(columns=["col", "row"]), geometry=geom, crs=grid.crs)
    gpkg = work / "cells.gpkg"
    write_gpkg(gdf, gpkg, "cells", stamp)
    n_crops_layer = 0
    if cells_per_crop(grid) > 1:
        n_crops_layer = len(crops)
        fp = grid.footprints(crops["col"].to_numpy(), crops["row"].to_numpy())
        cg = gpd.GeoDataFrame(crops.drop(columns=["col", "row"]), crs=grid.crs,
                              geometry=shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3], ccw=False))
        write_gpkg(cg, gpkg, "crops", stamp, append=False)
    write_geojson(gdf, work / "cells.geojson", grid.epsg)
    crops_path.unlink()
    return CellLayer(len(cells), len(crops), int(cells["edge"].sum()), classes, _range(p),
                     _range(cells["uncertainty"].to_numpy()), _range(cells["expected_events"].to_numpy()),
                     tuple(gdf.columns[:-1]), n_crops_layer)


def _range(a: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values; (0, 0) when there are none."""
    a = np.asarray(a, dtype=np.float64)
    return (float(np.nanmin(a)), float(np.nanmax(a))) if np.isfinite(a).any() else (0.0, 0.0)


def write_geojson(gdf: gpd.GeoDataFrame, path: Path, epsg: int, chunk: int = 4096) -> None:
    """RFC 7946 GeoJSON (WGS 84 lon/lat) of boxes, written as text feature by feature, floats to 6 decimals."""
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"type": "FeatureCollection", "name": "cells", "features": [\n')
        first = True
        for a in range(0, len(gdf), chunk):
            part = gdf.iloc[a:a + chunk]
            b = shapely.bounds(part.geometry.to_numpy())
            lon, lat = tr.transform(b[:, [0, 2, 2, 0, 0]].ravel(), b[:, [1, 1, 3, 3, 1]].ravel())
            lon, lat = lon.reshape(-1, 5), lat.reshape(-1, 5)
            for i, props in enumerate(pd.DataFrame(part.drop(columns="geometry")).to_dict(orient="records")):
                ring = [[round(float(lon[i, k]), 7), round(float(lat[i, k]), 7)] for k in range(5)]
                feat = {"type": "Feature", "properties": {k: _property(v) for k, v in props.items()},
                        "geometry": {"type": "Polygon", "coordinates": [ring]}}
                f.write(("" if first else ",\n") + json.dumps(feat, separators=(",", ":"), default=to_jsonable))
                first = False
        f.write("\n]}\n")


def _property(v: Any) -> Any:
    """A GeoJSON property value: floats rounded to 6 decimals, non-finite ones null, dates ISO."""
    if isinstance(v, (float, np.floating)):
        return round(float(v), 6) if np.isfinite(v) else None
    if hasattr(v, "isoformat"):
        return v.isoformat()[:10]
    if isinstance(v, np.bool_):
        return bool(v)
    return v
