"""Writers of the prediction folder: cells (GPKG + GeoJSON, streamed), the risk COG, styles,
the QGIS project and run.json. Everything is deterministic: the same inputs give the same bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import geometry_mask
from rasterio.windows import Window

from riotvit.grid import CropGrid
from riotvit.publish.cog import StreamingGeoTIFFWriter
from riotvit.publish.styles import risk_class

NODATA = -9999.0
RISK_BANDS = ("riot_probability", "expected_events", "uncertainty")


class CellsWriter:
    """One polygon per crop, appended band by band to ``cells.gpkg`` and ``cells.geojson``.

    The GeoPackage is in the grid CRS (version 1.3, which QGIS 3.22 reads without warnings; its
    timestamps are fixed so reruns give identical files); the GeoJSON is RFC 7946 (WGS 84 lon/lat),
    written as text feature by feature so memory never holds the whole region.
    """

    def __init__(self, out: Path, grid: CropGrid, stamp: str):
        self.out, self.grid = out, grid
        self.gpkg = out / "cells.gpkg"
        self.geojson = out / "cells.geojson"
        self._tr = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
        self._js = open(self.geojson, "w", encoding="utf-8")
        self._js.write('{"type": "FeatureCollection", "name": "cells", "features": [\n')
        self._first = True
        self._n = 0
        self._env = {"OGR_CURRENT_DATE": stamp}

    def add(self, df: pd.DataFrame) -> None:
        """Append rows with ``col``, ``row`` and attribute columns (crop_id first)."""
        if df.empty:
            return
        fp = self.grid.footprints(df["col"].to_numpy(), df["row"].to_numpy())
        geom = shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3], ccw=False)
        attrs = df.drop(columns=["col", "row"])
        gdf = gpd.GeoDataFrame(attrs, geometry=geom, crs=self.grid.crs)
        old = {k: os.environ.get(k) for k in self._env}
        os.environ.update(self._env)
        try:
            pyogrio.write_dataframe(gdf, self.gpkg, layer="cells", driver="GPKG", append=self._n > 0,
                                    dataset_options={"VERSION": "1.3"} if self._n == 0 else None)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        lon, lat = self._tr.transform(fp[:, [0, 2, 2, 0, 0]].ravel(), fp[:, [1, 1, 3, 3, 1]].ravel())
        lon, lat = lon.reshape(-1, 5), lat.reshape(-1, 5)
        recs = attrs.to_dict(orient="records")
        for i, props in enumerate(recs):
            ring = [[round(float(lon[i, k]), 7), round(float(lat[i, k]), 7)] for k in range(5)]
            feat = {"type": "Feature", "properties": {k: _json_value(v) for k, v in props.items()},
                    "geometry": {"type": "Polygon", "coordinates": [ring]}}
            self._js.write(("" if self._first else ",\n") + json.dumps(feat, separators=(",", ":")))
            self._first = False
        self._n += len(df)

    def close(self) -> int:
        self._js.write("\n]}\n")
        self._js.close()
        if self._n == 0:
            self.geojson.unlink(missing_ok=True)
        return self._n


def _json_value(v):
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else round(float(v), 6)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


class RiskRaster:
    """The risk COG at stride-cell resolution: each cell is the mean over the crops covering it.

    A stride cell belongs to a crop when the cell's centre lies in the crop. Cells whose centre
    lies outside the region, or that no predicted crop covers (missing imagery), are nodata.
    """

    def __init__(self, path: Path, grid: CropGrid, crops: pd.DataFrame, region_grid, tags: dict):
        s = grid.stride_m
        self.grid, self.region = grid, region_grid
        self.k = max(1, int(np.ceil(grid.crop_m / s - 0.5)))
        self.c0 = int(crops["col"].min())
        self.r_top = int(crops["row"].max()) + self.k - 1
        w = int(crops["col"].max()) + self.k - self.c0
        h = self.r_top - int(crops["row"].min()) + 1
        self.transform = Affine(s, 0, self.c0 * s, 0, -s, (self.r_top + 1) * s)
        self.writer = StreamingGeoTIFFWriter(path, w, h, len(RISK_BANDS), "float32", self.transform, grid.crs, NODATA,
                                             list(RISK_BANDS), tags=tags)
        self.width, self.height = w, h

    def add(self, cols: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        """Accumulate (n, 3) values of crops at ``cols``, ``rows``."""
        if cols.size == 0:
            return
        k = self.k
        j0, j1 = int(cols.min() - self.c0), int(cols.max() - self.c0) + k
        i0, i1 = int(self.r_top - (rows.max() + k - 1)), int(self.r_top - rows.min()) + 1
        h, w = i1 - i0, j1 - j0
        acc = np.zeros((len(RISK_BANDS), h, w))
        wt = np.zeros((h, w))
        for dy in range(k):
            for dx in range(k):
                ii = (self.r_top - (rows + dy)) - i0
                jj = (cols + dx - self.c0) - j0
                np.add.at(wt, (ii, jj), 1.0)
                for b in range(len(RISK_BANDS)):
                    np.add.at(acc[b], (ii, jj), values[:, b])
        t = self.transform @ Affine.translation(j0, i0)
        inside = ~geometry_mask([self.region], out_shape=(h, w), transform=t, all_touched=False)
        wt = np.where(inside, wt, 0.0)
        mean = np.divide(acc, wt, out=np.full_like(acc, NODATA), where=wt > 0).astype(np.float32)
        self.writer.accumulate(Window(j0, i0, w, h), mean, weight=wt.astype(np.float32))

    def close(self) -> Path:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


def cell_rows(crops: pd.DataFrame, pred: dict[str, np.ndarray], date: str) -> pd.DataFrame:
    """The attribute table of predicted crops (one row per crop)."""
    p = pred["riot_probability"].astype(np.float64)
    df = pd.DataFrame({
        "crop_id": crops["crop_id"].to_numpy(),
        "col": crops["col"].to_numpy(),
        "row": crops["row"].to_numpy(),
        "riot_probability": np.round(p, 6),
        "risk_class": risk_class(p),
        "expected_events": np.round(pred.get("expected_events", np.full(p.size, np.nan)).astype(np.float64), 6),
        "uncertainty": np.round(pred["uncertainty"].astype(np.float64), 6),
        "acquisition_date": date,
        "valid_fraction": np.round(crops["valid_fraction"].to_numpy().astype(np.float64), 4),
    })
    return df


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
