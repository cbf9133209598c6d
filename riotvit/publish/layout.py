"""A print layout in ``riotvit.qgs``: the map an analyst can hand on, on one A4 landscape page.

:func:`add_print_layout` edits a project written by
:func:`riotvit.publish.qgis_project.write_qgis_project` (ElementTree, QGIS 3.22 format) and
rewrites it atomically. The page holds the map over the project's initial view, a legend of the
layers that are visible when the project opens (titled with the forecast window), a scale bar in
kilometres, a north arrow, the title and window, the data line (ACLED attribution), the model's
skill in one line and the disclaimer. QGIS fills in every attribute left out with its defaults.
"""

from __future__ import annotations

import textwrap
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from riotvit.errors import InputError
from riotvit.io import atomic_file
from riotvit.publish.maptexts import MapTexts
from riotvit.publish.qgis_xml import num, sub, to_text

LAYOUT_NAME = "riotvit map"
NORTH_ARROW = ":/images/north_arrows/layout_default_north_arrow.svg"
FONT = "DejaVu Sans"
PAGE_W, PAGE_H = 297.0, 210.0  # A4 landscape, mm
MARGIN = 10.0
LEGEND_WRAP = 44  # characters per legend line at 8 pt in the 81 mm legend column

# QgsLayoutItemRegistry item types
_PAGE, _MAP, _PICTURE, _LABEL, _LEGEND, _SCALEBAR = 65638, 65639, 65640, 65641, 65642, 65646


@dataclass(frozen=True)
class Box:
    """A rectangle on the page in millimetres (x, y from the top-left corner)."""

    x: float
    y: float
    w: float
    h: float


#: Where everything goes: map left, legend right, text blocks top and bottom; nothing overlaps.
MAP_BOX = Box(MARGIN, 27.0, 190.0, 155.0)
LEGEND_BOX = Box(MAP_BOX.x + MAP_BOX.w + 6.0, 27.0, PAGE_W - MARGIN - (MAP_BOX.x + MAP_BOX.w + 6.0), 155.0)
TITLE_BOX = Box(MARGIN, 7.0, PAGE_W - 2 * MARGIN, 10.0)
WINDOW_BOX = Box(MARGIN, 17.0, PAGE_W - 2 * MARGIN, 7.0)
NORTH_BOX = Box(MAP_BOX.x + MAP_BOX.w - 14.0, MAP_BOX.y + 3.0, 11.0, 16.0)
SCALE_BOX = Box(MAP_BOX.x + 3.0, MAP_BOX.y + MAP_BOX.h - 15.0, 70.0, 12.0)
FOOT_Y = MAP_BOX.y + MAP_BOX.h + 4.0  # data line, skill line, disclaimer below the map


class LayoutError(InputError):
    """A print layout cannot be added to the project."""


def _uid(key: str) -> str:
    """A stable item uuid (from the item's kind, place and id), so reruns write identical projects."""
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"riotvit-layout/{key}")) + "}"


def _font(size: float, bold: bool = False, italic: bool = False) -> str:
    """A QFont description string (family, point size, -1, hint, weight, italic, ...)."""
    return f"{FONT},{num(size)},-1,5,{75 if bold else 50},{1 if italic else 0},0,0,0,0"


def _item(parent: ET.Element, kind: int, box: Box, z: int, **attrib: str) -> ET.Element:
    uid = _uid(f"{kind}/{attrib.get('id', '')}/{box}")
    item = sub(parent, "LayoutItem", type=str(kind), uuid=uid, templateUuid=uid, id=attrib.pop("id", ""),
               position=f"{num(box.x)},{num(box.y)},mm", positionOnPage=f"{num(box.x)},{num(box.y)},mm",
               size=f"{num(box.w)},{num(box.h)},mm", zValue=str(z), referencePoint="0", visibility="1",
               frame=attrib.pop("frame", "false"), background=attrib.pop("background", "false"),
               outlineWidthM="0.3,mm", opacity="1", blendMode="0", itemRotation="0", positionLock="false",
               excludeFromExports="0", groupUuid="", **attrib)
    sub(item, "FrameColor", red="90", green="90", blue="90", alpha="255")
    sub(item, "BackgroundColor", red="255", green="255", blue="255", alpha="255")
    sub(sub(item, "LayoutObject"), "customproperties")
    return item


def _label(parent: ET.Element, text: str, box: Box, size: float, z: int, bold: bool = False,
           italic: bool = False, color: str = "0,0,0,255", item_id: str = "") -> ET.Element:
    el = _item(parent, _LABEL, box, z, id=item_id, labelText=text, htmlState="0", halign="1", valign="32",
               marginX="0", marginY="0")
    sub(el, "LabelFont", description=_font(size, bold, italic), style="")
    r, g, b, a = color.split(",")
    sub(el, "FontColor", red=r, green=g, blue=b, alpha=a)
    return el


def _fit_extent(extent: Sequence[float], box: Box) -> tuple[float, float, float, float]:
    """``extent`` grown (about its centre) to the map box's aspect, so nothing is cut off."""
    xmin, ymin, xmax, ymax = (float(v) for v in extent)
    w, h = xmax - xmin, ymax - ymin
    aspect = box.w / box.h
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _nice_segment(map_width_m: float, bar_mm: float, box_w: float) -> float:
    """A round segment length (m) so two segments span about a third of the map box."""
    target = map_width_m * (bar_mm / box_w) / 2
    for step in (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 25_000, 50_000, 100_000, 200_000):
        if step >= target:
            return float(step)
    return 500_000.0


def _project_extent(root: ET.Element) -> tuple[float, float, float, float]:
    ext = root.find("mapcanvas/extent")
    if ext is None:
        raise LayoutError("project has no <mapcanvas><extent>; write it with riotvit.publish.qgis_project")
    return tuple(float(ext.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[return-value]


def _project_layers(root: ET.Element, checked_only: bool) -> list[tuple[str, str]]:
    """(id, name) of the layers of the project's layers panel (not of a legend), top first."""
    tree = root.find("layer-tree-group")
    nodes = [] if tree is None else tree.iter("layer-tree-layer")
    return [(n.get("id", ""), n.get("name", "")) for n in nodes
            if not checked_only or n.get("checked") == "Qt::Checked"]


def _legend_nodes(root: ET.Element) -> dict[str, str]:
    """Per layer id, the legend rows to keep (QGIS's ``legend/node-order``): imagery shows no
    band swatches ("empty") and a pseudocolour raster keeps its classes without the band-name row."""
    out = {}
    for ml in root.findall("projectlayers/maplayer"):
        r = ml.find("pipe/rasterrenderer")
        if r is None:
            continue
        if r.get("type") == "multibandcolor":
            out[ml.findtext("id", "")] = "empty"
        elif r.get("type") == "singlebandpseudocolor":
            n = len(r.findall("rastershader/colorrampshader/item"))
            out[ml.findtext("id", "")] = ",".join(str(i) for i in range(1, n + 1)) or "empty"
    return out


def legend_label(name: str, window: str, width: int = LEGEND_WRAP) -> str:
    """A layer's row in the legend: its name without the window (the legend's title states it),
    wrapped onto lines of at most ``width`` characters."""
    short = name.replace(window, "").strip(" ,:;") if window and window in name else name
    return "\n".join(textwrap.wrap(short or name, width)) or name


def _legend(parent: ET.Element, map_uuid: str, title: str, layers: Sequence[tuple[str, str]],
            node_order: dict[str, str]) -> ET.Element:
    el = _item(parent, _LEGEND, LEGEND_BOX, 3, id="legend", title=title, map_uuid=map_uuid, columnCount="1",
               resizeToContents="0", symbolWidth="8", symbolHeight="4.5", boxSpace="2", columnSpace="2",
               lineSpacing="1", titleAlignment="1", symbolAlignment="1", wrapChar="", splitLayer="0",
               equalColumnWidth="0", legendFilterByAtlas="0", rasterBorder="1", rasterBorderColor="0,0,0,255",
               rasterBorderWidth="0", fontColor="#000000", wmsLegendWidth="50", wmsLegendHeight="25",
               maxSymbolSize="0", minSymbolSize="0")
    styles = sub(el, "styles")
    for name, size, bold, top in (("title", 10.5, True, 0), ("group", 9.0, True, 2.5), ("subgroup", 8.5, False, 2),
                                  ("symbol", 8.0, False, 1.5), ("symbolLabel", 8.0, False, 1.5)):
        st = sub(styles, "style", name=name, alignment="1", indent="0", marginTop=num(top),
                 **({"marginBottom": "3"} if name == "title" else {}),
                 **({"marginLeft": "2"} if name == "symbolLabel" else {}))
        sub(st, "styleFont", description=_font(size, bold), style="")
    tree = sub(el, "layer-tree-group")
    sub(sub(tree, "customproperties"), "Option")
    for lid, name in layers:
        node = sub(tree, "layer-tree-layer", id=lid, name=name, checked="Qt::Checked", expanded="1",
                   providerKey="", source="", legend_exp="", patch_size="-1,-1", legend_split_behavior="0")
        opts = sub(sub(node, "customproperties"), "Option", type="Map")
        label = legend_label(name, title.replace("\n", " "))
        if label != name:
            sub(opts, "Option", type="QString", name="legend/title-label", value=label)
        if lid in node_order:
            sub(opts, "Option", type="QString", name="legend/node-order", value=node_order[lid])
    return el


def layout_xml(texts: MapTexts, extent: Sequence[float], layers: Sequence[tuple[str, str]],
               name: str = LAYOUT_NAME, units: str = "meters", node_order: dict[str, str] | None = None) -> ET.Element:
    """The ``<Layout>`` element: page, map, legend, scale bar, north arrow and the text blocks.

    Args:
        texts: the words on the map.
        extent: the map's ground extent (project CRS), grown to the map box's aspect.
        layers: ``(layer id, name)`` of the layers in the legend, top first.
        name: the layout's name in QGIS's layout manager.
        units: the project CRS units (``meters`` or ``degrees``) for the scale bar.
        node_order: per layer id, QGIS's ``legend/node-order`` (which legend rows to show).
    """
    title = "\n".join(textwrap.wrap(texts.window, LEGEND_WRAP - 6))
    lay = ET.Element("Layout", name=name, units="mm", printResolution="300", worldFileMap="")
    sub(lay, "Snapper", tolerance="5", snapToGrid="0", snapToGuides="1", snapToItems="1")
    sub(lay, "Grid", resolution="10", resUnits="mm", offsetX="0", offsetY="0", offsetUnits="mm")
    pages = sub(lay, "PageCollection")
    _item(pages, _PAGE, Box(0, 0, PAGE_W, PAGE_H), 0, background="true")
    sub(pages, "GuideCollection", visible="1")

    x0, y0, x1, y1 = _fit_extent(extent, MAP_BOX)
    mp = _item(lay, _MAP, MAP_BOX, 1, id="map", frame="true", background="true", keepLayerSet="false",
               followPreset="false", followPresetName="", drawCanvasItems="true", mapRotation="0", mapFlags="0",
               labelMargin="0,mm", isTemporal="0")
    sub(mp, "Extent", xmin=num(x0), ymin=num(y0), xmax=num(x1), ymax=num(y1))
    sub(mp, "LayerSet")
    sub(mp, "AtlasMap", atlasDriven="0", margin="0.1", scalingMode="2")
    map_uuid = mp.get("uuid", "")

    _legend(lay, map_uuid, title, layers, node_order or {})

    metric = units == "meters"
    seg = _nice_segment(x1 - x0, SCALE_BOX.w - 16, MAP_BOX.w) if metric else 0.0
    sub_attrs = dict(unitType="kilometers", unitLabel="km", numMapUnitsPerScaleBarUnit="1000",
                     numUnitsPerSegment=num(seg), segmentSizeMode="0") if metric else dict(
        unitType="mapunits", unitLabel="°", numMapUnitsPerScaleBarUnit="1", segmentSizeMode="1",
        numUnitsPerSegment="1", minBarWidth="30", maxBarWidth="60")
    sb = _item(lay, _SCALEBAR, SCALE_BOX, 4, id="scalebar", background="true", style="Single Box", mapUuid=map_uuid,
               numSegments="2", numSegmentsLeft="0", numSubdivisions="1", subdivisionsHeight="1.5", height="2.5",
               labelBarSpace="2", boxContentSpace="1.5", alignment="0", labelVerticalPlacement="0",
               labelHorizontalPlacement="0", lineJoinStyle="miter", lineCapStyle="square", **sub_attrs)
    ts = sub(sb, "text-style", fontFamily=FONT, fontSize="8", fontSizeUnit="Point", fontWeight="50",
             fontItalic="0", textColor="0,0,0,255", textOpacity="1", multilineHeight="1", namedStyle="")
    sub(ts, "text-buffer", bufferDraw="0")

    _item(lay, _PICTURE, NORTH_BOX, 5, id="north arrow", file=NORTH_ARROW, mode="0", resizeMode="0",
          anchorPoint="0", northMode="0", northOffset="0", mapUuid=map_uuid, pictureRotation="0",
          svgFillColor="0,0,0,255", svgBorderColor="0,0,0,255", svgBorderWidth="0.2", background="true")

    _label(lay, texts.title, TITLE_BOX, 17, 6, bold=True, item_id="title")
    _label(lay, texts.window, WINDOW_BOX, 11.5, 6, item_id="window")
    foot_w = PAGE_W - 2 * MARGIN
    _label(lay, texts.data_line, Box(MARGIN, FOOT_Y, foot_w, 5), 8, 6, item_id="data line",
           color="40,40,40,255")
    if texts.skill_line:
        _label(lay, texts.skill_line, Box(MARGIN, FOOT_Y + 5.5, foot_w, 5), 8, 6, item_id="skill",
               color="40,40,40,255")
    _label(lay, texts.disclaimer, Box(MARGIN, FOOT_Y + 11.5, foot_w, 5), 8.5, 6, italic=True,
           item_id="disclaimer", color="120,20,20,255")
    return lay


def add_print_layout(qgs_path: str | Path, texts: MapTexts, *, extent: Sequence[float] | None = None,
                     legend_layers: Sequence[str] | None = None, name: str = LAYOUT_NAME) -> Path:
    """Add (or replace) the print layout ``name`` in a riotvit QGIS project, atomically.

    Args:
        qgs_path: the ``riotvit.qgs`` written by :func:`~riotvit.publish.qgis_project.write_qgis_project`.
        texts: title, window, data line, skill line and disclaimer (:func:`~riotvit.publish.maptexts.map_texts`).
        extent: the map's extent in the project CRS; default the project's initial view.
        legend_layers: names of the layers in the legend, in order; default every layer visible
            when the project opens.
        name: the layout's name.

    Returns:
        The project path.

    Raises:
        LayoutError: the project is missing, not a QGIS project, or a legend layer is not in it.
    """
    path = Path(qgs_path)
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as exc:
        raise LayoutError(f"{path}: not a readable QGIS project ({exc}); write it first with riotvit predict") from None
    root = tree.getroot()
    if root.tag != "qgis":
        raise LayoutError(f"{path}: root element is <{root.tag}>, not <qgis>; pass a .qgs project file")
    all_layers = _project_layers(root, checked_only=False)
    if legend_layers is None:
        layers = _project_layers(root, checked_only=True)
    else:
        by_name = dict((n, i) for i, n in all_layers)
        missing = [n for n in legend_layers if n not in by_name]
        if missing:
            raise LayoutError(f"{path}: legend layers {missing} are not in the project; "
                              f"choose from {[n for _, n in all_layers]}")
        layers = [(by_name[n], n) for n in legend_layers]
    units = root.findtext("mapcanvas/units") or "meters"
    lay = layout_xml(texts, extent if extent is not None else _project_extent(root), layers, name, units,
                     _legend_nodes(root))
    layouts = root.find("Layouts")
    if layouts is None:
        layouts = sub(root, "Layouts")
    for old in [e for e in layouts.findall("Layout") if e.get("name") == name]:
        layouts.remove(old)
    layouts.append(lay)
    with atomic_file(path) as tmp:
        tmp.write_text(to_text(root), encoding="utf-8")
    return path
