"""Cloud Optimized GeoTIFF writing: one-shot, streamed block by block, and validation.

Every writer builds its result under a temporary name and renames it into place when complete,
so an interrupted run never leaves a file that looks finished. The output profile lives in
``COG_PROFILE`` and nowhere else.

Size: the one-shot writer, the streaming writer (block accumulation, abort, atomic rename) and the validator share the COG creation options and checks.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.windows import Window

from riotvit.errors import RasterError
from riotvit.io import atomic_file

#: Blocks of the COG and of the intermediate files (pixels).
COG_BLOCKSIZE = 512

#: The output profile: GDAL COG driver creation options. ``PREDICTOR=YES`` picks the horizontal
#: predictor for integers and the floating-point predictor for floats.
COG_PROFILE: dict[str, str] = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "LEVEL": "6",
    "BLOCKSIZE": str(COG_BLOCKSIZE),
    "BIGTIFF": "IF_SAFER",
    "OVERVIEWS": "IGNORE_EXISTING",
    "NUM_THREADS": "ALL_CPUS",
}

# Intermediate tiled GTiff: uncompressed so that blocks can be rewritten in place, sparse so
# that blocks never written read back as nodata without being stored.
_SCRATCH_OPTIONS = {
    "tiled": True,
    "blockxsize": COG_BLOCKSIZE,
    "blockysize": COG_BLOCKSIZE,
    "sparse_ok": True,
    "bigtiff": "IF_SAFER",
    "interleave": "band",
}

# GDAL settings around every write: the block cache (MB) is capped so dirty blocks are flushed
# to disk instead of filling GDAL's default 5 % of RAM, and no .aux.xml side files are made.
_ENV = {"GDAL_CACHEMAX": 64, "GDAL_PAM_ENABLED": "NO"}  # MB; the same bound as raster reading


def _resampling(name: str) -> str:
    try:
        return Resampling[name].name.upper()
    except KeyError:
        choices = ", ".join(r.name for r in Resampling)
        raise RasterError(
            f"resampling {name!r} is unknown; use one of: {choices}"
        ) from None


def _cog_options(resampling: str, profile: Mapping[str, str] | None) -> dict[str, str]:
    opts = dict(COG_PROFILE if profile is None else profile)
    opts["OVERVIEW_RESAMPLING"] = _resampling(resampling)
    return opts


def _check_meta(path: Path, count: int, band_descriptions: Sequence[str], crs: Any) -> CRS:
    if len(band_descriptions) != count:
        raise RasterError(
            f"{path}: {count} bands but {len(band_descriptions)} band descriptions; "
            "give one description per band"
        )
    if crs is None:
        raise RasterError(f"{path}: no CRS given; pass the grid CRS (e.g. 'EPSG:32737')")
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # rasterio raises CRSError with a long message
        raise RasterError(f"{path}: CRS {crs!r} is not understood ({exc}); pass e.g. 'EPSG:32737'") from None


def _describe(dst: Any, band_descriptions: Sequence[str], tags: Mapping[str, Any] | None,
              band_units: Sequence[str] | None = None, band_tags: Sequence[Mapping[str, Any]] | None = None) -> None:
    for i, desc in enumerate(band_descriptions, start=1):
        dst.set_band_description(i, str(desc))
    for i, unit in enumerate(band_units or (), start=1):
        dst.set_band_unit(i, str(unit))
    for i, bt in enumerate(band_tags or (), start=1):
        if bt:
            dst.update_tags(i, **{str(k): str(v) for k, v in bt.items()})
    if tags:
        dst.update_tags(**{str(k): str(v) for k, v in tags.items()})


def _copy_to_cog(src: Any, final: Path, options: Mapping[str, str]) -> Path:
    """Convert an open dataset to a COG at ``final`` atomically."""
    with rasterio.Env(**_ENV), atomic_file(final) as tmp:
        rasterio.shutil.copy(src, str(tmp), driver="COG", **options)
    return final


def write_cog(
    path: str | Path,
    array: np.ndarray,
    transform: Affine,
    crs: Any,
    nodata: float | None,
    band_descriptions: Sequence[str],
    tags: Mapping[str, Any] | None = None,
    resampling: str = "average",
    profile: Mapping[str, str] | None = None,
) -> Path:
    """Write an in-memory ``(bands, H, W)`` array as a Cloud Optimized GeoTIFF.

    For rasters too large to hold twice in memory use ``StreamingGeoTIFFWriter``.

    Overviews are built down to a single block, nodata-aware, with ``resampling``. The file is
    written under a temporary name and renamed onto ``path`` when complete.

    Args:
        path: the output ``.tif``.
        array: pixel values, shape ``(bands, height, width)``.
        transform: the affine geotransform of the array.
        crs: anything rasterio understands (``"EPSG:32737"``, WKT, a ``CRS``).
        nodata: the nodata value (use ``nan`` for floats without a sentinel), or None.
        band_descriptions: one name per band; QGIS shows them in the band list.
        tags: dataset metadata items (``str`` keys; values are stringified).
        resampling: overview resampling (``average`` for continuous data, ``nearest`` or
            ``mode`` for classes).
        profile: COG creation options; defaults to ``COG_PROFILE``.

    Returns:
        The written path.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or 0 in array.shape:
        raise RasterError(f"{path}: expected a (bands, height, width) array, got shape {array.shape}")
    count, height, width = array.shape
    crs_obj = _check_meta(path, count, band_descriptions, crs)
    options = _cog_options(resampling, profile)
    meta = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": array.dtype,
        "crs": crs_obj,
        "transform": transform,
        "nodata": nodata,
        "interleave": "band",
    }
    with rasterio.Env(**_ENV), MemoryFile() as mem:
        with mem.open(**meta) as dst:
            dst.write(array)
            _describe(dst, band_descriptions, tags)
        with mem.open() as src:
            return _copy_to_cog(src, path, options)


def _iter_blocks(width: int, height: int, size: int = COG_BLOCKSIZE) -> Iterator[Window]:
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


class StreamingGeoTIFFWriter:
    """Write a large raster block by block with bounded memory, then publish it as a COG.

    Blocks go into an uncompressed, tiled, sparse GTiff in a temporary folder beside ``path``
    (blocks never written read back as nodata). ``accumulate`` keeps a weighted sum and a weight
    raster on disk so that overlapping predictions are averaged. ``close`` divides, converts to a
    COG with overviews, and renames it onto ``path``. Used as a context manager, an exception
    inside the block removes every temporary file and leaves nothing at ``path``.

    Example:
        >>> with StreamingGeoTIFFWriter(out, w, h, 3, "float32", t, crs, nan, names) as wr:
        ...     wr.write(Window(0, 0, 512, 512), block)
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        count: int,
        dtype: Any,
        transform: Affine,
        crs: Any,
        nodata: float | None,
        band_descriptions: Sequence[str],
        tags: Mapping[str, Any] | None = None,
        resampling: str = "average",
        profile: Mapping[str, str] | None = None,
        band_units: Sequence[str] | None = None,
        band_tags: Sequence[Mapping[str, Any]] | None = None,
    ):
        self.path = Path(path)
        if width <= 0 or height <= 0 or count <= 0:
            raise RasterError(
                f"{self.path}: raster size must be positive, got {count} bands {width}x{height}"
            )
        self.width, self.height, self.count = int(width), int(height), int(count)
        self.dtype = np.dtype(dtype)
        self.transform = transform
        self.crs = _check_meta(self.path, count, band_descriptions, crs)
        self.nodata = nodata
        self.band_descriptions = [str(d) for d in band_descriptions]
        self.tags = dict(tags or {})
        self.band_units = list(band_units) if band_units else None
        self.band_tags = list(band_tags) if band_tags else None
        self._options = _cog_options(resampling, profile)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self._closed = False
        self._sum: Any = None
        self._weight: Any = None
        try:
            with rasterio.Env(**_ENV):
                self._data = rasterio.open(
                    self._tmpdir / "data.tif", "w+", **self._scratch_meta(self.dtype, count, nodata)
                )
        except Exception:
            self._cleanup()
            raise

    def _scratch_meta(self, dtype: np.dtype, count: int, nodata: float | None) -> dict[str, Any]:
        return {
            "driver": "GTiff",
            "width": self.width,
            "height": self.height,
            "count": count,
            "dtype": dtype,
            "crs": self.crs,
            "transform": self.transform,
            "nodata": nodata,
            **_SCRATCH_OPTIONS,
        }

    def _check_block(self, window: Window, data: np.ndarray) -> tuple[Window, np.ndarray]:
        if self._closed:
            raise RasterError(f"{self.path}: writer is closed; open a new StreamingGeoTIFFWriter")
        window = Window(*(int(round(v)) for v in (window.col_off, window.row_off, window.width, window.height)))
        data = np.asarray(data)
        if data.ndim == 2:
            data = data[np.newaxis]
        expected = (self.count, window.height, window.width)
        if data.shape != expected:
            raise RasterError(
                f"{self.path}: block for window {window} has shape {data.shape}, expected {expected}"
            )
        if (
            window.col_off < 0
            or window.row_off < 0
            or window.col_off + window.width > self.width
            or window.row_off + window.height > self.height
        ):
            raise RasterError(
                f"{self.path}: window {window} lies outside the {self.width}x{self.height} raster; "
                "clip blocks to the raster before writing"
            )
        return window, data

    def write(self, window: Window, data: np.ndarray) -> None:
        """Write ``data`` (``(count, h, w)``) into ``window``, replacing what was there."""
        window, data = self._check_block(window, data)
        with rasterio.Env(**_ENV):
            self._data.write(data.astype(self.dtype, copy=False), window=window)

    def _valid(self, data: np.ndarray) -> np.ndarray:
        valid = np.isfinite(data) if np.issubdtype(data.dtype, np.floating) else np.ones(data.shape, bool)
        if self.nodata is not None and not np.isnan(self.nodata):
            valid &= data != self.nodata
        return valid

    def accumulate(self, window: Window, data: np.ndarray, weight: float | np.ndarray = 1.0) -> None:
        """Add ``data`` with ``weight`` into ``window``; overlapping blocks are averaged on close.

        Nodata (and NaN) pixels of ``data`` add nothing. ``weight`` is a scalar or an array that
        broadcasts to ``data`` (e.g. a ``(h, w)`` taper). Pixels that received any weight take the
        weighted mean at ``close``; the others keep what ``write`` put there (nodata by default).
        """
        window, data = self._check_block(window, data)
        with rasterio.Env(**_ENV):
            self._accumulate(window, data, weight)

    def _accumulate(self, window: Window, data: np.ndarray, weight: float | np.ndarray) -> None:
        if self._sum is None:
            self._sum = rasterio.open(
                self._tmpdir / "sum.tif", "w+", **self._scratch_meta(np.dtype("float64"), self.count, 0.0)
            )
            self._weight = rasterio.open(
                self._tmpdir / "weight.tif", "w+", **self._scratch_meta(np.dtype("float64"), self.count, 0.0)
            )
        w = np.broadcast_to(np.asarray(weight, dtype="float64"), data.shape)
        w = np.where(self._valid(data), w, 0.0)
        values = np.where(w > 0, data.astype("float64"), 0.0)
        self._sum.write(self._sum.read(window=window) + values * w, window=window)
        self._weight.write(self._weight.read(window=window) + w, window=window)

    def _resolve_accumulated(self) -> None:
        for window in _iter_blocks(self.width, self.height):
            wsum = self._weight.read(window=window)
            hit = wsum > 0
            if not hit.any():
                continue
            mean = self._sum.read(window=window) / np.where(hit, wsum, 1.0)
            if np.issubdtype(self.dtype, np.integer):
                mean = np.rint(mean)
            block = self._data.read(window=window)
            block[hit] = mean[hit].astype(self.dtype)
            self._data.write(block, window=window)

    def close(self) -> Path:
        """Resolve accumulated averages, convert to a COG and rename it onto ``path``."""
        if self._closed:
            return self.path
        try:
            with rasterio.Env(**_ENV):
                if self._sum is not None:
                    self._resolve_accumulated()
                _describe(self._data, self.band_descriptions, self.tags, self.band_units, self.band_tags)
                self._data.close()
            with rasterio.open(self._tmpdir / "data.tif") as src:
                _copy_to_cog(src, self.path, self._options)
        finally:
            self._cleanup()
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; nothing is left at ``path``."""
        self._cleanup()

    def _cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        for ds in (getattr(self, "_data", None), self._sum, self._weight):
            if ds is not None and not ds.closed:
                ds.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> StreamingGeoTIFFWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# rio-cogeo reports the IFD and tile-data order as byte offsets; this says what that means.
_LAYOUT_PROBLEM = "an IFD lies after tile data or tile data is out of order: "


def validate_cog(path: str | Path) -> list[str]:
    """Check that ``path`` is a Cloud Optimized GeoTIFF riotvit can publish.

    The COG structure (tiling, IFDs before tile data, the smallest overview's data first) is
    checked by ``rio_cogeo.cog_validate``. riotvit adds what it publishes with: written by GDAL's
    COG driver (``LAYOUT=COG``), overviews whenever the raster is larger than one block (rio-cogeo
    only recommends them, above 512 pixels, so its warnings are not repeated), a CRS and a
    nodata value on every band.

    Returns:
        A list of problems, one line each; empty when the file is a valid COG.
    """
    # imported here: rio-cogeo loads morecantile and pydantic, which only validation needs
    from rio_cogeo.cogeo import cog_validate

    path = Path(path)
    try:
        _, errors, _ = cog_validate(path, quiet=True)
        src = rasterio.open(path)
    except Exception as exc:
        return [f"{path}: cannot be opened as a raster ({exc})"]
    with src:
        if src.driver != "GTiff":
            return [f"{path}: driver is {src.driver}, not a GeoTIFF"]
        problems = [f"{path}: {_LAYOUT_PROBLEM if 'offset' in e else ''}{e}" for e in errors]
        if src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper() != "COG":
            problems.append(f"{path}: IMAGE_STRUCTURE LAYOUT is not COG (not written by the COG driver)")
        block_h, block_w = src.block_shapes[0]
        if (src.width > block_w or src.height > block_h) and not src.overviews(1):
            problems.append(f"{path}: {src.width}x{src.height} pixels but no overviews")
        if src.crs is None:
            problems.append(f"{path}: no CRS")
        if any(nd is None for nd in src.nodatavals):
            problems.append(f"{path}: nodata is not set on every band")
    return problems

