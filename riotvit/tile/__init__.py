"""``riotvit tile``: cut rasters into metre-true crops on the shared grid (a tile set).

Modules: ``plan`` (what will be cut: sources, grid, blocks; ``TileConfig``), ``source`` and
``bands`` (opening rasters, band names via :mod:`riotvit.sensors`, reflectance scale), ``dates``
(per-file acquisition dates from a dates.csv), ``reader`` (windowed, warped reads), ``tiler`` (the
stage: blocks, journal, resume), ``chipstore`` and ``tileset`` (the tile-set artifact),
``stats`` (per-band statistics), ``prefetch`` (read ahead in a thread; shared with predict).
See ``docs/design.md``.
"""

from riotvit.lazy import callable_package, lazy_exports

_EXPORTS = {
    "tile": "riotvit.tile.tiler",
    "TileResult": "riotvit.tile.tiler",
    "TileConfig": "riotvit.tile.plan",
    "SourceSpec": "riotvit.tile.plan",
    "plan_tiles": "riotvit.tile.plan",
    "TileSet": "riotvit.tile.tileset",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
callable_package(__name__, "tile")
