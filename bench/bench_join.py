"""Benchmark ``riotvit join``: 1,000,000 ACLED events against 100,000 crops.

Builds, by code, a 316 x 316 crop tile set (672 m crops stored at 4 px so the chip store stays
small: join never reads pixels), a 1 M-event ACLED CSV over the area and 50 census polygons, then
times the whole ``join`` and its parts (reading the export, targets, history, census).

    python bench/bench_join.py [--events 1000000] [--side 316] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def make_inputs(tmp: Path, side: int, n_events: int, seed: int = 0):
    import geopandas as gpd
    import shapely
    from affine import Affine
    from join_fixtures import write_events  # noqa: F401  (same column layout as the tests)
    from pyproj import Transformer
    from raster_fixtures import write_raster

    from riotvit.join.events.vocab import ACLED_COLUMNS
    from riotvit.tile.plan import TileConfig
    from riotvit.tile.tiler import tile

    rng = np.random.default_rng(seed)
    col0, row_top, px = 500, 1300, 4
    gsd = 672.0 / px
    data = rng.integers(1, 255, size=(1, side * px, side * px), dtype=np.uint8)
    img = write_raster(tmp / "img.tif", data, Affine(gsd, 0, col0 * 672.0, 0, -gsd, row_top * 672.0),
                       crs="EPSG:32637", tags={"ACQUISITION_DATE": "2022-03-01"})
    ts = tile([img], tmp / "tiles", TileConfig(crop_px=px, checksum=False)).path
    x0, y1, w = col0 * 672.0, row_top * 672.0, side * 672.0
    x = rng.uniform(x0 - 10_000, x0 + w + 10_000, n_events)
    y = rng.uniform(y1 - w - 10_000, y1 + 10_000, n_events)
    lon, lat = Transformer.from_crs(32637, 4326, always_xy=True).transform(x, y)
    types = np.array(["Riots", "Protests", "Battles", "Violence against civilians", "Strategic developments",
                      "Explosions/Remote violence"])
    subs = np.array(["Violent demonstration", "Peaceful protest", "Armed clash", "Attack", "Arrests", "Grenade"])
    k = rng.choice(6, n_events, p=[0.25, 0.4, 0.05, 0.15, 0.1, 0.05])
    dates = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, n_events), unit="D")
    df = pd.DataFrame({c: "" for c in ACLED_COLUMNS}, index=range(n_events))
    df["event_id_cnty"] = [f"BEN{i}" for i in range(n_events)]
    df["event_date"] = dates.strftime("%Y-%m-%d")
    df["year"] = dates.year
    df["time_precision"] = rng.choice([1, 2, 3], n_events, p=[0.9, 0.08, 0.02])
    df["disorder_type"] = "Political violence"
    df["event_type"] = types[k]
    df["sub_event_type"] = subs[k]
    df["actor1"] = "Rioters (Benchland)"
    df["inter1"], df["inter2"], df["interaction"] = 5, 0, 50
    df["iso"], df["country"], df["region"] = 997, "Benchland", "Eastern Africa"
    df["latitude"], df["longitude"] = np.round(lat, 5), np.round(lon, 5)
    df["geo_precision"] = rng.choice([1, 2, 3], n_events, p=[0.8, 0.17, 0.03])
    df["fatalities"] = rng.poisson(0.2, n_events)
    df["tags"] = np.where(rng.random(n_events) < 0.5, "crowd size=no report", "crowd size=around 200")
    df["timestamp"] = 1650000000
    acled = tmp / "acled.csv"
    df.to_csv(acled, index=False)
    seeds = rng.uniform([x0, y1 - w], [x0 + w, y1], size=(50, 2))
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=shapely.box(x0, y1 - w, x0 + w, y1))
    polys = [shapely.intersection(c, shapely.box(x0, y1 - w, x0 + w, y1)) for c in cells.geoms]
    census = tmp / "census.gpkg"
    gpd.GeoDataFrame({"population": rng.integers(1000, 100000, len(polys)), "rate": rng.random(len(polys))},
                     geometry=polys, crs=32637).to_file(census, driver="GPKG")
    return ts, acled, census


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--side", type=int, default=316, help="crops per side (316 -> 99,856 crops)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from riotvit.join.census import CensusConfig
    from riotvit.join.events.acled import read_acled
    from riotvit.join.events.labels import build_history, build_targets
    from riotvit.join.stage import JoinConfig, join, project_events
    from riotvit.tile.tileset import TileSet

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        ts, acled, census = make_inputs(tmp, args.side, args.events)
        print(f"inputs made in {time.perf_counter() - t:.1f} s ({args.events:,} events, {args.side**2:,} crops)")
        cfg = JoinConfig(census=CensusConfig(extensive=["population"], intensive=["rate"]))
        t = time.perf_counter()
        res = join(ts, acled, census, tmp / "samples.parquet", cfg)
        total = time.perf_counter() - t
        # the parts, timed separately
        t = time.perf_counter()
        ev, _ = read_acled(acled)
        t_read = time.perf_counter() - t
        tsx = TileSet.open(ts)
        tiles = tsx.tiles.drop(columns="geometry")
        ev = project_events(ev, 32637)
        spec = cfg.label_spec()
        t = time.perf_counter()
        build_targets(tiles, ev, tsx.grid, spec)
        t_targets = time.perf_counter() - t
        t = time.perf_counter()
        build_history(tiles, ev, tsx.grid, spec)
        t_hist = time.perf_counter() - t
    out = {
        "events": args.events, "crops": res.n_rows, "join_total_s": round(total, 2), "read_acled_s": round(t_read, 2),
        "targets_s": round(t_targets, 2), "history_s": round(t_hist, 2),
        "labels_and_history_events_per_s": round(args.events / (t_targets + t_hist)),
        "riot_positives": res.positives["riot"], "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()[0],
    }
    for k, v in out.items():
        print(f"{k:>34}: {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
