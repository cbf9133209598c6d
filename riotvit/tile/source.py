"""Open and validate source rasters: CRS, bands, nodata/alpha, acquisition date, checksum.

Everything that can be wrong with a raster is found here, before any pixel is tiled, and
reported as one line naming the file and the fix.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from riotvit.errors import ConfigError, RasterError
from riotvit.io import file_sha256
from riotvit.sensors import ResolvedBand, resolve_bands

_DATE_TAGS = ("ACQUISITION_DATE", "acquisition_date", "DATE_ACQUIRED", "ACQUISITIONDATETIME", "DATE", "TIFFTAG_DATETIME")
_INTERP_NAMES = {ColorInterp.red: "red", ColorInterp.green: "green", ColorInterp.blue: "blue"}

SUPPORTED_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")
"""Pixel types a source may have: complex values and int8 (signed bytes, which no imagery uses and
the statistics would misread) are refused rather than silently cast."""


@dataclass(frozen=True)
class RasterSource:
    """A validated source raster. Band indexes are 1-based and exclude an alpha band."""

    id: str
    path: Path
    crs_wkt: str
    epsg: int | None
    is_metric: bool
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None
    band_names: tuple[str, ...]
    band_indexes: tuple[int, ...]
    alpha_index: int | None
    mask_kind: str  # "all_valid" | "nodata" | "alpha" | "per_dataset"
    date: dt.date
    sha256: str = field(repr=False)
    categorical: bool = False
    scale: tuple[float, ...] | None = None  # value = raw * scale + offset per band; None = as stored
    offset: tuple[float, ...] | None = None
    scale_from: str | None = None  # "file" (GDAL scale/offset) or "option" (--scale/--offset)
    resolved: tuple[ResolvedBand, ...] = field(default=(), repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.band_indexes)

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))

    def pixel_size_m(self) -> tuple[float, float]:
        """Approximate pixel size on the ground in metres (x, y), at the raster's centre."""
        from rasterio.crs import CRS
        from rasterio.warp import transform_bounds

        crs = CRS.from_wkt(self.crs_wkt)
        rx, ry = self.res
        if crs.is_projected:
            f = float(crs.linear_units_factor[1]) if crs.linear_units else 1.0
            return rx * f, ry * f
        lon0, lat0, lon1, lat1 = transform_bounds(crs, "EPSG:4326", *self.bounds)
        lat = np.radians((lat0 + lat1) / 2)
        return float(rx * 111_320 * np.cos(lat)), float(ry * 110_540)

    def scaled(self, data: np.ndarray) -> np.ndarray:
        """``data`` (C, ...) as reflectance: ``raw * scale + offset`` in float32 (unchanged without a scale)."""
        if self.scale is None:
            return data
        shape = (-1,) + (1,) * (data.ndim - 1)
        out = data.astype(np.float64) * np.asarray(self.scale).reshape(shape) + np.asarray(self.offset).reshape(shape)
        return out.astype(np.float32)

    def to_dict(self) -> dict:
        scaling = {} if self.scale is None else {
            "scale": list(self.scale), "offset": list(self.offset or ()), "scale_from": self.scale_from}
        return scaling | {
            "id": self.id,
            "path": str(self.path),
            "sha256": self.sha256,
            "date": self.date.isoformat(),
            "crs": f"EPSG:{self.epsg}" if self.epsg else self.crs_wkt,
            "res": list(self.res),
            "size": [self.width, self.height],
            "dtype": self.dtype,
            "nodata": self.nodata,
            "bands": list(self.band_names),
            "mask": self.mask_kind,
            "categorical": self.categorical,
        }


def parse_date(value: str | dt.date | dt.datetime | None, where: str) -> dt.date | None:
    """Parse an acquisition date from a tag or option (ISO, or TIFF 'YYYY:MM:DD HH:MM:SS')."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    m = re.match(r"^(\d{4})[-:/](\d{2})[-:/](\d{2})", s) or re.match(r"^(\d{4})(\d{2})(\d{2})$", s)
    if not m:
        raise RasterError(f"{where}: cannot read acquisition date '{s}'; use YYYY-MM-DD")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise RasterError(f"{where}: '{s}' is not a valid date; use YYYY-MM-DD") from None


def _date_from_tags(tags: dict[str, str]) -> str | None:
    for key in _DATE_TAGS:
        if tags.get(key):
            return tags[key]
    return None


def open_source(
    path: str | Path,
    *,
    source_id: str | None = None,
    bands: list[str] | None = None,
    date: str | dt.date | None = None,
    categorical: bool = False,
    checksum: bool = True,
    sensor: str | None = None,
    scale: float | None = None,
    offset: float | None = None,
) -> RasterSource:
    """Open a raster and check that it can be tiled.

    Args:
        path: GeoTIFF / COG (any GDAL raster works).
        source_id: id recorded per crop; defaults to the file stem.
        bands: band names or Sentinel-2/Landsat ids (must match the band count, alpha excluded);
            resolved to STAC common names through :mod:`riotvit.sensors`.
        date: acquisition date; else read from the raster's tags.
        categorical: resample with nearest neighbour (class maps).
        checksum: compute the file's sha256 for provenance.
        sensor: the sensor of band ids (``sentinel2``, ``landsat8``, ``landsat7``) where ambiguous.
        scale, offset: reflectance = raw * scale + offset, for a file without GDAL scale/offset.

    Raises:
        RasterError: missing, unreadable, truncated, no CRS, band names that do not fit, no date,
            a stated scale that contradicts the file's.
        ConfigError: band ids that are unknown or ambiguous without a sensor.
    """
    p = Path(path)
    if not p.exists():
        raise RasterError(f"{p}: file not found; check the path or the catalog entry")
    if p.is_dir():
        raise RasterError(f"{p}: is a folder, not a raster file")
    try:
        src = rasterio.open(p)
    except RasterioIOError as e:
        msg = str(e).split("\n")[0]
        raise RasterError(
            f"{p}: not a readable raster ({msg}); give a GeoTIFF/COG, or re-download it if it is truncated"
        ) from None
    with src:
        if src.crs is None:
            raise RasterError(
                f"{p}: raster has no CRS; assign one first, e.g. gdal_edit.py -a_srs EPSG:32637 {p}"
            )
        if src.transform == Affine.identity() and not src.gcps[0]:
            raise RasterError(f"{p}: raster has no georeferencing (identity transform); georeference it first")
        if src.transform.b != 0 or src.transform.d != 0:
            raise RasterError(f"{p}: rotated rasters are not supported; warp it north-up first (gdalwarp {p} out.tif)")
        interps = src.colorinterp
        alpha = [i + 1 for i, ci in enumerate(interps) if ci == ColorInterp.alpha]
        alpha_index = alpha[0] if alpha else None
        idx = tuple(i for i in range(1, src.count + 1) if i != alpha_index)
        if not idx:
            raise RasterError(f"{p}: raster has no data bands")
        dtype = src.dtypes[idx[0] - 1]
        if dtype not in SUPPORTED_DTYPES:
            raise RasterError(
                f"{p}: pixel type {dtype} is not supported (supported: {', '.join(SUPPORTED_DTYPES)}); "
                f"convert it first, e.g. gdal_translate -ot Float32 {p} out.tif"
            )
        flags = src.mask_flag_enums[idx[0] - 1]
        if alpha_index is not None or MaskFlags.alpha in flags:
            mask_kind = "alpha"
        elif MaskFlags.nodata in flags:
            mask_kind = "nodata"
        elif MaskFlags.per_dataset in flags:
            mask_kind = "per_dataset"
        else:
            mask_kind = "all_valid"
        resolved = _band_names(p, src, idx, bands, sensor)
        names = tuple(r.name for r in resolved)
        sc, off, sc_from = (None, None, None) if categorical else _scaling(p, src, idx, scale, offset)
        tags = src.tags()
        d = parse_date(date, f"{p} --date") if date is not None else None
        if d is None:
            d = parse_date(_date_from_tags(tags), f"{p} (tags)")
        if d is None:
            raise RasterError(
                f"{p}: no acquisition date in the raster's tags; pass --date YYYY-MM-DD or set it in its catalog entry"
            )
        _check_readable(p, src, idx)
        epsg = src.crs.to_epsg()
        metric = bool(src.crs.is_projected and (src.crs.linear_units or "").lower() in ("metre", "meter", "m"))
        return RasterSource(
            id=source_id or p.stem,
            path=p.resolve(),
            crs_wkt=src.crs.to_wkt(),
            epsg=epsg,
            is_metric=metric,
            transform=src.transform,
            width=src.width,
            height=src.height,
            dtype=dtype,
            nodata=src.nodata,
            band_names=names,
            band_indexes=idx,
            alpha_index=alpha_index,
            mask_kind=mask_kind,
            date=d,
            sha256=file_sha256(p) if checksum else "",
            categorical=categorical,
            scale=sc,
            offset=off,
            scale_from=sc_from,
            resolved=tuple(resolved),
        )


def _band_names(p: Path, src, idx: tuple[int, ...], bands: list[str] | None,
                sensor: str | None) -> list[ResolvedBand]:
    """Band names as STAC common names where the sensor table knows them (given names strictly,
    file descriptions leniently: ambiguous descriptions are kept as written)."""
    if bands:
        if len(bands) != len(idx):
            raise RasterError(
                f"{p}: {len(bands)} band names given ({', '.join(bands)}) but the raster has {len(idx)} data bands; "
                "give one name per band"
            )
        return resolve_bands([b.strip() for b in bands], sensor, where="--bands")
    desc = [src.descriptions[i - 1] for i in idx]
    interp = [_INTERP_NAMES.get(src.colorinterp[i - 1]) for i in idx]
    if all(desc):
        names = [d.strip() for d in desc]
    elif all(interp) and len(set(interp)) == len(interp):
        names = list(interp)
    else:
        names = [f"band_{i}" for i in idx]
    try:
        return resolve_bands(names, sensor, where=f"{p} (band descriptions)")
    except ConfigError:
        if sensor is not None:
            raise
    plain = [d.lower().replace(" ", "_") for d in names]
    if len(set(plain)) != len(plain):
        raise RasterError(f"{p}: band names must be unique, got {', '.join(plain)}; pass --bands")
    return [ResolvedBand(n, m) for n, m in zip(names, plain, strict=True)]


def _scaling(p: Path, src, idx: tuple[int, ...], scale: float | None,
             offset: float | None) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, str | None]:
    """Per-band (scale, offset, where from): the file's GDAL scale/offset (or ``scale_factor`` /
    ``add_offset`` tags) when set, else the stated ``scale``/``offset``, else none."""
    tags = src.tags()
    f_scale, f_off = [], []
    for i in idx:
        bt = {**tags, **src.tags(i)}
        s, o = src.scales[i - 1], src.offsets[i - 1]
        try:
            f_scale.append(float(bt["scale_factor"]) if s == 1.0 and "scale_factor" in bt else float(s))
            f_off.append(float(bt["add_offset"]) if o == 0.0 and "add_offset" in bt else float(o))
        except ValueError:
            raise RasterError(
                f"{p}: band {i} has a scale_factor/add_offset tag that is not a number; fix the tag "
                f"(gdal_edit.py -unsetmd {p}) or rewrite the file"
            ) from None
    if any(v != 1.0 for v in f_scale) or any(v != 0.0 for v in f_off):
        if (scale is not None and any(v != scale for v in f_scale)) or (offset is not None and any(v != offset for v in f_off)):
            raise RasterError(
                f"{p}: the file declares scale {f_scale[0]:g} and offset {f_off[0]:g}, which --scale/--offset "
                "contradict; drop --scale/--offset (the file's own values are used)"
            )
        return tuple(f_scale), tuple(f_off), "file"
    if scale is None and offset is None:
        return None, None, None
    n = len(idx)
    return (scale if scale is not None else 1.0,) * n, (offset if offset is not None else 0.0,) * n, "option"


def _check_readable(p: Path, src, idx: tuple[int, ...]) -> None:
    """Decode the first and last block so a truncated or corrupt file fails now, not mid-run."""
    h, w = src.block_shapes[0]
    try:
        for row in (0, max(0, src.height - 1)):
            r0 = (row // h) * h
            src.read(idx[0], window=Window(max(0, src.width - 1), r0, 1, 1))
            src.read(idx[0], window=Window(0, r0, 1, 1))
    except RasterioIOError as e:
        msg = str(e).split("\n")[0]
        raise RasterError(
            f"{p}: raster is corrupt or truncated ({msg}); re-download or re-export it"
        ) from None


def valid_mask(src, source: RasterSource, data: np.ndarray, window: Window) -> np.ndarray:
    """Valid-pixel mask of a window: True where every data band is valid (and alpha > 0)."""
    if source.mask_kind == "alpha" and source.alpha_index is not None:
        return src.read(source.alpha_index, window=window) > 0
    if source.mask_kind == "nodata" and source.nodata is not None:
        nd = source.nodata
        if np.isnan(nd):
            return ~np.isnan(data).any(axis=0)
        m = (data != np.asarray(nd, dtype=data.dtype)).all(axis=0)
        if data.dtype.kind == "f":
            m &= ~np.isnan(data).any(axis=0)
        return m
    if source.mask_kind in ("per_dataset", "alpha"):
        return src.read_masks(source.band_indexes[0], window=window) > 0
    if data.dtype.kind == "f":
        return ~np.isnan(data).any(axis=0)
    return np.ones(data.shape[1:], dtype=bool)
