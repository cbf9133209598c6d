"""``tileset.json``: the typed description of a tile set folder."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_serializer

from riotvit.artifact import ArtifactMeta, MetaModel
from riotvit.errors import TileSetError
from riotvit.grid import CropGrid

TILESET_FORMAT = "riotvit-tileset"
TILESET_FORMAT_VERSION = 1
Number = int | float


class ChipStoreMeta(MetaModel):
    """Where the chips and masks of a tile set are stored."""

    path: str = Field(description="The (N, C, H, W) chip array, relative to the tile set folder (`chips.npy`).")
    masks: str = Field(description="The (M, H, W) uint8 valid-pixel masks of partially valid crops (`masks.npy`).")
    n_masked: int = Field(description="Number of crops with a mask (M): those with some invalid pixels.")
    sha256: str | None = Field(None, description="SHA-256 of the chip file, checked when a stage opens the tile set "
                               "(absent in tile sets of riotvit before checksums: not checked).")
    masks_sha256: str | None = Field(None, description="SHA-256 of the mask file, checked with the chips.")

    @model_serializer(mode="wrap")
    def _omit_absent_checksums(self, handler):  # documents written before checksums round-trip unchanged
        return {k: v for k, v in handler(self).items() if v is not None or k not in ("sha256", "masks_sha256")}


class StatsSampleMeta(MetaModel):
    """Which crops fed the band statistics."""

    rule: str = Field(description="The position-based rule that picks a crop for the statistics.")
    every: int = Field(description="The rule's stride: 1 means every crop.")


class TileSourceMeta(MetaModel):
    """One source raster of a tile set."""

    id: str = Field(description="Source id (the catalog id or the file stem).")
    path: str = Field(description="The raster file, relative to the tile set folder (in a bundle: to the bundle folder).")
    sha256: str | None = Field(description="SHA-256 of the raster file (null when checksums were switched off).")
    date: str = Field(description="Acquisition date, ISO 8601.")
    crs: str = Field(description="The raster's CRS (EPSG:code, else WKT).")
    res: list[Number] = Field(description="Pixel size (x, y) in CRS units.")
    size: list[int] = Field(description="Width and height, pixels.")
    dtype: str = Field(description="Pixel data type.")
    nodata: Number | None = Field(description="The nodata value, if any.")
    bands: list[str] = Field(description="Band names, in file order.")
    mask: str = Field(description="How invalid pixels are found: all_valid, nodata, alpha or per_dataset.")
    categorical: bool = Field(description="Resampled with nearest neighbour (class maps).")
    scale: list[Number] | None = Field(None, description="Per band: chips hold raw * scale + offset (absent: raw values).")
    offset: list[Number] | None = Field(None, description="Per band: the offset added after the scale.")
    scale_from: str | None = Field(None, description="Where scale/offset came from: `file` (GDAL scale/offset or "
                                   "scale_factor/add_offset tags) or `option` (stated: --scale/--offset, a catalog or STAC source).")
    n_crops: int = Field(description="Crops kept from this source.")

    @model_serializer(mode="wrap")
    def _omit_absent_scaling(self, handler):  # documents written before scaling was recorded round-trip unchanged
        return {k: v for k, v in handler(self).items() if v is not None or k not in ("scale", "offset", "scale_from")}


class TileSetMeta(ArtifactMeta):
    """``tileset.json``: the grid, bands, statistics and provenance of a tile set."""

    FORMAT: ClassVar[str] = TILESET_FORMAT
    FORMAT_VERSION: ClassVar[int] = TILESET_FORMAT_VERSION
    ERROR: ClassVar[type] = TileSetError
    MAKER: ClassVar[str] = "riotvit tile"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"band_info"})

    signature: str = Field(description="Hash of everything that determines the contents; an unchanged rerun is a no-op.")
    grid: dict[str, Any] = Field(description="The crop grid (epsg, crop_m, stride_m, crop_px, gsd_m, stride_px, overlap).")
    bands: list[str] = Field(description="Band names of the chips, in order (STAC eo common names where the "
                             "sensor table knows the band: red, nir, swir16 ...).")
    band_info: list[dict[str, Any]] | None = Field(
        None, description="Per band: the name as given, the common name, and where known the sensor, band id and "
        "centre wavelength in micrometres (riotvit.sensors).")
    dtype: str = Field(description="Data type of the chips.")
    fill_value: Number = Field(description="Value of invalid pixels in the chips.")
    n_crops: int = Field(description="Number of crops (N), one per grid cell and acquisition date.")
    chip_shape: list[int] = Field(description="Shape of one chip: bands, height, width (pixels).")
    chips: ChipStoreMeta = Field(description="The chip store files.")
    tiles: str = Field(description="The crop table, relative to the tile set folder (`tiles.parquet`).")
    extent: list[float] = Field(description="Bounds of all crops (xmin, ymin, xmax, ymax) in the grid CRS.")
    dates: list[str] = Field(description="Acquisition dates present, ISO 8601, sorted.")
    stats: dict[str, dict[str, Number]] = Field(description="Per band: mean, std, min, max, p2, p98 and count of valid pixels.")
    stats_sample: StatsSampleMeta = Field(description="The crops the statistics were computed from.")
    sources: list[TileSourceMeta] = Field(description="The source rasters.")
    config: dict[str, Any] = Field(description="The tiling options (`TileConfig`).")
    warnings: list[str] = Field(description="What the planner warned about.")

    @property
    def crop_grid(self) -> CropGrid:
        """The grid as a :class:`~riotvit.grid.CropGrid`."""
        return CropGrid.from_dict(self.grid)


def stated_scaling(sources: list[TileSourceMeta]) -> tuple[float | None, float | None]:
    """The ``--scale``/``--offset`` a tile set was made with (None, None when none was stated).

    Prediction must read its imagery with the same values, or a model trained on reflectance
    would see raw values; scale/offset from the files' own GDAL metadata are found again by
    :func:`riotvit.tile.source.open_source`.
    """
    for s in sources:
        if s.scale_from == "option" and s.scale:
            return float(s.scale[0]), float(s.offset[0]) if s.offset else 0.0
    return None, None
