"""Read a tile set folder: ``tileset.json``, ``tiles.parquet`` and the chip store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np

from riotvit.errors import TileSetError
from riotvit.grid import CropGrid
from riotvit.io import file_sha256
from riotvit.tile.chipstore import open_array
from riotvit.tile.meta import TILESET_FORMAT, TILESET_FORMAT_VERSION, TileSetMeta


@dataclass
class TileSet:
    """An opened tile set. Chips and masks are memory-mapped, read lazily.

    Attributes:
        path: the tile set folder.
        info: its ``tileset.json``.
    """

    path: Path
    info: TileSetMeta

    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> TileSet:
        """Open and check a tile set folder.

        Args:
            path: the tile set folder.
            verify: check the chip and mask files against the SHA-256 in ``tileset.json`` (one
                streamed read of each, once per open).

        Raises:
            TileSetError: the folder is missing, incomplete (an interrupted run), of another format,
                or its chip or mask file does not match its checksum (damaged or replaced).
        """
        p = Path(path)
        meta = p / "tileset.json"
        if not p.is_dir():
            partial = p.with_name(p.name + ".partial")
            hint = f" (an interrupted run left {partial}; rerun riotvit tile to finish it)" if partial.exists() else ""
            raise TileSetError(f"{p}: tile set folder not found{hint}; make one with riotvit tile")
        if not meta.is_file():
            raise TileSetError(f"{p}: no tileset.json, so this is not a complete tile set; rerun riotvit tile")
        try:
            info = json.loads(meta.read_text())
        except json.JSONDecodeError as e:
            raise TileSetError(f"{meta}: not valid JSON ({e}); rerun riotvit tile") from None
        if info.get("format") != TILESET_FORMAT or int(info.get("format_version", 0)) > TILESET_FORMAT_VERSION:
            raise TileSetError(
                f"{meta}: tile set format {info.get('format')} v{info.get('format_version')} is not supported "
                f"by this riotvit (reads v{TILESET_FORMAT_VERSION}); re-tile with this version"
            )
        typed = TileSetMeta.from_dict(info, meta)
        f = p / typed.chips.path
        if not f.is_file():
            raise TileSetError(f"{f}: chip store missing from the tile set; rerun riotvit tile --overwrite")
        if verify:
            for name, want in ((typed.chips.path, typed.chips.sha256), (typed.chips.masks, typed.chips.masks_sha256)):
                if want is not None and (not (p / name).is_file() or file_sha256(p / name) != want):
                    raise TileSetError(f"{p / name}: does not match the SHA-256 recorded in {meta} (damaged or "
                                       "replaced); restore the tile set or rerun riotvit tile --overwrite")
        return cls(p, typed)

    @property
    def grid(self) -> CropGrid:
        return self.info.crop_grid

    @property
    def bands(self) -> list[str]:
        return list(self.info.bands)

    @property
    def stats(self) -> dict[str, dict[str, float]]:
        return self.info.stats

    def __len__(self) -> int:
        return self.info.n_crops

    @cached_property
    def tiles(self) -> gpd.GeoDataFrame:
        """One row per crop (crop_id, col, row, source, date, valid_fraction, chip_index, mask_index, geometry)."""
        return gpd.read_parquet(self.path / self.info.tiles)

    @cached_property
    def chips(self) -> np.ndarray:
        """The (N, C, H, W) chip array, memory-mapped."""
        a = open_array(self.path / self.info.chips.path)
        if a.shape[0] != len(self):
            raise TileSetError(f"{self.path}: chip store holds {a.shape[0]} crops, tileset.json says {len(self)}; re-tile")
        return a

    @cached_property
    def masks(self) -> np.ndarray:
        """The (M, H, W) uint8 masks of partially valid crops, memory-mapped."""
        return open_array(self.path / self.info.chips.masks)

    def read(self, index: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Chips and boolean valid masks for chip indexes (sorted reads are fastest)."""
        idx = np.asarray(index, dtype=np.int64)
        chips = np.asarray(self.chips[idx])
        mask_idx = self.tiles["mask_index"].to_numpy()[idx]
        masks = np.ones((idx.size, chips.shape[2], chips.shape[3]), dtype=bool)
        part = mask_idx >= 0
        if part.any():
            masks[part] = np.asarray(self.masks[mask_idx[part]]).astype(bool)
        return chips, masks

    def to_xarray(self, index: np.ndarray | list[int] | None = None):
        """A labelled view (crop_id, band, y, x) of some or all chips, for notebooks."""
        import xarray as xr

        idx = np.arange(len(self)) if index is None else np.asarray(index)
        chips, masks = self.read(idx)
        data = np.where(masks[:, None], chips, np.nan) if not masks.all() else chips
        return xr.DataArray(
            data,
            dims=("crop_id", "band", "y", "x"),
            coords={"crop_id": self.tiles["crop_id"].to_numpy()[idx], "band": self.bands},
            attrs={"crs": self.grid.crs, "gsd_m": self.grid.gsd},
        )
