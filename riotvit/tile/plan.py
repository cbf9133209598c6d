"""Plan a tiling run without reading pixels: sources, grid CRS, crop candidates, blocks.

This is what ``riotvit tile --dry-run`` prints, and what the tiler executes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from riotvit.config import StrictModel
from riotvit.errors import ConfigError, GridError, RasterError
from riotvit.grid import CropGrid, utm_epsg
from riotvit.sensors import check_sensor
from riotvit.tile.dates import sidecar_dates
from riotvit.tile.source import RasterSource, open_source

Resampling = Literal["nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode"]


MAX_CROPS = 2_000_000
"""Default bound on the candidate crops of one tiling run (``TileConfig.max_crops``)."""
MAX_BLOCK_BYTES = 4 << 30
"""Bound on the pixels of one processing block (crops per block x crop pixels x bands)."""


class TileConfig(StrictModel):
    """Options of ``riotvit tile``."""

    crop_m: float = Field(672.0, gt=0, description="Crop side on the ground, metres.")
    crop_px: int = Field(224, gt=0, description="Crop side in pixels; the GSD is crop_m / crop_px (3 m by default).")
    stride_m: float | None = Field(None, gt=0, description="Distance between crop origins, metres (default: crop_m, no overlap).")
    overlap: float | None = Field(None, ge=0, lt=1, description="Overlap between neighbouring crops, 0..1 (0.5 = half); alternative to stride_m.")
    crs: str | None = Field(None, description="Metric CRS of the grid, e.g. EPSG:32637 (default: the raster's own if projected in metres, else the UTM zone of its centre).")
    min_valid: float = Field(0.5, ge=0, le=1, description="Drop crops whose share of valid (non-nodata) pixels is below this.")
    resampling: Resampling = Field("bilinear", description="Resampling for imagery when the source pixel size or CRS differs from the grid.")
    categorical: bool = Field(False, description="The rasters hold classes, not reflectance: resample with nearest neighbour.")
    bands: list[str] | None = Field(None, description="Band names, one per data band (default: the raster's band descriptions or the catalog).")
    date: dt.date | None = Field(None, description="Acquisition date YYYY-MM-DD of every raster (default: the catalog entry, the dates file, or the raster's tags).")
    dates: str | None = Field(None, description="CSV with columns file,date giving each raster's date by file name or glob pattern (e.g. *_2021.tif,2021-03-16); without it a dates.csv next to the rasters is read if present. Rasters of one date are mosaicked; several dates make one tile set.")
    sensor: str | None = Field(None, description="Sensor of band ids in bands: sentinel2, landsat8 (8/9) or landsat7 (5/7); needed where an id is ambiguous (B4 is red on sentinel2 and landsat8, NIR on landsat7).")
    scale: float | None = Field(None, gt=0, description="Reflectance = raw * scale + offset, for rasters without GDAL scale/offset metadata (e.g. 0.0001 for Sentinel-2 L2A x 10000). Recorded per source in tileset.json.")
    offset: float | None = Field(None, description="Reflectance offset added after scale (e.g. -0.1 for Sentinel-2 L2A from processing baseline 04.00), for rasters without GDAL offset metadata.")
    write_geotiffs: bool = Field(False, description="Also write every crop as a small georeferenced GeoTIFF (geotiffs/) for inspection in QGIS.")
    block_crops: int = Field(32, ge=1, le=512, description="Crops per side of a processing block; memory is bounded by one block.")
    checksum: bool = Field(True, description="Record each source file's sha256 in tileset.json for provenance.")
    max_crops: int = Field(MAX_CROPS, ge=1, exclude=True, description="Refuse a plan with more candidate crops than this (a unit typo such as --crop-m 0.001 plans billions); raise it for a really large area. Not part of the tile set (left out of its signature).")

    @model_validator(mode="after")
    def _stride_or_overlap(self) -> TileConfig:
        if self.stride_m is not None and self.overlap is not None:
            raise ValueError("give either stride_m or overlap, not both")
        return self

    def make_grid(self, epsg: int) -> CropGrid:
        return CropGrid.create(epsg, self.crop_m, self.crop_px, stride_m=self.stride_m, overlap=self.overlap)


@dataclass(frozen=True)
class SourceSpec:
    """A raster to tile, with what the catalog or options say about it."""

    path: Path
    id: str | None = None
    bands: list[str] | None = None
    date: dt.date | None = None
    categorical: bool = False
    sensor: str | None = None  # of band ids in ``bands`` (e.g. from a STAC item's eo:bands)
    scale: float | None = None  # reflectance = raw * scale + offset (e.g. a STAC asset's raster:bands)
    offset: float | None = None


@dataclass(frozen=True)
class Block:
    """A rectangle of crops whose work depends on nothing else."""

    index: int
    group: int
    cols: range
    rows: range

    @property
    def n_candidates(self) -> int:
        return len(self.cols) * len(self.rows)


@dataclass
class TilePlan:
    grid: CropGrid
    sources: list[RasterSource]
    groups: list[list[int]]
    group_bounds: list[tuple[float, float, float, float]]
    blocks: list[Block]
    band_names: tuple[str, ...]
    dtype: str
    warnings: list[str] = field(default_factory=list)

    @property
    def n_candidates(self) -> int:
        return sum(b.n_candidates for b in self.blocks)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        b = np.array(self.group_bounds)
        return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))

    def summary(self) -> dict:
        e = self.extent
        return {
            "sources": len(self.sources),
            "dates": [self.sources[g[0]].date.isoformat() for g in self.groups],
            "grid_crs": self.grid.crs,
            "gsd_m": self.grid.gsd,
            "crop_m": self.grid.crop_m,
            "stride_m": self.grid.stride_m,
            "overlap": round(self.grid.overlap, 4),
            "crop_px": self.grid.crop_px,
            "bands": list(self.band_names),
            "dtype": self.dtype,
            "extent": [round(v, 3) for v in e],
            "area_km2": round((e[2] - e[0]) * (e[3] - e[1]) / 1e6, 3),
            "candidate_crops": self.n_candidates,
            "blocks": len(self.blocks),
            "warnings": list(self.warnings),
        }


def chip_dtype(sources: list[RasterSource]) -> str:
    """The chip store's dtype: the sources' own integer dtype when they share it and are stored
    unscaled, else float32 (never float64: reflectance x 10000 and scaled reflectance keep about 7
    significant digits in float32, which is more than the sensors measure, at half the bytes)."""
    dtypes = {s.dtype for s in sources}
    if len(dtypes) == 1 and all(s.scale is None for s in sources) and dtypes != {"float64"}:
        return dtypes.pop()
    return "float32"


def grid_epsg(first: RasterSource, crs: str | None) -> int:
    """The grid's metric CRS: ``crs`` if given, the raster's own if metric, else its UTM zone."""
    if crs:
        try:
            c = ProjCRS.from_user_input(crs)
        except Exception:
            raise ConfigError(f"--crs {crs}: unknown CRS; give an EPSG code such as EPSG:32637") from None
        units = (c.axis_info[0].unit_name if c.axis_info else "").lower()
        if not c.is_projected or units not in ("metre", "meter"):
            raise ConfigError(f"--crs {crs}: the grid needs a projected CRS in metres (e.g. a UTM zone)")
        epsg = c.to_epsg()
        if epsg is None:
            raise ConfigError(f"--crs {crs}: give the CRS as an EPSG code so crop ids stay stable")
        return epsg
    if first.is_metric:
        if first.epsg is None:
            raise RasterError(
                f"{first.path}: projected CRS has no EPSG code, so crop ids cannot name it; pass --crs EPSG:xxxx"
            )
        return first.epsg
    lon0, lat0, lon1, lat1 = transform_bounds(CRS.from_wkt(first.crs_wkt), "EPSG:4326", *first.bounds)
    return utm_epsg((lon0 + lon1) / 2, (lat0 + lat1) / 2)


def plan_tiles(specs: list[SourceSpec], cfg: TileConfig) -> TilePlan:
    """Open and check every source, choose the grid and list the blocks to process.

    Raises:
        RasterError: unusable rasters, or rasters whose bands differ.
        GridError / ConfigError: sizes or CRS that cannot make a grid.
    """
    if not specs:
        raise ConfigError("no raster given; pass one or more GeoTIFF paths or catalog ids")

    sensor = check_sensor(cfg.sensor)
    side = sidecar_dates([s.path for s in specs], cfg.dates)
    sources = [
        open_source(
            s.path, source_id=s.id, bands=cfg.bands or s.bands, date=cfg.date or s.date or d,
            categorical=cfg.categorical or s.categorical, checksum=cfg.checksum,
            sensor=sensor or s.sensor, scale=_first(cfg.scale, s.scale), offset=_first(cfg.offset, s.offset),
        )
        for s, d in zip(specs, side, strict=True)
    ]
    ids = [s.id for s in sources]
    if len(set(ids)) != len(ids):
        sources = [_rename(s, f"{s.id}_{i}") for i, s in enumerate(sources)]
    first = sources[0]
    for s in sources[1:]:
        if s.count != first.count or s.band_names != first.band_names:
            raise RasterError(
                f"{s.path}: bands ({', '.join(s.band_names)}) differ from {first.path.name} "
                f"({', '.join(first.band_names)}); rasters in one tile set must share bands — tile them separately or pass --bands"
            )
    dtype = chip_dtype(sources)
    epsg = grid_epsg(first, cfg.crs)
    try:
        grid = cfg.make_grid(epsg)
    except GridError:
        raise
    warnings = []
    for s in sources:
        mpp = min(s.pixel_size_m())
        across = grid.crop_m / mpp
        if across < 8:
            warnings.append(
                f"{s.path.name}: {mpp:.0f} m pixels give only {across:.1f} source pixels across a {grid.crop_m:g} m crop; "
                "crops will be smooth upsamplings — use finer imagery or a larger --crop-m"
            )
    dst = CRS.from_epsg(epsg)
    by_date: dict[dt.date, list[int]] = {}
    for i, s in enumerate(sources):
        by_date.setdefault(s.date, []).append(i)
    groups = [by_date[d] for d in sorted(by_date)]
    group_bounds = []
    blocks: list[Block] = []
    for g in groups:
        bs = []
        for i in g:
            s = sources[i]
            same = s.epsg == epsg
            bs.append(s.bounds if same else transform_bounds(CRS.from_wkt(s.crs_wkt), dst, *s.bounds, densify_pts=21))
        b = np.array(bs)
        gb = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
        group_bounds.append(gb)
    _check_size(grid, group_bounds, cfg, first.count, np.dtype(dtype).itemsize)
    for gi, gb in enumerate(group_bounds):
        cols, rows = grid.cells_in_bounds(gb)
        n = cfg.block_crops
        row_starts = list(range(rows.stop, rows.start, -n))  # north first
        for top in row_starts:
            rr = range(max(top - n, rows.start), top)
            for c in range(cols.start, cols.stop, n):
                blocks.append(Block(len(blocks), gi, range(c, min(c + n, cols.stop)), rr))
    return TilePlan(grid, sources, groups, group_bounds, blocks, first.band_names, dtype, warnings)


def _check_size(grid: CropGrid, group_bounds: list[tuple[float, float, float, float]], cfg: TileConfig,
                n_bands: int, itemsize: int) -> None:
    """Refuse, before anything is allocated, a plan whose crop count (counted from the extent) or
    block size is far beyond what was meant."""
    n = sum(grid.count_in_bounds(gb) for gb in group_bounds)
    if n > cfg.max_crops:
        raise GridError(
            f"--crop-m {grid.crop_m:g} / stride {grid.stride_m:g} m plans {n:,} candidate crops, over max_crops "
            f"{cfg.max_crops:,}; check the crop size (metres), or pass --max-crops {n} (or max_crops in the config) "
            "if the area really is this large"
        )
    side = min(cfg.block_crops, max(1, n))
    block = side * side * grid.crop_px * grid.crop_px * n_bands * itemsize
    if block > MAX_BLOCK_BYTES:
        raise GridError(
            f"--crop-px {grid.crop_px} with --block-crops {cfg.block_crops} needs {block / 2**30:,.0f} GiB per processing "
            f"block (limit {MAX_BLOCK_BYTES / 2**30:.0f} GiB); use a smaller --crop-px or --block-crops"
        )


def _first(*values: float | None) -> float | None:
    """The first value that is not None (an option beats a source's own)."""
    return next((v for v in values if v is not None), None)


def _rename(s: RasterSource, new_id: str) -> RasterSource:
    from dataclasses import replace

    return replace(s, id=new_id)
