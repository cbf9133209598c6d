"""A small tile set, ACLED-format events at chosen places and dates, and census polygons (by code)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from raster_fixtures import random_image, write_raster

from riotvit.join.events.vocab import ACLED_COLUMNS
from riotvit.tile.plan import TileConfig
from riotvit.tile.tiler import tile

EPSG = 32637
COL0, ROW_TOP = 600, 1000  # crop grid origin of the fixture image: x = 403200, y = 672000 (about 38.1 E, 6.1 N)
N_COLS, N_ROWS = 12, 10


def make_tileset(tmp: Path, date: str = "2022-03-01", overlap: float | None = None, crop_px: int = 16) -> Path:
    """A 12 x 10 crop tile set (672 m crops at a coarse 42 m GSD to stay small)."""
    gsd = 672.0 / crop_px
    data = random_image((3, N_ROWS * crop_px, N_COLS * crop_px), seed=1)
    from affine import Affine

    t = Affine(gsd, 0, COL0 * 672.0, 0, -gsd, ROW_TOP * 672.0)
    p = write_raster(tmp / f"img_{date}.tif", data, t, crs=f"EPSG:{EPSG}", tags={"ACQUISITION_DATE": date})
    out = tmp / f"tiles_{date}_{overlap}"
    tile([p], out, TileConfig(crop_px=crop_px, overlap=overlap))
    return out


def crop_centre(col: int, row: int) -> tuple[float, float]:
    return col * 672.0 + 336.0, row * 672.0 + 336.0


def write_events(path: Path, events: list[dict]) -> Path:
    """Write events given in grid coordinates (x, y) as a current-format ACLED CSV."""
    tr = Transformer.from_crs(EPSG, 4326, always_xy=True)
    rows = []
    for i, e in enumerate(events):
        lon, lat = tr.transform(e["x"], e["y"])
        et = e.get("event_type", "Riots")
        sub = {"Riots": "Violent demonstration", "Protests": "Peaceful protest", "Battles": "Armed clash",
               "Violence against civilians": "Attack", "Strategic developments": "Arrests",
               "Explosions/Remote violence": "Grenade"}[et]
        d = pd.Timestamp(e["date"])
        rows.append({
            "event_id_cnty": f"TST{i + 1}", "event_date": d.strftime("%Y-%m-%d"), "year": d.year,
            "time_precision": e.get("time_precision", 1), "disorder_type": "Political violence",
            "event_type": et, "sub_event_type": sub, "actor1": "Rioters (Testland)", "assoc_actor_1": "",
            "inter1": 5, "actor2": "", "assoc_actor_2": "", "inter2": 0, "interaction": 50, "civilian_targeting": "",
            "iso": 998, "region": "Eastern Africa", "country": "Testland", "admin1": "A", "admin2": "B", "admin3": "C",
            "location": "Testville", "latitude": round(lat, 6), "longitude": round(lon, 6),
            "geo_precision": e.get("geo_precision", 1), "source": "Test", "source_scale": "National",
            "notes": "Synthetic test event.", "fatalities": e.get("fatalities", 0), "tags": e.get("tags", ""),
            "timestamp": 1650000000,
        })
    pd.DataFrame(rows, columns=list(ACLED_COLUMNS)).to_csv(path, index=False)
    return path


def random_events(n: int, seed: int, t0: str = "2020-01-01", t1: str = "2023-12-31") -> list[dict]:
    rng = np.random.default_rng(seed)
    x0, y1 = COL0 * 672.0, ROW_TOP * 672.0
    types = ["Riots", "Protests", "Battles", "Violence against civilians", "Strategic developments",
             "Explosions/Remote violence"]
    days = (pd.Timestamp(t1) - pd.Timestamp(t0)).days
    out = []
    for _ in range(n):
        out.append({
            "x": x0 + rng.uniform(-3000, N_COLS * 672 + 3000), "y": y1 - rng.uniform(-3000, N_ROWS * 672 + 3000),
            "date": pd.Timestamp(t0) + pd.Timedelta(days=int(rng.integers(0, days))),
            "event_type": types[int(rng.choice(6, p=[0.3, 0.35, 0.05, 0.15, 0.1, 0.05]))],
            "geo_precision": int(rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05])),
            "time_precision": int(rng.choice([1, 2, 3], p=[0.85, 0.1, 0.05])),
            "fatalities": int(rng.poisson(0.3)),
            "tags": str(rng.choice(["crowd size=no report", "crowd size=around 50", "crowd size=around 300",
                                    "crowd size=several thousand"])),
        })
    return out


def write_census(path: Path) -> Path:
    """Four rectangular wards over the fixture area (EPSG:4326), with known totals."""
    x0, y1 = COL0 * 672.0, ROW_TOP * 672.0
    w, h = N_COLS * 672.0, N_ROWS * 672.0
    boxes = [shapely.box(x0, y1 - h / 2, x0 + w / 2, y1), shapely.box(x0 + w / 2, y1 - h / 2, x0 + w, y1),
             shapely.box(x0, y1 - h, x0 + w / 2, y1 - h / 2), shapely.box(x0 + w / 2, y1 - h, x0 + w, y1 - h / 2)]
    g = gpd.GeoDataFrame({"name": ["NW", "NE", "SW", "SE"], "population": [60000, 30000, 30000, 120000],
                          "households": [12000, 6000, 6000, 24000], "unemployment": [0.1, 0.2, 0.3, 0.4]},
                         geometry=boxes, crs=EPSG).to_crs(4326)
    g.to_file(path, driver="GPKG", VERSION="1.3")
    return path
