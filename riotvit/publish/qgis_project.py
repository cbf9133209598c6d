"""The QGIS project (``riotvit.qgs``) that opens a prediction folder styled and in order.

The XML is written by hand in the QGIS 3.22 project format, so ``predict`` needs no QGIS. The
output is deterministic: layer ids derive from the layer names and paths, and there are no
timestamps or user names, so predicting the same region twice gives identical files.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from riotvit.errors import RasterError
from riotvit.io import atomic_file
from riotvit.publish.qgis_xml import QGIS_VERSION, num, sub, to_text


class QgisProjectError(RasterError):
    """A QGIS project cannot be written from the given layers."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the project.

    Attributes:
        name: the name shown in the layers panel.
        path: the data file, relative to the project's folder (absolute paths are made relative).
        kind: ``raster`` or ``vector``.
        provider: ``gdal`` (rasters) or ``ogr`` (vectors).
        qml: the style (``.qml`` text) embedded in the project.
        visible: checked in the layers panel.
        opacity: layer opacity in [0, 1]; replaces the style's own.
        layer_name: the layer inside a multi-layer file (GeoPackage), if any.
        crs: the layer's CRS (``EPSG:4326``...); None means the project CRS.
    """

    name: str
    path: str
    kind: Literal["raster", "vector"]
    provider: Literal["gdal", "ogr"]
    qml: str
    visible: bool = True
    opacity: float = 1.0
    layer_name: str | None = None
    crs: str | None = None


def _srs(parent: ET.Element, crs: str) -> None:
    """A ``<spatialrefsys>``: authid for QGIS's lookup, WKT as the lossless fallback."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS.from_user_input(crs)
    except CRSError as exc:
        raise QgisProjectError(f"CRS {crs!r} is not understood ({exc}); pass e.g. 'EPSG:32737'") from None
    auth = c.to_authority()
    authid = f"{auth[0]}:{auth[1]}" if auth else ""
    srs = sub(parent, "spatialrefsys")
    sub(srs, "wkt", c.to_wkt())
    with warnings.catch_warnings():  # "you will likely lose information": WKT is kept too
        warnings.simplefilter("ignore", UserWarning)
        proj4 = c.to_proj4() or ""
    sub(srs, "proj4", proj4)
    sub(srs, "srsid", "0")
    sub(srs, "srid", auth[1] if auth and auth[0] == "EPSG" else "0")
    sub(srs, "authid", authid)
    sub(srs, "description", c.name or "")
    sub(srs, "projectionacronym", "longlat" if c.is_geographic else "")
    sub(srs, "ellipsoidacronym", "")
    sub(srs, "geographicflag", "true" if c.is_geographic else "false")


def _is_geographic(crs: str) -> bool:
    from pyproj import CRS

    return bool(CRS.from_user_input(crs).is_geographic)


def layer_id(spec: LayerSpec) -> str:
    """A stable QGIS layer id: the slugged name plus a hash of name, path and inner layer."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", spec.name).strip("_") or "layer"
    digest = hashlib.sha1(f"{spec.name}|{spec.path}|{spec.layer_name}".encode()).hexdigest()[:12]
    return f"{slug}_{digest}"


def _datasource(spec: LayerSpec, folder: Path) -> str:
    p = Path(spec.path)
    rel = Path(os.path.relpath(p, folder)) if p.is_absolute() else p
    text = rel.as_posix()
    if not text.startswith((".", "/")):
        text = "./" + text
    return f"{text}|layername={spec.layer_name}" if spec.layer_name else text


def _parse_qml(spec: LayerSpec) -> ET.Element:
    try:
        root = ET.fromstring(spec.qml)
    except ET.ParseError as exc:
        raise QgisProjectError(f"layer {spec.name!r}: style is not valid XML ({exc}); pass the .qml text") from None
    if root.tag != "qgis":
        raise QgisProjectError(f"layer {spec.name!r}: style root is <{root.tag}>, expected <qgis> (.qml text)")
    return root


def _maplayer(parent: ET.Element, spec: LayerSpec, lid: str, source: str, crs: str) -> None:
    style = _parse_qml(spec)
    attrib = {k: v for k, v in style.attrib.items() if k not in ("version",)}
    attrib["type"] = spec.kind
    ml = sub(parent, "maplayer", **attrib)
    sub(ml, "id", lid)
    sub(ml, "datasource", source)
    sub(ml, "layername", spec.name)
    _srs(sub(ml, "srs"), crs)
    if spec.kind == "vector":
        sub(ml, "provider", spec.provider, encoding="UTF-8")
    else:
        sub(ml, "provider", spec.provider)
    for child in style:
        ml.append(copy.deepcopy(child))
    if spec.kind == "raster":
        for renderer in ml.iter("rasterrenderer"):
            renderer.set("opacity", num(spec.opacity))
    else:
        op = ml.find("layerOpacity")
        if op is None:
            op = sub(ml, "layerOpacity")
        op.text = num(spec.opacity)


def _extent(parent: ET.Element, extent: Sequence[float], as_attrib: bool = False) -> ET.Element:
    names = ("xmin", "ymin", "xmax", "ymax")
    if as_attrib:
        return sub(parent, "DefaultViewExtent", **{n: num(v) for n, v in zip(names, extent, strict=True)})
    el = sub(parent, "extent")
    for n, v in zip(names, extent, strict=True):
        sub(el, n, num(v))
    return el


def _check(layers: Sequence[LayerSpec], extent: Sequence[float]) -> None:
    if not layers:
        raise QgisProjectError("a QGIS project needs at least one layer")
    if len(extent) != 4 or not (extent[2] > extent[0] and extent[3] > extent[1]):
        raise QgisProjectError(f"project extent {tuple(extent)} must be (xmin, ymin, xmax, ymax) with min < max")
    for s in layers:
        if (s.kind, s.provider) not in (("raster", "gdal"), ("vector", "ogr")):
            raise QgisProjectError(
                f"layer {s.name!r}: kind {s.kind!r} with provider {s.provider!r}; use raster+gdal or vector+ogr"
            )
        if not 0.0 <= s.opacity <= 1.0:
            raise QgisProjectError(f"layer {s.name!r}: opacity {s.opacity} must be in [0, 1]")


def qgis_project_xml(
    folder: Path,
    layers: Sequence[LayerSpec],
    crs: str,
    extent: Sequence[float],
    title: str,
    margin: float = 0.02,
) -> str:
    """The ``.qgs`` text for a project saved in ``folder`` (see ``write_qgis_project``)."""
    _check(layers, extent)
    xmin, ymin, xmax, ymax = (float(v) for v in extent)
    dx, dy = (xmax - xmin) * margin, (ymax - ymin) * margin
    view = (xmin - dx, ymin - dy, xmax + dx, ymax + dy)
    ids: list[str] = []
    for spec in layers:
        lid = layer_id(spec)
        ids.append(lid if lid not in ids else f"{lid}_{len(ids)}")

    root = ET.Element("qgis", projectname=title, version=QGIS_VERSION)
    sub(root, "homePath", path="")
    sub(root, "title", title)
    _srs(sub(root, "projectCrs"), crs)

    tree = sub(root, "layer-tree-group")
    sub(sub(tree, "customproperties"), "Option")
    for spec, lid in zip(layers, ids, strict=True):
        node = sub(tree, "layer-tree-layer", id=lid, name=spec.name, source=_datasource(spec, folder),
                    providerKey=spec.provider, checked="Qt::Checked" if spec.visible else "Qt::Unchecked",
                    expanded="1", legend_exp="", patch_size="-1,-1", legend_split_behavior="0")
        sub(sub(node, "customproperties"), "Option")
    order = sub(tree, "custom-order", enabled="0")
    for lid in ids:
        sub(order, "item", lid)

    maplayers = sub(root, "projectlayers")
    for spec, lid in zip(layers, ids, strict=True):
        _maplayer(maplayers, spec, lid, _datasource(spec, folder), spec.crs or crs)
    layerorder = sub(root, "layerorder")
    for lid in ids:
        sub(layerorder, "layer", id=lid)

    props = sub(root, "properties")
    sub(sub(props, "Paths"), "Absolute", "false", type="bool")
    sub(sub(props, "SpatialRefSys"), "ProjectionsEnabled", "1", type="int")
    gui = sub(props, "Gui")
    for part in ("Red", "Green", "Blue"):
        sub(gui, f"CanvasColor{part}Part", "255", type="int")

    canvas = sub(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    sub(canvas, "units", "degrees" if _is_geographic(crs) else "meters")
    _extent(canvas, view)
    sub(canvas, "rotation", "0")
    _srs(sub(canvas, "destinationsrs"), crs)
    sub(canvas, "rendermaptile", "0")
    sub(canvas, "expressionContextScope")

    sub(root, "visibility-presets")
    sub(root, "transformContext")
    meta = sub(root, "projectMetadata")
    for tag in ("identifier", "parentidentifier", "language", "type"):
        sub(meta, tag, "")
    sub(meta, "title", title)
    sub(meta, "abstract", "Riot risk per 672 m cell, written by riotvit.")
    sub(meta, "links")
    view_settings = sub(root, "ProjectViewSettings", UseProjectScales="0", rotation="0")
    sub(view_settings, "Scales")
    _srs(_extent(view_settings, view, as_attrib=True), crs)

    return to_text(root)


def write_qgis_project(
    path: str | Path,
    layers: Sequence[LayerSpec],
    crs: str,
    extent: Sequence[float],
    title: str,
) -> Path:
    """Write a QGIS project that opens ``layers`` styled, first layer on top.

    Paths are stored relative to the project's folder, the project CRS is ``crs`` and the map
    opens on ``extent`` (in ``crs``) with a 2 % margin. The file is written atomically.

    Args:
        path: the ``.qgs`` file.
        layers: the layers, top first.
        crs: the project CRS (e.g. ``EPSG:32737``).
        extent: ``(xmin, ymin, xmax, ymax)`` of the initial view, in ``crs``.
        title: the project title.

    Returns:
        The written path.
    """
    path = Path(path)
    text = qgis_project_xml(path.parent.resolve(), layers, crs, extent, title)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def relocate_project(src: str | Path, dst: str | Path) -> Path:
    """Copy a project to another folder, re-pointing its relative layer paths so they still resolve.

    Used to put a run's ``riotvit.qgs`` at the top of the run folder, beside ``predict/``.
    """
    src, dst = Path(src), Path(dst)
    rel_from = src.parent.resolve()
    rel_to = dst.parent.resolve()

    def move(text: str) -> str:
        path, sep, rest = text.partition("|")
        if not path.startswith("."):
            return text
        new = Path(os.path.relpath(rel_from / path, rel_to)).as_posix()
        return ("./" + new if not new.startswith(".") else new) + sep + rest

    tree = ET.parse(src)
    for el in tree.iter("datasource"):
        el.text = move(el.text or "")
    for el in tree.iter("layer-tree-layer"):
        if "source" in el.attrib:
            el.set("source", move(el.attrib["source"]))
    with atomic_file(dst) as tmp:
        tmp.write_text(to_text(tree.getroot(), indent=False), encoding="utf-8")
    return dst
