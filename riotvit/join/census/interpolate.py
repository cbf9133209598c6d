"""Areal interpolation of census polygon attributes onto crop footprints.

For a crop ``k`` and the census polygons ``p`` that overlap it:

- extensive variables (counts): ``V_k = sum_p V_p * w(p, k)`` with the area share
  ``w = area(p & k) / area(p)``, or, with a population raster, the population share
  ``w = pop(p & k) / pop(p)`` (see :mod:`riotvit.join.census.dasymetric`);
- intensive variables (rates, shares): the area-weighted mean over the covered part of ``k``;
- population density: ``pop_k / covered_area_km2``;
- coverage: the share of the crop's area covered by census polygons.

Every crop is computed on its own. When crops overlap (stride < crop), a polygon's count is
therefore split among overlapping crops independently, and summing a count over overlapping
crops double counts; sum over a non-overlapping grid to get totals. Where a crop has no census
coverage, every census value is NaN (unknown), not zero.

The geometry work is vectorised with shapely 2: one STRtree query for all (polygon, crop)
pairs, a prepared ``contains`` test that settles the crops lying wholly inside a polygon, and
``clip_by_rect`` only for crops on a polygon boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riotvit.errors import CensusError
from riotvit.grid import CropGrid
from riotvit.join.census.dasymetric import dasymetric_weights
from riotvit.join.census.read import CensusConfig, CensusReport, prepare_census, repair_geometries

_N_EXAMPLES = 5


@dataclass(frozen=True)
class Overlaps:
    """Every (polygon, crop) pair that overlaps, with the overlap area (grid CRS units²).

    Attributes:
        poly: polygon index of each pair.
        crop: crop index of each pair.
        area: area of ``polygon & crop``.
        poly_area: area of every polygon.
        crop_area: area of every crop.
    """

    poly: np.ndarray
    crop: np.ndarray
    area: np.ndarray
    poly_area: np.ndarray
    crop_area: np.ndarray

    def covered(self) -> np.ndarray:
        """Area of each crop covered by census polygons (capped at the crop's area)."""
        cov = np.bincount(self.crop, self.area, minlength=len(self.crop_area))
        return np.minimum(cov, self.crop_area)


@dataclass(frozen=True)
class CropLayout:
    """Where each crop sits on its grid: ``[col*stride, col*stride + crop)`` on each axis."""

    stride: float
    crop: float
    cols: np.ndarray
    rows: np.ndarray


def interpolate_to_crops(
    census: gpd.GeoDataFrame,
    crops: gpd.GeoDataFrame,
    config: CensusConfig,
    population_raster: str | Path | None = None,
    report: CensusReport | None = None,
    *,
    grid: CropGrid | None = None,
    resolution_m: float | None = None,
) -> pd.DataFrame:
    """Interpolate census attributes onto crops.

    Args:
        census: census polygons (any CRS), e.g. from :func:`read_census`.
        crops: one square footprint per crop in the grid CRS, with a ``crop_id`` column.
        config: column roles and output prefix.
        population_raster: people-per-pixel raster (any CRS, e.g. WorldPop 100 m). When given,
            extensive variables are split by population share instead of area share.
        report: the report from :func:`read_census`; it is completed here (coverage, method,
            assumptions). Without one, ``census`` is validated and repaired first.
        grid: the crop grid; only needed for the raster method when crop ids are not riotvit
            ids and there are no ``col``/``row`` columns.
        resolution_m: pixel size of the working grid for the raster method (default: about
            half the raster's pixel, at most crop_m / 8).

    Returns:
        A DataFrame indexed by ``crop_id`` in the order of ``crops``: ``{prefix}{var}`` for
        every extensive and intensive column, ``{prefix}pop_density_km2`` (people per km² of
        covered area) when there is a population column, and ``{prefix}coverage`` (0..1).
    """
    if report is None:
        census, report = prepare_census(census, config)
    else:
        _check_prepared(census, config, report)
    _check_crops(crops)
    if len(crops) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in output_columns(config)},
            index=pd.Index([], name="crop_id"),
        )
    census = _to_grid_crs(census, crops.crs, report)
    geoms = np.asarray(census.geometry.values, dtype=object)
    ov = overlaps(geoms, np.asarray(crops.geometry.values, dtype=object))
    covered = ov.covered()
    roles = config.roles()
    pop_col = config.population_column()

    weights = ov.area / np.where(ov.poly_area > 0, ov.poly_area, 1.0)[ov.poly]
    report.method = "areal"
    report.assumptions = []  # the interpolation owns them; a rerun replaces them
    if population_raster is not None:

        layout = crop_layout(crops, grid)
        dw = dasymetric_weights(
            geoms, ov.poly, layout, population_raster, crops.crs, resolution_m=resolution_m
        )
        keep = dw.fallback[ov.poly]  # areal pairs of polygons the raster cannot inform
        pair_poly = np.concatenate([ov.poly[keep], dw.poly])
        pair_crop = np.concatenate([ov.crop[keep], dw.crop])
        weights = np.concatenate([weights[keep], dw.weight])
        report.method = "dasymetric"
        report.assumptions += dw.notes(_ids(census, config.id_column))
    else:
        pair_poly, pair_crop = ov.poly, ov.crop
        report.assumptions.append(
            "extensive variables are split by area share (people spread evenly within each polygon)"
        )

    n = len(crops)
    no_cover = covered <= 0
    out: dict[str, np.ndarray] = {}
    for col in roles["extensive"]:
        v = np.nan_to_num(census[col].to_numpy(dtype=np.float64), nan=0.0)
        val = np.bincount(pair_crop, v[pair_poly] * weights, minlength=n)
        out[config.prefix + col] = np.where(no_cover, np.nan, val)
    for col in roles["intensive"]:
        v = census[col].to_numpy(dtype=np.float64)[ov.poly]
        ok = np.isfinite(v)
        num = np.bincount(ov.crop[ok], v[ok] * ov.area[ok], minlength=n)
        den = np.bincount(ov.crop[ok], ov.area[ok], minlength=n)
        out[config.prefix + col] = np.divide(num, den, out=np.full(n, np.nan), where=den > 0)
    if pop_col is not None:
        pop = out[config.prefix + pop_col]
        out[config.prefix + "pop_density_km2"] = np.divide(
            pop, covered / 1e6, out=np.full(n, np.nan), where=~no_cover
        )
    out[config.prefix + "coverage"] = covered / np.where(ov.crop_area > 0, ov.crop_area, 1.0)

    _finish_report(report, ov, covered, crops)
    index = pd.Index(crops["crop_id"].to_numpy(), name="crop_id")
    return pd.DataFrame(out, index=index)


def output_columns(config: CensusConfig) -> list[str]:
    """Names of the columns :func:`interpolate_to_crops` returns, in order."""
    roles = config.roles()
    names = roles["extensive"] + roles["intensive"]
    if config.population_column() is not None:
        names.append("pop_density_km2")
    return [config.prefix + n for n in names + ["coverage"]]


def overlaps(polys: np.ndarray, crops: np.ndarray) -> Overlaps:
    """All overlapping (polygon, crop) pairs and their overlap areas, vectorised.

    Crops wholly inside a polygon (a prepared ``contains`` test) take their own area; only
    boundary crops are clipped, with ``clip_by_rect`` when the crops are axis-aligned boxes.
    """
    crop_area = shapely.area(crops)
    poly_area = shapely.area(polys)
    tree = shapely.STRtree(crops)
    shapely.prepare(polys)
    pi, ci = tree.query(polys, predicate="intersects")
    inside = shapely.contains(polys[pi], crops[ci])
    area = np.where(inside, crop_area[ci], 0.0)
    edge = np.flatnonzero(~inside)
    if len(edge):
        area[edge] = shapely.area(shapely.intersection(polys[pi[edge]], crops[ci[edge]]))
    keep = area > 0
    return Overlaps(
        pi[keep].astype(np.int64), ci[keep].astype(np.int64), area[keep], poly_area, crop_area
    )


def crop_layout(crops: gpd.GeoDataFrame, grid: CropGrid | None = None) -> CropLayout:
    """Grid position of every crop, from ``grid``, ``col``/``row`` columns or riotvit crop ids.

    Raises:
        CensusError: when the footprints are not squares on one regular grid.
    """
    b = crops.geometry.bounds.to_numpy()
    size = b[:, 2] - b[:, 0]
    crop = float(grid.crop_m) if grid is not None else float(np.median(size))
    if grid is not None:
        stride = float(grid.stride_m)
    else:
        try:
            stride = CropGrid.parse_crop_id(str(crops["crop_id"].iloc[0]))[1]
        except Exception:  # noqa: BLE001 - not a riotvit id
            if not {"col", "row"} <= set(crops.columns):
                raise CensusError(
                    "crops: cannot tell the grid stride (crop ids are not riotvit ids and there "
                    "are no col/row columns); pass grid=CropGrid(...)"
                ) from None
            stride = _infer_stride(b[:, 0], crops["col"].to_numpy())
    if {"col", "row"} <= set(crops.columns):
        cols, rows = crops["col"].to_numpy(np.int64), crops["row"].to_numpy(np.int64)
    else:
        cols = np.round(b[:, 0] / stride).astype(np.int64)
        rows = np.round(b[:, 1] / stride).astype(np.int64)
    tol = 1e-3 + 1e-9 * np.abs(b).max()
    off = np.abs(b - np.stack([cols * stride, rows * stride, cols * stride + crop, rows * stride + crop], 1))
    if (off > tol).any():
        i = int(np.argmax(off.max(axis=1)))
        raise CensusError(
            f"crops: footprint of {crops['crop_id'].iloc[i]} {tuple(np.round(b[i], 3))} is not on "
            f"the {crop:g} m crop / {stride:g} m stride grid; build crops with riotvit.grid.CropGrid"
        )
    return CropLayout(stride, crop, cols, rows)


# -- helpers ---------------------------------------------------------------------------------


def _infer_stride(xmin: np.ndarray, cols: np.ndarray) -> float:
    nz = cols != 0
    if not nz.any():
        raise CensusError("crops: cannot infer the grid stride from a single column; pass grid=")
    return float(np.median(xmin[nz] / cols[nz]))


def _check_prepared(census: gpd.GeoDataFrame, config: CensusConfig, report: CensusReport) -> None:
    roles = config.roles()
    for col in roles["extensive"] + roles["intensive"]:
        if col not in census.columns or not pd.api.types.is_numeric_dtype(census[col]):
            raise CensusError(
                f"{report.path}: census column '{col}' is missing or not numeric in the layer "
                "passed with its report; read it with read_census using the same options"
            )


def _check_crops(crops: gpd.GeoDataFrame) -> None:
    if "crop_id" not in crops.columns:
        raise CensusError("crops: no crop_id column; pass the crops of a tile set (tiles.parquet)")
    if crops.crs is None:
        raise CensusError("crops: no CRS; crops must be in the grid CRS (a metric UTM-like CRS)")
    if not crops.crs.is_projected:
        raise CensusError(f"crops: CRS {crops.crs.to_string()} is not projected; crops must be in the metric grid CRS")
    dup = crops["crop_id"].duplicated()
    if dup.any():
        raise CensusError(f"crops: duplicated crop ids ({', '.join(map(str, crops['crop_id'][dup][:3]))}); pass each crop once")


def _to_grid_crs(census: gpd.GeoDataFrame, crs, report: CensusReport) -> gpd.GeoDataFrame:
    if census.crs is None:
        raise CensusError(f"{report.path}: the census layer has no CRS; set it with census crs: (e.g. EPSG:4326)")
    if census.crs == crs:
        return census
    out = census.to_crs(crs)
    out, bad = repair_geometries(out)
    if bad.any():
        report.warnings.append(f"{int(bad.sum())} polygon(s) became invalid when reprojected and were repaired")
    return out


def _ids(census: gpd.GeoDataFrame, id_column: str | None) -> np.ndarray:
    if id_column is not None and id_column in census.columns:
        return census[id_column].astype(str).to_numpy()
    return np.array([f"#{i}" for i in census.index], dtype=object)


def _finish_report(report: CensusReport, ov: Overlaps, covered: np.ndarray, crops: gpd.GeoDataFrame) -> None:
    total = float(ov.crop_area.sum())
    report.coverage = float(covered.sum() / total) if total > 0 else float("nan")
    raw = np.bincount(ov.crop, ov.area, minlength=len(ov.crop_area))
    over = raw > ov.crop_area * (1 + 1e-6)
    if over.any():
        report.warnings.append(
            f"census polygons overlap each other in {int(over.sum())} crop(s) "
            f"(e.g. {', '.join(map(str, crops['crop_id'].to_numpy()[over][:3]))}); counts there are summed "
            "over the overlapping polygons; fix the layer's topology"
        )
    if len(ov.crop) == 0:
        report.warnings.append("no census polygon overlaps any crop; check the census CRS and extent")
    b = crops.geometry.bounds.to_numpy()
    if len(b) > 1 and _any_overlap(b):
        report.assumptions.append(
            "crops overlap each other: each crop gets its own share, so sums over overlapping "
            "crops double count; sum over non-overlapping crops for totals"
        )
    report.assumptions.append(
        "intensive variables are area-weighted means over the covered part of each crop; "
        "all census values are NaN where a crop has no census coverage"
    )


def _any_overlap(b: np.ndarray) -> bool:
    w = float(np.median(b[:, 2] - b[:, 0]))
    xs = np.unique(np.round(b[:, 0], 6))
    ys = np.unique(np.round(b[:, 1], 6))
    gaps = np.concatenate([np.diff(xs), np.diff(ys)])
    return bool(len(gaps) and gaps.min() < w * (1 - 1e-9))
