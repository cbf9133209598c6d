"""Benchmark census interpolation onto crops (areal and dasymetric).

Synthetic case (always): a square of ``--side`` x ``--side`` crops of 672 m in UTM 37S, about
50 Voronoi polygons densified to ``--vertex-m`` metres (realistic vertex counts), and a WorldPop
-like people-per-pixel raster in EPSG:4326 at ~100 m with nodata holes.
Real case (when ../shared/data/real is present): Kenya's 47 counties (2019 census) onto the same
number of crops centred on Nairobi, and the WorldPop Nairobi raster.

Usage::

    python bench/bench_census.py                 # 316 x 316 = 99,856 crops
    python bench/bench_census.py --side 100 --overlap 0.5
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

from riotvit.grid import CropGrid
from riotvit.join.census import CensusConfig, interpolate_to_crops, prepare_census

REAL = Path(os.environ.get("RIOTVIT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
EPSG = 32737


def make_crops(grid: CropGrid, c0: int, r0: int, side: int) -> gpd.GeoDataFrame:
    """A side x side block of crops starting at (c0, r0)."""
    n_axis = int(round(side * grid.crop_m / grid.stride_m))
    cols, rows = np.meshgrid(np.arange(c0, c0 + n_axis), np.arange(r0, r0 + n_axis))
    cols, rows = cols.ravel(), rows.ravel()
    fp = grid.footprints(cols, rows)
    return gpd.GeoDataFrame(
        {"crop_id": grid.crop_ids(cols, rows), "col": cols, "row": rows},
        geometry=shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3]),
        crs=grid.crs,
    )


def synthetic_census(bounds, n: int, vertex_m: float, seed: int = 0) -> gpd.GeoDataFrame:
    """Voronoi polygons over ``bounds`` with random counts and rates."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = bounds
    pts = shapely.points(rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n))
    box = shapely.box(xmin, ymin, xmax, ymax)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box))
    cells = shapely.segmentize(shapely.intersection(cells, box), vertex_m)
    return gpd.GeoDataFrame(
        {
            "name": [f"unit{i}" for i in range(len(cells))],
            "population": rng.integers(50_000, 2_000_000, len(cells)).astype(float),
            "households": rng.integers(10_000, 500_000, len(cells)).astype(float),
            "youth_share": rng.uniform(0.2, 0.5, len(cells)),
        },
        geometry=cells,
        crs=f"EPSG:{EPSG}",
    )


def synthetic_raster(path: Path, bounds_utm, seed: int = 0) -> Path:
    """A WorldPop-like raster (EPSG:4326, ~100 m, float32, nodata holes) over ``bounds_utm``."""
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds(f"EPSG:{EPSG}", "EPSG:4326", *bounds_utm)
    res = 1 / 1200  # 3 arc-seconds
    width, height = int(np.ceil((e - w) / res)), int(np.ceil((n - s) / res))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    data = np.zeros((height, width), np.float32)
    for _ in range(30):  # towns
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 200)
        data += (rng.uniform(50, 500) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))).astype(np.float32)
    data[rng.random(data.shape) < 0.2] = -99999.0
    prof = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs="EPSG:4326",
                transform=Affine(res, 0, w, 0, -res, n), nodata=-99999.0, tiled=True, compress="deflate")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data, 1)
    return path


def timed(label: str, fn, repeat: int = 1):
    """Best wall and CPU time of ``repeat`` runs (CPU time is steadier on a busy machine)."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    print(f"{label:<28s} wall {best:6.2f} s   cpu {best_cpu:6.2f} s")
    return out


def run_case(name, census, crops, cfg, raster, repeat):
    census, report = prepare_census(census, cfg)
    nv = int(shapely.get_num_coordinates(np.asarray(census.geometry.values)).sum())
    print(f"\n== {name}: {len(crops):,} crops ({crops.crs}), {len(census)} polygons, {nv:,} vertices")
    timed("areal", lambda: interpolate_to_crops(census, crops, cfg, report=report), repeat)
    if raster is not None:
        timed("dasymetric", lambda: interpolate_to_crops(census, crops, cfg, raster, report=report), repeat)
        print("  " + "\n  ".join(report.lines()[-4:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=316, help="crops per side (at overlap 0)")
    ap.add_argument("--overlap", type=float, default=0.0)
    ap.add_argument("--polygons", type=int, default=50)
    ap.add_argument("--vertex-m", type=float, default=250.0, help="densify polygon edges to this spacing")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-real", action="store_true")
    args = ap.parse_args()
    grid = CropGrid.create(EPSG, overlap=args.overlap)

    crops = make_crops(grid, 300, 14600, args.side)
    bounds = tuple(crops.total_bounds)
    census = synthetic_census(bounds, args.polygons, args.vertex_m)
    cfg = CensusConfig(extensive=["population", "households"], intensive=["youth_share"], id_column="name")
    with tempfile.TemporaryDirectory() as tmp:
        raster = timed("make synthetic raster", lambda: synthetic_raster(Path(tmp) / "pop.tif", bounds))
        run_case("synthetic", census, crops, cfg, raster, args.repeat)

    gpkg = REAL / "kenya_counties_census2019" / "kenya_counties_census2019.gpkg"
    tif = REAL / "worldpop_nairobi" / "ken_pop_nairobi_100m.tif"
    if args.no_real or not gpkg.exists():
        return
    counties = gpd.read_file(gpkg)
    cx, cy = counties[counties.COUNTY == "Nairobi"].to_crs(EPSG).geometry.iloc[0].centroid.coords[0]
    half = args.side // 2
    c, r = grid.cell_of(np.array([cx]), np.array([cy]))
    real_crops = make_crops(grid, int(c[0]) - half, int(r[0]) - half, args.side)
    cfg = CensusConfig(extensive=["pop2019_total", "households2019"], intensive=["avg_hh_size2019"], id_column="COUNTY")
    run_case("real Kenya counties", counties, real_crops, cfg, tif if tif.exists() else None, args.repeat)


if __name__ == "__main__":
    main()
