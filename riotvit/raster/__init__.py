"""Raster I/O: reading sources, tiling onto the crop grid, the chip store, COG writing, QGIS styles."""
