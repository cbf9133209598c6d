"""The cells layers of a prediction: one polygon per crop in ``cells.gpkg`` and ``cells.geojson``.

The risk COG is written by :mod:`riotvit.publish.mosaic`, styles and the QGIS project by
:mod:`~riotvit.publish.styles` and :mod:`~riotvit.publish.qgis_project`. Everything is
deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer

from riotvit.grid import CropGrid
from riotvit.io import to_jsonable
from riotvit.publish.styles import risk_class


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
            feat = {"type": "Feature", "properties": {k: _property(v) for k, v in props.items()},
                    "geometry": {"type": "Polygon", "coordinates": [ring]}}
            self._js.write(("" if self._first else ",\n") + json.dumps(feat, separators=(",", ":"), default=to_jsonable))
            self._first = False
        self._n += len(df)

    def close(self) -> int:
        self._js.write("\n]}\n")
        self._js.close()
        if self._n == 0:
            self.geojson.unlink(missing_ok=True)
        return self._n


def _property(v: Any) -> Any:
    """A GeoJSON property value: floats rounded to 6 decimals, non-finite ones null."""
    if isinstance(v, (float, np.floating)):
        return round(float(v), 6) if np.isfinite(v) else None
    return v


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
    for k in ("events_p10", "events_p90", "view_spread"):  # an ensemble's count interval; the views' spread
        if k in pred:
            df[k] = np.round(pred[k].astype(np.float64), 6)
    return df
