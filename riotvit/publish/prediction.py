"""The QGIS side of a prediction folder: ``.qml`` styles next to the maps and ``riotvit.qgs``.

Every layer name states the forecast window (layer names are the legend's titles). On top, the
cells (one per pixel of ``risk.tif``, classes at the map's quantiles, partial cells hatched,
semi-transparent so the imagery shows), with their Identify sentence and field aliases; then,
off by default, the per-crop layer (with overlap), the explanations, the risk raster, its
uncertainty and expected riots; at the bottom the imagery as RGB (red, green, blue when the
model has them, else the first band).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from riotvit.labels import label
from riotvit.publish.admin import admin_layer, write_admin_summary
from riotvit.publish.identify import DISPLAY_EXPRESSION, MAP_TIP, field_aliases
from riotvit.publish.layers import CellLayer
from riotvit.publish.layout import add_print_layout
from riotvit.publish.mapfig import write_map_figure
from riotvit.publish.maptexts import map_texts
from riotvit.publish.qgis_project import LayerSpec, write_qgis_project
from riotvit.publish.styles import (
    embed_gpkg_style,
    ramp_raster_qml,
    raster_rgb_qml,
    risk_raster_qml,
    risk_vector_qml,
    write_style,
)
from riotvit.stac.write import write_prediction_stac
from riotvit.train.meta import NormMeta
from riotvit.window import ForecastWindow

#: Opacity of the risk layers over the imagery (the imagery stays readable under them).
RISK_OPACITY = 0.55


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


def cells_qml(cells: CellLayer) -> str:
    """The cells style: quantile classes, hatched partial cells, aliases, the Identify sentence."""
    return risk_vector_qml("riot_probability", 1.0, cells.classes, hatch_edges=True,
                           aliases=field_aliases(cells.fields), map_tip=MAP_TIP, display=DISPLAY_EXPRESSION)


def layer_names(window: ForecastWindow) -> dict[str, str]:
    """The project's layer names (the legend's titles), each stating the window."""
    span = f"{window.start.isoformat()} → {window.end.isoformat()}"
    return {
        "cells": f"{window.label}: cells (hatched: partial)",
        "crops": f"{window.label}: per crop (overlapping, averaged into the cells)",
        "risk": f"{window.label}: raster",
        "uncertainty": f"uncertainty of P (spread), {span}",
        "expected": f"expected riots, {span}",
    }


def write_risk_styles(work: Path, cells: CellLayer, stamp: str) -> dict[str, str]:
    """Write ``risk.qml`` and ``cells.qml`` (also stored in ``cells.gpkg``); returns the styles by layer key."""
    qml = {"cells": cells_qml(cells), "risk": risk_raster_qml(1, 1.0, cells.classes),
           "uncertainty": ramp_raster_qml(3, 0.0, max(cells.uncertainty_range[1], 1e-6), "uncertainty"),
           "expected": ramp_raster_qml(2, 0.0, max(cells.expected_range[1], 1e-6), "count")}
    write_style(work / "risk.tif", qml["risk"])
    write_style(work / "cells.gpkg", qml["cells"])
    embed_gpkg_style(work / "cells.gpkg", "cells", qml["cells"], stamp)
    if cells.n_crops_layer:
        qml["crops"] = risk_vector_qml("riot_probability", 1.0, cells.classes, aliases=field_aliases(cells.fields))
        embed_gpkg_style(work / "cells.gpkg", "crops", qml["crops"], stamp)
    return qml


def prediction_layers(sources: Sequence[Any], norm: NormMeta, project_dir: Path, window: ForecastWindow,
                      cells: CellLayer, qml: dict[str, str], extra: Sequence[LayerSpec] = ()) -> list[LayerSpec]:
    """The project's layers, top first: cells, crops, ``extra`` (explanations), risk bands, imagery."""
    names = layer_names(window)
    layers = [LayerSpec(names["cells"], "cells.gpkg", "vector", "ogr", qml["cells"], layer_name="cells",
                        opacity=RISK_OPACITY)]
    if "crops" in qml:
        layers.append(LayerSpec(names["crops"], "cells.gpkg", "vector", "ogr", qml["crops"], layer_name="crops",
                                opacity=RISK_OPACITY, visible=False))
    layers += list(extra)
    layers.append(LayerSpec(names["risk"], "risk.tif", "raster", "gdal", qml["risk"], opacity=RISK_OPACITY,
                            visible=False))
    if cells.uncertainty_range[1] > 0:  # a single model without test-time views measures none
        layers.append(LayerSpec(names["uncertainty"], "risk.tif", "raster", "gdal", qml["uncertainty"],
                                opacity=RISK_OPACITY, visible=False))
    if cells.expected_range[1] > 0:
        layers.append(LayerSpec(names["expected"], "risk.tif", "raster", "gdal", qml["expected"],
                                opacity=RISK_OPACITY, visible=False))
    layers += [imagery_layer(s, norm, project_dir) for s in sources]
    return layers


def write_prediction_project(work: Path, final: Path, sources: Sequence[Any], norm: NormMeta, crs: str,
                             extent: Sequence[float], window: ForecastWindow, cells: CellLayer, title: str,
                             stamp: str, extra: Sequence[LayerSpec] = ()) -> Path:
    """Write the styles and ``riotvit.qgs`` into ``work``, with imagery paths relative to ``final``.

    Args:
        work: the folder being filled (``final.partial``).
        final: where the folder will be once complete.
        sources: the imagery.
        norm: the model's band normalisation (imagery stretch).
        crs: the project CRS.
        extent: the project extent (xmin, ymin, xmax, ymax) in ``crs``.
        window: the forecast window (in every layer name).
        cells: what :func:`~riotvit.publish.layers.write_cells` wrote (classes, ranges, fields).
        title: the project title.
        stamp: the timestamp recorded in ``cells.gpkg`` (fixed: reruns give identical files).
        extra: more layers above the risk raster (explanations).
    """
    qml = write_risk_styles(work, cells, stamp)
    layers = prediction_layers(sources, norm, final, window, cells, qml, extra)
    path = work / "riotvit.qgs"
    write_qgis_project(path, layers, crs, extent, title)
    return path


def admin_summary_layer(work: Path, admin: Path, admin_id: str | None, population: Path | None,
                        window: ForecastWindow) -> LayerSpec:
    """Summarise the cells by admin unit (``admin.gpkg``, ``admin.csv``) and return its project layer.

    Needs ``cells.gpkg`` and ``run.json`` in ``work``.
    """

    write_admin_summary(work, admin, admin_id, population, label=label)
    return admin_layer(work, window.label)


def write_handout(work: Path, admin: Path | None = None) -> list[Path]:
    """The things that can be handed on: the print layout in ``riotvit.qgs`` and ``map.png``/``map.pdf``
    (the same page without QGIS), then the STAC catalog of every output. Needs ``run.json`` in ``work``."""

    texts = map_texts(work)
    add_print_layout(work / "riotvit.qgs", texts)
    out = write_map_figure(work, texts, admin=admin)
    return [*out, write_prediction_stac(work)]
