"""The QGIS side of a prediction folder: ``.qml`` styles next to the maps and ``riotvit.qgs``.

The risk raster and the cells get their styles, the imagery is added as an RGB layer (red,
green, blue when the model has them, else the first band), and the project opens them all
over the region.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from riotvit.publish.qgis_project import LayerSpec, write_qgis_project
from riotvit.publish.styles import raster_rgb_qml, risk_raster_qml, risk_vector_qml, write_style
from riotvit.train.meta import NormMeta


def write_risk_styles(work: Path) -> None:
    """The default styles of ``risk.tif`` and ``cells.gpkg`` (``risk.qml``, ``cells.qml``)."""
    write_style(work / "risk.tif", risk_raster_qml(1))
    write_style(work / "cells.gpkg", risk_vector_qml("riot_probability"))


def imagery_layer(source: Any, norm: NormMeta, project_dir: Path) -> LayerSpec:
    """An RGB layer of one source raster, stretched over mean ± 2 std of the training statistics.

    Args:
        source: an opened source (``id``, ``date``, ``path``, ``epsg``, ``band_indexes``).
        norm: the model's band normalisation.
        project_dir: the folder the project will live in (paths are relative to it).
    """
    bands = list(norm.bands)
    rgb = [b for b in ("red", "green", "blue") if b in bands]
    if len(rgb) == 3:
        idx = [source.band_indexes[bands.index(b)] for b in rgb]
        stats = [(max(0.0, norm.mean[bands.index(b)] - 2 * norm.std[bands.index(b)]),
                  norm.mean[bands.index(b)] + 2 * norm.std[bands.index(b)]) for b in rgb]
    else:
        idx = [source.band_indexes[0]] * 3
        stats = [(norm.mean[0] - 2 * norm.std[0], norm.mean[0] + 2 * norm.std[0])] * 3
    crs = f"EPSG:{source.epsg}" if source.epsg else None
    return LayerSpec(f"imagery {source.id} ({source.date})", os.path.relpath(source.path, project_dir),
                     "raster", "gdal", raster_rgb_qml(*idx, stats), crs=crs)


def prediction_layers(sources: Sequence[Any], norm: NormMeta, project_dir: Path, overlap: float,
                      extra: Sequence[LayerSpec] = ()) -> list[LayerSpec]:
    """The project's layers, top first: cells, ``extra`` (explanations), risk, imagery."""
    # with overlap, crops overlap and their fills stack: the averaged risk.tif is the map, and the
    # cells layer (drivers in the identify panel) starts hidden
    layers = [LayerSpec("cells (riot probability per crop)", "cells.gpkg", "vector", "ogr", risk_vector_qml(),
                        layer_name="cells", opacity=0.6, visible=overlap == 0)]
    layers += list(extra)
    layers.append(LayerSpec("risk (riot probability)", "risk.tif", "raster", "gdal", risk_raster_qml(1), opacity=0.85))
    layers += [imagery_layer(s, norm, project_dir) for s in sources]
    return layers


def write_prediction_project(work: Path, final: Path, sources: Sequence[Any], norm: NormMeta, crs: str,
                             extent: Sequence[float], overlap: float, title: str,
                             extra: Sequence[LayerSpec] = ()) -> Path:
    """Write the styles and ``riotvit.qgs`` into ``work``, with imagery paths relative to ``final``.

    Args:
        work: the folder being filled (``final.partial``).
        final: where the folder will be once complete.
        sources: the imagery.
        norm: the model's band normalisation (imagery stretch).
        crs: the project CRS.
        extent: the project extent (xmin, ymin, xmax, ymax) in ``crs``.
        overlap: the grid's crop overlap (cells start hidden when crops overlap).
        title: the project title.
        extra: more layers above the risk raster (explanations).
    """
    write_risk_styles(work)
    layers = prediction_layers(sources, norm, final, overlap, extra)
    path = work / "riotvit.qgs"
    write_qgis_project(path, layers, crs, extent, title)
    return path
