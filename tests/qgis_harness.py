"""Open riotvit outputs in real QGIS, headless, and report what a user would see, as JSON.

Run with the SYSTEM python that has the QGIS bindings (not the venv)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_harness.py --json OUT.json \
        [--render OUT.png [--size 800x600] [--probe=X,Y ...]] LAYER_OR_PROJECT ...

Rasters open as ``QgsRasterLayer``, vector files as ``QgsVectorLayer`` (every layer of a
GeoPackage), ``.qgs``/``.qgz`` through ``QgsProject.read`` with a map canvas attached (so the
initial extent is the one QGIS desktop would show). ``--render`` draws the last project (or the
given layers) to a PNG and reports the share of non-background pixels and the colour at each
``--probe`` map coordinate (in the project CRS).

This file imports nothing from riotvit and runs under Python 3.9+.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsDataProvider,
    QgsMapLayer,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor, QImage  # noqa: E402

RASTER_EXT = {".tif", ".tiff", ".vrt", ".img", ".jp2"}
VECTOR_EXT = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet"}
BACKGROUND = QColor(255, 255, 255)


def rect(r: QgsRectangle) -> list[float]:
    return [r.xMinimum(), r.yMinimum(), r.xMaximum(), r.yMaximum()]


def legend_labels(layer: QgsMapLayer) -> list[str]:
    if layer.type() == QgsMapLayer.RasterLayer:
        renderer = layer.renderer()
        return [label for label, _color in renderer.legendSymbologyItems()] if renderer else []
    renderer = layer.renderer()
    return [item.label() for item in renderer.legendSymbolItems()] if renderer else []


def legend_colors(layer: QgsMapLayer) -> list[str]:
    if layer.type() == QgsMapLayer.RasterLayer:
        renderer = layer.renderer()
        return [color.name() for _label, color in renderer.legendSymbologyItems()] if renderer else []
    renderer = layer.renderer()
    if not renderer:
        return []
    return [item.symbol().color().name() for item in renderer.legendSymbolItems() if item.symbol()]


def describe_layer(layer: QgsMapLayer) -> dict:
    info = {
        "name": layer.name(),
        "source": layer.source(),
        "valid": layer.isValid(),
        "crs": layer.crs().authid(),
        "extent": rect(layer.extent()) if layer.isValid() else None,
        "renderer": None,
        "legend": [],
        "legend_colors": [],
    }
    if not layer.isValid():
        info["error"] = layer.error().summary()
        return info
    renderer = layer.renderer()
    info["renderer"] = renderer.type() if renderer else None
    info["legend"] = legend_labels(layer)
    info["legend_colors"] = legend_colors(layer)
    if layer.type() == QgsMapLayer.RasterLayer:
        provider = layer.dataProvider()
        info["kind"] = "raster"
        info["band_count"] = layer.bandCount()
        info["size"] = [layer.width(), layer.height()]
        info["band_names"] = [provider.generateBandName(b) for b in range(1, layer.bandCount() + 1)]
        info["nodata"] = [
            provider.sourceNoDataValue(b) if provider.sourceHasNoDataValue(b) else None
            for b in range(1, layer.bandCount() + 1)
        ]
        info["opacity"] = renderer.opacity() if renderer else None
        if renderer and renderer.type() == "singlebandpseudocolor":
            shader = renderer.shader().rasterShaderFunction()
            info["ramp"] = {
                "type": ["INTERPOLATED", "DISCRETE", "EXACT"][int(shader.colorRampType())],
                "min": shader.minimumValue(),
                "max": shader.maximumValue(),
                "band": renderer.band(),
            }
        if renderer and renderer.type() == "multibandcolor":
            info["stretch"] = [
                [ce.minimumValue(), ce.maximumValue(), int(ce.contrastEnhancementAlgorithm())]
                for ce in (renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
                           renderer.blueContrastEnhancement())
                if ce is not None
            ]
    else:
        info["kind"] = "vector"
        info["feature_count"] = layer.featureCount()
        info["fields"] = [f.name() for f in layer.fields()]
        info["geometry_type"] = int(layer.geometryType())
        info["opacity"] = layer.opacity()
        if renderer and renderer.type() == "graduatedSymbol":
            info["class_attribute"] = renderer.classAttribute()
            info["ranges"] = [[r.lowerValue(), r.upperValue()] for r in renderer.ranges()]
            info["fill_alpha"] = [r.symbol().color().alpha() for r in renderer.ranges()]
    return info


def open_file(path: Path) -> list[dict]:
    """Open one data file as a user would (default style applied) and describe each layer."""
    ext = path.suffix.lower()
    out = []
    if ext in RASTER_EXT:
        uris = [(str(path), path.stem, "raster")]
    elif ext in VECTOR_EXT:
        probe = QgsVectorLayer(str(path), path.stem, "ogr")
        subs = probe.dataProvider().subLayers() if probe.isValid() else []
        sep = QgsDataProvider.sublayerSeparator()
        names = [s.split(sep)[1] for s in subs if sep in s]
        if ext == ".gpkg" and len(names) > 0:
            uris = [(f"{path}|layername={n}", n, "vector") for n in names]
        else:
            uris = [(str(path), path.stem, "vector")]
    else:
        return [{"name": path.name, "source": str(path), "valid": False, "error": f"unknown extension {ext}"}]
    for uri, name, kind in uris:
        layer = QgsRasterLayer(uri, name, "gdal") if kind == "raster" else QgsVectorLayer(uri, name, "ogr")
        info = describe_layer(layer)
        if layer.isValid():
            message, applied = layer.loadDefaultStyle()
            info["style_applied"] = bool(applied)
            info["style_message"] = message
            info["renderer_after_reload"] = layer.renderer().type() if layer.renderer() else None
        info["path"] = str(path)
        out.append(info)
        _loose_layers.append(layer)  # keep it alive for --render
    return out


_loose_layers: list[QgsMapLayer] = []


def make_canvas():
    """The map canvas QGIS desktop has: it reads its initial extent from each project."""
    try:
        from qgis.gui import QgsMapCanvas
    except ImportError:  # no GUI bindings: fall back to the project's default view extent
        return None
    canvas = QgsMapCanvas()
    canvas.setObjectName("theMapCanvas")
    canvas.resize(800, 600)
    return canvas


def open_project(path: Path, canvas) -> dict:
    """Read a project the way QGIS desktop does, with the map canvas listening to it."""
    project = QgsProject.instance()
    project.clear()
    ok = project.read(str(path))
    root = project.layerTreeRoot()
    layers = []
    for node in root.findLayers():
        layer = node.layer()
        info = describe_layer(layer) if layer is not None else {"name": node.name(), "valid": False}
        info["visible"] = node.isVisible()
        info["id"] = node.layerId()
        layers.append(info)
    default_view = project.viewSettings().defaultViewExtent()
    return {
        "path": str(path),
        "read_ok": bool(ok),
        "title": project.title(),
        "crs": project.crs().authid(),
        "absolute_paths": project.readBoolEntry("Paths", "/Absolute", True)[0],
        "layer_order": [n.name() for n in root.findLayers()],
        "layers": layers,
        "default_view_extent": None if default_view.isNull() else rect(default_view),
        "canvas_extent": rect(canvas.extent()) if canvas is not None else None,
    }


def image_stats(image: QImage, settings: QgsMapSettings, probes: list[tuple[float, float]]) -> dict:
    image = image.convertToFormat(QImage.Format_ARGB32)
    w, h = image.width(), image.height()
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    pixels = memoryview(bytes(ptr)).cast("I")
    bg = BACKGROUND.rgba()
    background = pixels.tolist().count(bg)
    m2p = settings.mapToPixel()
    probe_out = []
    for x, y in probes:
        p = m2p.transform(QgsPointXY(x, y))
        px, py = int(p.x()), int(p.y())
        if 0 <= px < w and 0 <= py < h:
            c = QColor(image.pixel(px, py))
            probe_out.append({"x": x, "y": y, "px": [px, py], "rgb": [c.red(), c.green(), c.blue()]})
        else:
            probe_out.append({"x": x, "y": y, "px": [px, py], "rgb": None})
    return {"width": w, "height": h, "non_background_fraction": 1.0 - background / float(w * h),
            "probes": probe_out}


def render(layers: list[QgsMapLayer], crs: QgsCoordinateReferenceSystem, extent: QgsRectangle,
           out: Path, size: tuple[int, int], probes: list[tuple[float, float]]) -> dict:
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(crs)
    settings.setOutputSize(QSize(*size))
    settings.setBackgroundColor(BACKGROUND)
    settings.setExtent(extent)
    settings.setFlag(QgsMapSettings.Antialiasing, False)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(str(out), "PNG")
    stats = image_stats(image, settings, probes)
    stats.update({"png": str(out), "layers": [lyr.name() for lyr in layers],
                  "extent": rect(settings.visibleExtent()), "crs": crs.authid(),
                  "errors": [e.message for e in job.errors()]})
    return stats


def render_current(args: argparse.Namespace, from_project: bool, canvas) -> dict:
    """Render the last project as its canvas shows it, or else the loose layers' full extent."""
    w, h = (int(v) for v in args.size.lower().split("x"))
    probes = [tuple(float(v) for v in s.split(",")) for s in args.probe]
    project = QgsProject.instance()
    if from_project:
        layers = project.layerTreeRoot().checkedLayers()
        crs = project.crs()
        extent = canvas.extent() if canvas is not None else project.viewSettings().defaultViewExtent()
    else:
        layers = list(_loose_layers)
        crs = layers[0].crs()
        extent = QgsRectangle()
        for lyr in layers:
            extent.combineExtentWith(lyr.extent())
    return render(layers, crs, extent, args.render, (w, h), probes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--json", required=True, type=Path, help="where to write the report")
    ap.add_argument("--render", type=Path, help="PNG of the last project (or of the layers)")
    ap.add_argument("--size", default="800x600", help="render size WxH in pixels")
    ap.add_argument("--probe", action="append", default=[],
                    help="X,Y map coordinate to sample (write --probe=X,Y when X is negative)")
    args = ap.parse_args(argv)

    app = QgsApplication([], True)
    app.initQgis()
    canvas = make_canvas()
    report: dict = {"qgis_version": Qgis.QGIS_VERSION, "files": [], "projects": []}
    status = 0
    try:
        for p in args.paths:
            if p.suffix.lower() in (".qgs", ".qgz"):
                report["projects"].append(open_project(p, canvas))
            else:
                report["files"].extend(open_file(p))
        if args.render:
            report["render"] = render_current(args, bool(report["projects"]), canvas)
    except Exception:
        traceback.print_exc()
        status = 1
    args.json.write_text(json.dumps(report, indent=2, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    # The report is complete. QGIS 3.22 intermittently segfaults while tearing down layers, the
    # canvas and the render threads at interpreter exit, so skip the teardown altogether.
    os._exit(status)


if __name__ == "__main__":
    main()
