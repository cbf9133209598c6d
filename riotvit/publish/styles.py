"""QGIS styles (``.qml``) for riotvit's layers, and the risk classes they share.

A ``.qml`` with the layer's basename (``risk.tif`` -> ``risk.qml``) is applied by QGIS
automatically when the layer is opened. The same XML is embedded in ``riotvit.qgs`` by
``riotvit.publish.qgis_project``. The text is hand-written (QGIS 3.22 format), deterministic, and
needs no QGIS install.

Why ElementTree and not ``.qml`` templates with placeholders: every style here is generated
from data (one ``<item>`` per ramp stop or class, one ``<range>`` and ``<symbol>`` per class,
per-geometry symbol properties), so a template would still need loops and conditionals, i.e.
a template engine riotvit does not otherwise depend on, and hand-escaping of labels such as
``0.10–0.25 low`` or a field name with ``&``. Building the tree keeps escaping and indentation
in one place (:mod:`riotvit.publish.qgis_xml`); the fixed boilerplate is a few small helpers
(``_pipe``, ``_pipe_tail``, ``_min_max_origin``), about 200 lines in all.

Size: one module for every QGIS style riotvit writes (raster ramps, vector classes with aliases and map tips, hatching); they share the class and colour helpers, and splitting them would scatter one XML vocabulary.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riotvit.io import atomic_file
from riotvit.publish.qgis_xml import QGIS_VERSION, num, sub, to_text


@dataclass(frozen=True)
class RiskClass:
    """One risk class: probabilities in ``(lower, upper]`` (the first class includes 0)."""

    lower: float
    upper: float
    name: str
    color: str
    digits: int = 2

    @property
    def label(self) -> str:
        """The legend label, e.g. ``0.00–0.10 very low``."""
        return f"{self.lower:.{self.digits}f}–{self.upper:.{self.digits}f} {self.name}"


#: The one place the risk classes live (YlOrRd colours).
RISK_CLASSES: tuple[RiskClass, ...] = (
    RiskClass(0.0, 0.10, "very low", "#ffffb2"),
    RiskClass(0.10, 0.25, "low", "#fecc5c"),
    RiskClass(0.25, 0.50, "medium", "#fd8d3c"),
    RiskClass(0.50, 0.75, "high", "#f03b20"),
    RiskClass(0.75, 1.00, "very high", "#bd0026"),
)
RISK_BOUNDS: tuple[float, ...] = (RISK_CLASSES[0].lower, *(c.upper for c in RISK_CLASSES))

#: Colour ramps (stops from low to high), named for what they show.
RAMPS: dict[str, tuple[str, ...]] = {
    "risk": ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"),
    "diverging": ("#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b"),
    "uncertainty": ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"),
    "count": ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"),
}
_DIVERGING = {"diverging"}


_QUANTILE_NAMES = {5: ("lowest fifth", "second fifth", "middle fifth", "fourth fifth", "highest fifth"),
                   4: ("lowest quarter", "second quarter", "third quarter", "highest quarter")}


def quantile_classes(prob: np.ndarray, n: int = 5) -> tuple[RiskClass, ...]:
    """Risk classes with equal numbers of cells (quantiles of ``prob``): every map shows its ranking.

    Edges are rounded to 3 decimals (the legend shows them); the outer edges enclose the data.
    Ties that merge edges (a nearly constant map) give fewer classes. Colours are the YlOrRd
    ramp of ``RAMPS["risk"]`` spread over the classes.
    """
    p = np.asarray(prob, dtype="float64")
    p = p[np.isfinite(p)]
    if p.size == 0:
        return RISK_CLASSES
    lo, hi = np.floor(p.min() * 1000) / 1000, np.ceil(p.max() * 1000) / 1000
    inner = np.round(np.quantile(p, np.arange(1, n) / n), 3)
    edges = np.unique(np.clip(np.concatenate([[lo], inner, [hi]]), lo, hi))
    if edges.size < 2:
        edges = np.array([lo, lo + 0.001])
    k = edges.size - 1
    names = _QUANTILE_NAMES.get(k) or tuple(f"class {i + 1} of {k}" for i in range(k))
    ramp = RAMPS["risk"]
    colors = [ramp[round(i * (len(ramp) - 1) / max(k - 1, 1))] for i in range(k)]
    return tuple(RiskClass(float(edges[i]), float(edges[i + 1]), names[i], colors[i], 3) for i in range(k))


def risk_class(prob: np.ndarray, classes: Sequence[RiskClass] = RISK_CLASSES) -> np.ndarray:
    """Name of the risk class of each probability (``""`` for NaN), consistent with the styles.

    A value on a boundary belongs to the lower class (``0.10`` is "very low"), exactly as QGIS
    classifies it with the discrete raster ramp and the graduated vector renderer.
    """
    p = np.asarray(prob, dtype="float64")
    bounds = [c.upper for c in classes[:-1]]
    idx = np.digitize(p, bounds, right=True)
    names = np.array([c.name for c in classes] + [""], dtype=object)
    out = names[np.where(np.isnan(p), len(classes), idx)]
    return out.astype(str)


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} is not #rrggbb")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _rgba_text(color: str, alpha: float = 1.0) -> str:
    r, g, b = _rgb(color)
    return f"{r},{g},{b},{round(255 * alpha)}"


def _option_map(parent: ET.Element, items: dict[str, str]) -> None:
    opt = sub(parent, "Option", type="Map")
    for k, v in items.items():
        sub(opt, "Option", type="QString", name=k, value=v)


def _root(**attrib: str) -> ET.Element:
    return ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories", **attrib})


def _pipe(root: ET.Element, renderer_attrib: dict[str, str]) -> ET.Element:
    pipe = sub(root, "pipe")
    provider = sub(pipe, "provider")
    sub(provider, "resampling", enabled="false", zoomedInResamplingMethod="nearestNeighbour",
         zoomedOutResamplingMethod="nearestNeighbour", maxOversampling="2")
    renderer = sub(pipe, "rasterrenderer", **renderer_attrib)
    return renderer


def _pipe_tail(root: ET.Element) -> None:
    pipe = root.find("pipe")
    assert pipe is not None
    sub(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    sub(pipe, "huesaturation", saturation="0", grayscaleMode="0", invertColors="0", colorizeOn="0",
         colorizeRed="255", colorizeGreen="128", colorizeBlue="128", colorizeStrength="100")
    sub(pipe, "rasterresampler", maxOversampling="2")
    sub(pipe, "resamplingStage", "resamplingFilter")
    sub(root, "blendMode", "0")


def _min_max_origin(parent: ET.Element) -> None:
    mmo = sub(parent, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"),
                      ("stdDevFactor", "2")):
        sub(mmo, tag, text)


def ramp_classes(ramp: str, vmin: float, vmax: float, precision: int = 2) -> list[tuple[float, str, str]]:
    """Evenly spaced ``(value, colour, label)`` stops of a named ramp between vmin and vmax."""
    if ramp not in RAMPS:
        raise ValueError(f"unknown ramp {ramp!r}; use one of {sorted(RAMPS)}")
    stops = RAMPS[ramp]
    values = np.linspace(vmin, vmax, len(stops))
    return [(float(v), c, f"{v:.{precision}f}") for v, c in zip(values, stops, strict=True)]


def raster_pseudocolor_qml(
    band: int,
    vmin: float,
    vmax: float,
    ramp: str = "risk",
    classes: Sequence[tuple[float, str, str]] | None = None,
    nodata_transparent: bool = True,
    opacity: float = 1.0,
    precision: int = 2,
) -> str:
    """A single-band pseudocolor style.

    Without ``classes`` the named ``ramp`` is interpolated between ``vmin`` and ``vmax``
    (a diverging ramp gets symmetric limits around 0: ``±max(|vmin|, |vmax|)``). With
    ``classes`` the ramp is discrete: each ``(value, colour, label)`` colours pixels up to
    ``value``; the last class is open-ended so values above it keep the top colour.

    Args:
        band: the 1-based band to show.
        vmin: lower limit of the ramp.
        vmax: upper limit of the ramp.
        ramp: a key of ``RAMPS`` (``risk``, ``diverging``, ``uncertainty``, ``count``).
        classes: discrete classes as ``(upper value, "#rrggbb", label)``, in increasing order.
        nodata_transparent: draw nodata pixels transparent (else light grey).
        opacity: layer opacity in [0, 1].
        precision: decimals of the interpolated ramp's legend labels.
    """
    if ramp in _DIVERGING:
        half = max(abs(float(vmin)), abs(float(vmax))) or 1e-9
        vmin, vmax = -half, half
    if not vmax > vmin:
        raise ValueError(f"ramp limits must satisfy vmin < vmax, got {vmin}, {vmax}")
    discrete = classes is not None
    items = list(classes) if discrete else ramp_classes(ramp, vmin, vmax, precision)
    if not items:
        raise ValueError("classes must not be empty")
    root = _root(hasScaleBasedVisibilityFlag="0", minScale="1e+08", maxScale="0")
    renderer = _pipe(root, {
        "type": "singlebandpseudocolor", "band": str(band), "opacity": num(opacity),
        "alphaBand": "-1", "nodataColor": "" if nodata_transparent else "200,200,200,255",
        "classificationMin": num(vmin), "classificationMax": num(vmax),
    })
    sub(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    shader = sub(sub(renderer, "rastershader"), "colorrampshader",
                  colorRampType="DISCRETE" if discrete else "INTERPOLATED", classificationMode="1",
                  clip="0", minimumValue=num(vmin), maximumValue=num(vmax), labelPrecision=str(precision))
    for i, (value, color, label) in enumerate(items):
        v = math.inf if discrete and i == len(items) - 1 else float(value)
        sub(shader, "item", value=num(v), color=color.lower(), alpha="255", label=label)
    sub(shader, "rampLegendSettings", useContinuousLegend="0" if discrete else "1",
         minimumLabel="", maximumLabel="", prefix="", suffix="", orientation="2", direction="0")
    _pipe_tail(root)
    return to_text(root)


def risk_raster_qml(band: int = 1, opacity: float = 1.0, classes: Sequence[RiskClass] = RISK_CLASSES) -> str:
    """The risk-probability style: discrete ``classes`` (default ``RISK_CLASSES``) on ``band``."""
    items = [(c.upper, c.color, c.label) for c in classes]
    return raster_pseudocolor_qml(band, classes[0].lower, classes[-1].upper, "risk", items, opacity=opacity,
                                  precision=classes[0].digits)


def ramp_raster_qml(band: int, vmin: float, vmax: float, ramp: str, opacity: float = 1.0) -> str:
    """A continuous ramp over the data's range (uncertainty, expected counts, attention); stated in the legend."""
    vmax = vmax if vmax > vmin else vmin + 1e-6
    precision = max(2, min(6, 2 - int(np.floor(np.log10(max(vmax - vmin, 1e-12))))))
    return raster_pseudocolor_qml(band, vmin, vmax, ramp, opacity=opacity, precision=precision)


def driver_raster_qml(band: int, limit: float, opacity: float = 1.0) -> str:
    """A driver (attribution) style: blue–white–red, centred on 0, limits ``±limit``."""
    return raster_pseudocolor_qml(band, -abs(limit), abs(limit), "diverging", opacity=opacity, precision=3)


def raster_rgb_qml(
    red_band: int,
    green_band: int,
    blue_band: int,
    stats: Sequence[tuple[float, float]],
    opacity: float = 1.0,
    nodata_transparent: bool = True,
) -> str:
    """A multiband colour style stretched to per-band ``(min, max)`` (e.g. p2/p98) for imagery."""
    if len(stats) != 3:
        raise ValueError(f"need (min, max) for red, green and blue, got {len(stats)} pairs")
    root = _root(hasScaleBasedVisibilityFlag="0", minScale="1e+08", maxScale="0")
    renderer = _pipe(root, {
        "type": "multibandcolor", "redBand": str(red_band), "greenBand": str(green_band),
        "blueBand": str(blue_band), "opacity": num(opacity), "alphaBand": "-1",
        "nodataColor": "" if nodata_transparent else "200,200,200,255",
    })
    sub(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    for name, (lo, hi) in zip(("red", "green", "blue"), stats, strict=True):
        if not hi > lo:
            raise ValueError(f"{name} stretch needs min < max, got {lo}, {hi}")
        ce = sub(renderer, f"{name}ContrastEnhancement")
        sub(ce, "minValue", num(lo))
        sub(ce, "maxValue", num(hi))
        sub(ce, "algorithm", "StretchToMinimumMaximum")
    _pipe_tail(root)
    return to_text(root)


_GEOMETRY = {  # name -> (symbol type, symbol layer class, QgsWkbTypes geometry type)
    "point": ("marker", "SimpleMarker", "0"),
    "line": ("line", "SimpleLine", "1"),
    "polygon": ("fill", "SimpleFill", "2"),
}
_UNIT_SCALE = "3x:0,0,0,0,0,0"


def _symbol_props(geometry: str, color: str, outline: str, opacity: float, width: float) -> dict[str, str]:
    if geometry == "polygon":
        return {"color": _rgba_text(color, opacity), "style": "solid", "outline_color": _rgba_text(outline),
                "outline_style": "solid", "outline_width": num(width), "outline_width_unit": "MM",
                "joinstyle": "bevel", "offset": "0,0", "offset_unit": "MM",
                "border_width_map_unit_scale": _UNIT_SCALE, "offset_map_unit_scale": _UNIT_SCALE}
    if geometry == "line":
        return {"line_color": _rgba_text(color, opacity), "line_style": "solid",
                "line_width": num(max(width, 0.6)), "line_width_unit": "MM", "capstyle": "square",
                "joinstyle": "bevel", "offset": "0", "offset_unit": "MM"}
    return {"name": "circle", "color": _rgba_text(color, opacity), "outline_color": _rgba_text(outline),
            "outline_style": "solid", "outline_width": num(width), "outline_width_unit": "MM",
            "size": "2.6", "size_unit": "MM", "angle": "0", "offset": "0,0", "offset_unit": "MM",
            "scale_method": "diameter", "joinstyle": "bevel"}


def _symbol(parent: ET.Element, name: str, geometry: str, props: dict[str, str],
            data_defined: dict[str, str] | None = None) -> None:
    sym_type, layer_class, _ = _GEOMETRY[geometry]
    sym = sub(parent, "symbol", type=sym_type, name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    layer = sub(sym, "layer", **{"class": layer_class, "enabled": "1", "locked": "0", "pass": "0"})
    _option_map(layer, props)
    for k, v in props.items():  # the <prop> form, read by QGIS versions before 3.2x
        sub(layer, "prop", k=k, v=v)
    if data_defined:  # symbol properties computed per feature (e.g. a hatched fill for partial cells)
        opt = sub(sub(layer, "data_defined_properties"), "Option", type="Map")
        sub(opt, "Option", type="QString", name="name", value="")
        props_el = sub(opt, "Option", type="Map", name="properties")
        for key, expr in data_defined.items():
            p = sub(props_el, "Option", type="Map", name=key)
            sub(p, "Option", type="bool", name="active", value="true")
            sub(p, "Option", type="QString", name="expression", value=expr)
            sub(p, "Option", type="int", name="type", value="3")
        sub(opt, "Option", type="QString", name="type", value="collection")


def _identify(root: ET.Element, aliases: dict[str, str] | None, map_tip: str | None, display: str | None) -> None:
    """Field aliases, the map tip and the display expression of a vector layer."""
    if aliases:
        el = sub(root, "aliases")
        for i, (field, alias) in enumerate(aliases.items()):
            sub(el, "alias", field=field, index=str(i), name=alias)
    if display:
        sub(root, "previewExpression", display)
    if map_tip:
        sub(root, "mapTip", map_tip)


def vector_graduated_qml(
    field: str,
    classes: Sequence[tuple[float, float, str, str]],
    geometry: str = "polygon",
    outline: str = "#4d4d4d",
    opacity: float = 0.7,
    outline_width: float = 0.2,
    data_defined: dict[str, str] | None = None,
    aliases: dict[str, str] | None = None,
    map_tip: str | None = None,
    display: str | None = None,
) -> str:
    """A graduated style on a numeric ``field`` with a labelled legend.

    Args:
        field: the attribute classified (e.g. ``riot_probability``).
        classes: ``(lower, upper, "#rrggbb", label)`` in increasing order; QGIS puts a value on
            a boundary into the lower class.
        geometry: ``polygon``, ``line`` or ``point``.
        outline: outline colour of polygons and points.
        opacity: fill opacity in [0, 1] (the outline stays opaque).
        outline_width: outline width in millimetres.
        data_defined: symbol-layer properties computed per feature (QGIS property key -> expression).
        aliases: field name -> alias shown in the attribute table and Identify panel.
        map_tip: the map tip (HTML with ``[% expression %]``).
        display: the display expression (a feature's name in the Identify panel).
    """
    if geometry not in _GEOMETRY:
        raise ValueError(f"unknown geometry {geometry!r}; use one of {sorted(_GEOMETRY)}")
    if not classes:
        raise ValueError("classes must not be empty")
    root = _root(hasScaleBasedVisibilityFlag="0", minScale="100000000", maxScale="0",
                 labelsEnabled="0", readOnly="0", simplifyLocal="1", simplifyDrawingHints="1",
                 simplifyDrawingTol="1", simplifyAlgorithm="0", simplifyMaxScale="1",
                 symbologyReferenceScale="-1")
    renderer = sub(root, "renderer-v2", type="graduatedSymbol", attr=field, graduatedMethod="GraduatedColor",
                    symbollevels="0", forceraster="0", enableorderby="0", referencescale="-1")
    ranges = sub(renderer, "ranges")
    symbols = sub(renderer, "symbols")
    for i, (lower, upper, color, label) in enumerate(classes):
        sub(ranges, "range", lower=f"{float(lower):.15f}", upper=f"{float(upper):.15f}",
             symbol=str(i), label=label, render="true")
        _symbol(symbols, str(i), geometry, _symbol_props(geometry, color, outline, opacity, outline_width), data_defined)
    method = sub(renderer, "classificationMethod", id="Custom")
    sub(method, "symmetricMode", enabled="0", symmetrypoint="0", astride="0")
    sub(method, "labelFormat", format="%1 - %2", labelprecision="2", trimtrailingzeroes="1")
    sub(renderer, "rotation")
    sub(renderer, "sizescale")
    sub(root, "blendMode", "0")
    sub(root, "featureBlendMode", "0")
    sub(root, "layerOpacity", "1")
    sub(root, "legend", type="default-vector", showLabelLegend="0")
    sub(root, "layerGeometryType", _GEOMETRY[geometry][2])
    _identify(root, aliases, map_tip, display)
    return to_text(root)


#: Partial cells (``edge`` true: little imagery at the edge) are drawn hatched, not as a low class.
EDGE_HATCH = {"fillStyle": "if(\"edge\", 'b_diagonal', 'solid')"}


def risk_vector_qml(field: str = "riot_probability", opacity: float = 0.6,
                    classes: Sequence[RiskClass] = RISK_CLASSES, hatch_edges: bool = False,
                    aliases: dict[str, str] | None = None, map_tip: str | None = None,
                    display: str | None = None) -> str:
    """The cells style: ``classes`` (default ``RISK_CLASSES``) on ``field``, semi-transparent polygons.

    ``hatch_edges``: cells whose ``edge`` attribute is true are hatched (their value rests on
    part of a crop's imagery). ``aliases``, ``map_tip`` and ``display`` set the Identify panel.
    """
    items = [(c.lower, c.upper, c.color, c.label) for c in classes]
    return vector_graduated_qml(field, items, "polygon", opacity=opacity,
                                data_defined=EDGE_HATCH if hatch_edges else None,
                                aliases=aliases, map_tip=map_tip, display=display)


def style_path(layer_path: str | Path) -> Path:
    """Where QGIS looks for a layer's default style: ``<stem>.qml`` beside it."""
    return Path(layer_path).with_suffix(".qml")


def write_style(layer_path: str | Path, qml_text: str) -> Path:
    """Write ``qml_text`` as ``<stem>.qml`` beside ``layer_path`` (atomically)."""
    out = style_path(layer_path)
    with atomic_file(out) as tmp:
        tmp.write_text(qml_text, encoding="utf-8")
    return out


def embed_gpkg_style(gpkg: str | Path, layer: str, qml_text: str, stamp: str = "2000-01-01T00:00:00.000Z") -> None:
    """Store ``qml_text`` as ``layer``'s default style in the GeoPackage (``layer_styles``, as QGIS does).

    QGIS then opens the layer styled, with its aliases and map tip, even without the ``.qml``.
    ``stamp`` fixes the recorded times, so reruns give identical files.
    """
    import sqlite3

    con = sqlite3.connect(str(gpkg))
    try:
        with con:
            con.execute("CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
                        "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
                        "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
                        "update_time DATETIME DEFAULT CURRENT_TIMESTAMP)")
            con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                        "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', '', ?)", (stamp,))
            geom = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
            con.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
            con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                        "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, update_time) "
                        "VALUES ('', '', ?, ?, ?, ?, '', 1, 'written by riotvit', '', NULL, ?)",
                        (layer, geom[0] if geom else "geom", layer, qml_text, stamp))
    finally:
        con.close()
