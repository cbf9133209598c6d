"""Plan a prediction: imagery that covers the region, the grid, the crops inside the region, blocks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import shapely
from pydantic import Field
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from riotvit.catalog import Catalog
from riotvit.config import StrictModel
from riotvit.device import DeviceName, Precision
from riotvit.errors import RasterError, RegionError
from riotvit.grid import CropGrid
from riotvit.predict.region import Region
from riotvit.tile.meta import stated_scaling
from riotvit.tile.plan import SourceSpec, grid_epsg
from riotvit.tile.source import RasterSource, open_source
from riotvit.train.meta import BundleMeta

PLAN_CELLS_WITHOUT_RAISE = 5_000_000
"""Crops in a region's extent above which planning refuses unless ``max_cells`` is raised to cover
them (``--yes`` alone is not enough): planning allocates per crop of the extent."""


class PredictConfig(StrictModel):
    """Options of ``riotvit predict``."""

    overlap: float | None = Field(None, ge=0, lt=1, description="Overlap between crops, 0..1 (default: the model's training grid); overlapping predictions are averaged per stride cell.")
    date: dt.date | None = Field(None, description="Prediction date: metadata (event history) is computed as of this date (default: the imagery's acquisition date).")
    crs: str | None = Field(None, description="Metric CRS of the grid (default: the imagery's own if metric, else its UTM zone).")
    min_valid: float = Field(0.5, ge=0, le=1, description="Skip crops with a smaller share of valid imagery pixels.")
    batch_size: int = Field(256, ge=1, description="Crops per forward pass.")
    tta: Literal[1, 2, 4, 8] = Field(8, description="Dihedral views per crop, averaged per model. An ensemble bundle's uncertainty is its members' spread (the views' spread is kept as view_spread); a single-model bundle's uncertainty band is the views' spread.")
    device: DeviceName = Field("auto", description="Where the model runs (auto = CUDA when available).")
    precision: Precision = Field("auto", description="Numeric precision (auto = bf16 autocast on CUDA, fp32 on CPU).")
    max_cells: int = Field(200_000, ge=1, description="Refuse regions with more crops than this unless --yes is given.")
    block_crops: int = Field(16, ge=1, le=256, description="Crops per side of a processing block; blocks are anchored on the grid.")
    metadata: Literal["auto", "none"] = Field("auto", description="auto: compute the model's metadata (event history, census) from its sources; none: treat all metadata as missing.")


@dataclass
class PredictPlan:
    grid: CropGrid
    sources: list[RasterSource]
    region: Region
    region_grid: shapely.Geometry  # region polygon in the grid CRS
    crops: pd.DataFrame  # col, row, crop_id of every crop to predict
    coverage: tuple[float, float, float, float]
    date: dt.date
    previous: list[RasterSource] = field(default_factory=list)  # the mosaic of the image date before (temporal models)

    @property
    def n_crops(self) -> int:
        return len(self.crops)

    def blocks(self, n: int) -> list[tuple[range, range, np.ndarray]]:
        """Blocks anchored at multiples of ``n`` crops (independent of the region), north first."""
        c, r = self.crops["col"].to_numpy(), self.crops["row"].to_numpy()
        bc, br = np.floor_divide(c, n), np.floor_divide(r, n)
        out = []
        keys = pd.DataFrame({"bc": bc, "br": br, "i": np.arange(c.size)}).groupby(["br", "bc"], sort=True)["i"]
        for _key, idx in sorted(keys, key=lambda kv: (-kv[0][0], kv[0][1])):
            ii = idx.to_numpy()
            cols = range(int(c[ii].min()), int(c[ii].max()) + 1)
            rows = range(int(r[ii].min()), int(r[ii].max()) + 1)
            out.append((cols, rows, ii))
        return out


def reorder_bands(s: RasterSource, model_bands: list[str]) -> RasterSource:
    """The source with its bands in the model's order (by name)."""
    if list(s.band_names) == list(model_bands):
        return s
    if sorted(s.band_names) != sorted(model_bands):
        raise RasterError(
            f"{s.path}: imagery bands ({', '.join(s.band_names)}) differ from the model's ({', '.join(model_bands)}); "
            "give imagery with the same bands, or name its bands with --bands"
        )
    pos = [s.band_names.index(b) for b in model_bands]
    return replace(s, band_names=tuple(model_bands), band_indexes=tuple(s.band_indexes[i] for i in pos))


def plan_prediction(
    specs: list[SourceSpec], region: Region, bundle_meta: BundleMeta, cfg: PredictConfig, bands: list[str] | None = None,
) -> PredictPlan:
    """Open the imagery, build the grid and list the crops of the region.

    Raises:
        RasterError: imagery bands differ from the model's.
        RegionError: the region lies outside the imagery.
    """
    if not specs:
        raise RegionError(f"region {region.name} ({region.bounds_text()}): no imagery given or found in the catalog; pass --imagery FILE")
    # read the imagery as the tile set was read: a --scale/--offset stated at tiling applies here too
    scale, offset = stated_scaling(bundle_meta.provenance.tileset.sources)
    srcs = [open_source(s.path, source_id=s.id, bands=bands or s.bands, date=s.date, checksum=True, sensor=s.sensor,
                        scale=s.scale if s.scale is not None else scale,
                        offset=s.offset if s.offset is not None else offset) for s in specs]
    model_bands = list(bundle_meta.bands)
    srcs = [reorder_bands(s, model_bands) for s in srcs]
    dates = sorted({s.date for s in srcs})
    usable = [d for d in dates if cfg.date is None or d <= cfg.date]
    if not usable:
        raise RasterError(f"--date {cfg.date}: every image is newer ({', '.join(map(str, dates))}); "
                          "predict as of a date on or after the imagery")
    # the newest mosaic on or before the date; the one before it is what a temporal model compares with
    previous = [s for s in srcs if len(usable) > 1 and s.date == usable[-2]]
    srcs = [s for s in srcs if s.date == usable[-1]]
    date = cfg.date or usable[-1]
    g0 = CropGrid.from_dict(bundle_meta.grid)
    epsg = grid_epsg(srcs[0], cfg.crs)
    grid = CropGrid.create(epsg, g0.crop_m, g0.crop_px,
                           stride_m=None if cfg.overlap is not None else g0.stride_m, overlap=cfg.overlap)
    dst = CRS.from_epsg(epsg)
    bs = np.array([s.bounds if s.epsg == epsg else transform_bounds(CRS.from_wkt(s.crs_wkt), dst, *s.bounds, densify_pts=21)
                   for s in srcs])
    cov = (float(bs[:, 0].min()), float(bs[:, 1].min()), float(bs[:, 2].max()), float(bs[:, 3].max()))
    rg = region.in_crs(epsg)
    cover = shapely.union_all([shapely.box(*b) for b in bs])
    if not rg.intersects(cover):
        lon0, lat0, lon1, lat1 = transform_bounds(dst, "EPSG:4326", *cov)
        raise RegionError(
            f"region {region.name} ({region.bounds_text()}) lies outside the imagery "
            f"(coverage: lon {lon0:.4f}..{lon1:.4f}, lat {lat0:.4f}..{lat1:.4f}); choose a region inside it or give --imagery for it"
        )
    cols, rows = grid.cells_in_bounds(rg.intersection(cover).bounds)
    n_box = len(cols) * len(rows)  # counted before anything per crop is allocated
    if n_box > max(cfg.max_cells, PLAN_CELLS_WITHOUT_RAISE):
        raise RegionError(
            f"region {region.name}: its extent spans {n_box:,} crops, over --max-cells {cfg.max_cells:,}; choose a "
            f"smaller region, or raise --max-cells to at least {n_box} (--yes alone allows up to "
            f"{PLAN_CELLS_WITHOUT_RAISE:,})"
        )
    cc, rr = np.meshgrid(np.array(cols), np.array(rows))
    cc, rr = cc.ravel(), rr.ravel()
    fp = grid.footprints(cc, rr)
    boxes = shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3])
    shapely.prepare(rg)
    keep = shapely.intersects(rg, boxes) & shapely.intersects(cover, boxes)
    crops = pd.DataFrame({"col": cc[keep], "row": rr[keep]})
    crops["crop_id"] = grid.crop_ids(crops["col"].to_numpy(), crops["row"].to_numpy())
    return PredictPlan(grid, srcs, region, rg, crops.reset_index(drop=True), cov, date, previous)


def catalog_imagery(region: Region, bands: list[str], catalog: Path | None) -> list[SourceSpec]:
    """Catalog rasters whose footprint meets the region and whose bands are the model's."""
    import shapely
    from rasterio.warp import transform_bounds


    try:
        cat = Catalog.load(catalog)
    except Exception:
        return []
    found = []
    for rid in cat.ids("raster"):
        r = cat.entries[rid]
        e = r.entry
        if r.path is None or not r.path.exists() or sorted(e.bands or []) != sorted(bands):
            continue
        try:
            s = open_source(r.path, source_id=e.id, bands=e.bands, date=e.acquisition_date, checksum=False)
        except Exception:
            continue
        from rasterio.crs import CRS

        b = transform_bounds(CRS.from_wkt(s.crs_wkt), "EPSG:4326", *s.bounds, densify_pts=21)
        if shapely.box(*b).intersects(region.geometry):
            found.append(SourceSpec(r.path, id=e.id, bands=e.bands, date=e.acquisition_date, categorical=e.categorical))
    return found
