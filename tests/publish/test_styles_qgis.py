"""QGIS styles and project: the XML itself, then the prediction folder opened in real QGIS."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer
from qgis_support import requires_qgis, run_qgis_check
from rasterio.transform import from_bounds, from_origin
from shapely.geometry import box

from riotvit.publish.cog import write_cog
from riotvit.publish.qgis_project import LayerSpec, QgisProjectError, layer_id, write_qgis_project
from riotvit.publish.styles import (
    RISK_BOUNDS,
    RISK_CLASSES,
    driver_raster_qml,
    raster_pseudocolor_qml,
    raster_rgb_qml,
    risk_class,
    risk_raster_qml,
    risk_vector_qml,
    vector_graduated_qml,
    write_style,
)

CRS = "EPSG:32737"
X0, Y0, CELL = 500_000.0, 9_000_000.0, 672.0
ROWS, COLS = 12, 16
EXTENT = (X0, Y0 - ROWS * CELL, X0 + COLS * CELL, Y0)
RISK_LABELS = [
    "0.00–0.10 very low", "0.10–0.25 low", "0.25–0.50 medium", "0.50–0.75 high", "0.75–1.00 very high",
]
IMAGERY_STATS = [(400.0, 1800.0)] * 3


def _xml(text: str) -> ET.Element:
    assert text.startswith("<!DOCTYPE qgis")
    return ET.fromstring(text)


# --------------------------------------------------------------------------- pure XML tests


def test_risk_classes_are_the_documented_ones():
    assert RISK_BOUNDS == (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    assert [c.label for c in RISK_CLASSES] == RISK_LABELS
    assert len({c.color for c in RISK_CLASSES}) == 5


def test_risk_class_puts_boundaries_in_the_lower_class_like_qgis():
    p = np.array([0.0, 0.1, 0.100001, 0.25, 0.3, 0.5, 0.75, 0.76, 1.0, np.nan])
    assert risk_class(p).tolist() == [
        "very low", "very low", "low", "low", "medium", "medium", "high", "very high", "very high", "",
    ]
    assert risk_class(np.array([[0.05, 0.9]])).shape == (1, 2)


def test_risk_raster_qml_is_a_discrete_pseudocolor_on_the_risk_classes():
    root = _xml(risk_raster_qml(band=1))
    r = root.find("pipe/rasterrenderer")
    assert r.get("type") == "singlebandpseudocolor" and r.get("band") == "1"
    assert r.get("nodataColor") == ""  # nodata drawn transparent
    shader = r.find("rastershader/colorrampshader")
    assert shader.get("colorRampType") == "DISCRETE"
    items = shader.findall("item")
    assert [i.get("label") for i in items] == RISK_LABELS
    assert [i.get("color") for i in items] == [c.color for c in RISK_CLASSES]
    assert [i.get("value") for i in items] == ["0.1", "0.25", "0.5", "0.75", "inf"]


def test_diverging_ramp_is_symmetric_and_white_at_zero():
    root = _xml(raster_pseudocolor_qml(2, -0.2, 0.5, ramp="diverging"))
    shader = root.find("pipe/rasterrenderer/rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    assert (float(shader.get("minimumValue")), float(shader.get("maximumValue"))) == (-0.5, 0.5)
    items = shader.findall("item")
    assert [float(i.get("value")) for i in items] == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert items[2].get("color") == "#f7f7f7"
    assert items[0].get("color") == "#2166ac" and items[-1].get("color") == "#b2182b"
    limits = _xml(driver_raster_qml(1, -0.03)).find("pipe/rasterrenderer/rastershader/colorrampshader")
    assert (limits.get("minimumValue"), limits.get("maximumValue")) == ("-0.03", "0.03")


def test_rgb_qml_stretches_each_band_to_its_limits():
    root = _xml(raster_rgb_qml(3, 2, 1, [(10, 200), (20, 210), (30, 220)]))
    r = root.find("pipe/rasterrenderer")
    assert r.get("type") == "multibandcolor"
    assert (r.get("redBand"), r.get("greenBand"), r.get("blueBand")) == ("3", "2", "1")
    got = [
        (r.find(f"{c}ContrastEnhancement/minValue").text, r.find(f"{c}ContrastEnhancement/maxValue").text,
         r.find(f"{c}ContrastEnhancement/algorithm").text)
        for c in ("red", "green", "blue")
    ]
    assert got == [("10", "200", "StretchToMinimumMaximum"), ("20", "210", "StretchToMinimumMaximum"),
                   ("30", "220", "StretchToMinimumMaximum")]
    with pytest.raises(ValueError, match="min < max"):
        raster_rgb_qml(1, 2, 3, [(1, 1), (0, 1), (0, 1)])


def test_graduated_qml_has_semi_transparent_labelled_ranges():
    root = _xml(risk_vector_qml("riot_probability", opacity=0.6))
    r = root.find("renderer-v2")
    assert r.get("type") == "graduatedSymbol" and r.get("attr") == "riot_probability"
    ranges = r.findall("ranges/range")
    assert [(float(x.get("lower")), float(x.get("upper"))) for x in ranges] == list(
        zip(RISK_BOUNDS[:-1], RISK_BOUNDS[1:], strict=True)
    )
    assert [x.get("label") for x in ranges] == RISK_LABELS
    fills = [s.find("layer/Option/Option[@name='color']").get("value") for s in r.findall("symbols/symbol")]
    assert fills[0] == "255,255,178,153" and fills[-1] == "189,0,38,153"  # 60 % opaque fill
    assert root.find("layerGeometryType").text == "2"
    points = _xml(vector_graduated_qml("n", [(0, 1, "#000000", "a")], geometry="point"))
    assert points.find("renderer-v2/symbols/symbol").get("type") == "marker"
    with pytest.raises(ValueError, match="unknown geometry"):
        vector_graduated_qml("n", [(0, 1, "#000000", "a")], geometry="raster")


def test_write_style_puts_the_qml_beside_the_layer(tmp_path):
    for name in ("cells.gpkg", "cells.geojson"):
        out = write_style(tmp_path / name, risk_vector_qml())
        assert out == tmp_path / "cells.qml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.qml"]
    assert (tmp_path / "cells.qml").read_text(encoding="utf-8") == risk_vector_qml()


def _specs() -> list[LayerSpec]:
    return [
        LayerSpec("cells", "cells.gpkg", "vector", "ogr", risk_vector_qml(), True, 1.0, layer_name="cells"),
        LayerSpec("risk", "risk.tif", "raster", "gdal", risk_raster_qml(1), True, 0.8),
        LayerSpec("drivers", "drivers.tif", "raster", "gdal", driver_raster_qml(1, 0.5), False, 1.0),
        LayerSpec("imagery", "imagery.tif", "raster", "gdal", raster_rgb_qml(1, 2, 3, IMAGERY_STATS),
                  True, 1.0, crs="EPSG:4326"),
    ]


def test_project_xml_has_layers_in_order_with_relative_paths(tmp_path):
    out = write_qgis_project(tmp_path / "riotvit.qgs", _specs(), CRS, EXTENT, "riotvit: test")
    text = out.read_text(encoding="utf-8")
    assert str(tmp_path) not in text
    root = _xml(text)
    assert root.get("projectname") == "riotvit: test" and root.find("title").text == "riotvit: test"
    assert root.find("projectCrs/spatialrefsys/authid").text == CRS
    assert root.find("properties/Paths/Absolute").text == "false"
    tree = root.findall("layer-tree-group/layer-tree-layer")
    assert [n.get("name") for n in tree] == ["cells", "risk", "drivers", "imagery"]
    assert [n.get("checked") for n in tree] == ["Qt::Checked", "Qt::Checked", "Qt::Unchecked", "Qt::Checked"]
    layers = {m.find("layername").text: m for m in root.findall("projectlayers/maplayer")}
    assert layers["cells"].find("datasource").text == "./cells.gpkg|layername=cells"
    assert layers["risk"].find("datasource").text == "./risk.tif"
    assert layers["imagery"].find("srs/spatialrefsys/authid").text == "EPSG:4326"
    assert layers["risk"].find("pipe/rasterrenderer").get("opacity") == "0.8"
    assert layers["cells"].find("renderer-v2").get("type") == "graduatedSymbol"
    assert [n.get("id") for n in tree] == [layer_id(s) for s in _specs()]
    canvas = [float(root.find(f"mapcanvas/extent/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")]
    assert canvas[0] < EXTENT[0] and canvas[2] > EXTENT[2]  # 2 % margin around the region
    assert np.allclose([(canvas[0] + canvas[2]) / 2, (canvas[1] + canvas[3]) / 2],
                       [(EXTENT[0] + EXTENT[2]) / 2, (EXTENT[1] + EXTENT[3]) / 2])


def test_project_is_deterministic(tmp_path):
    a = write_qgis_project(tmp_path / "a" / "riotvit.qgs", _specs(), CRS, EXTENT, "t").read_bytes()
    b = write_qgis_project(tmp_path / "b" / "riotvit.qgs", _specs(), CRS, EXTENT, "t").read_bytes()
    assert a == b
    assert layer_id(_specs()[0]) == layer_id(_specs()[0]) != layer_id(_specs()[1])


def test_absolute_layer_paths_are_made_relative(tmp_path):
    spec = LayerSpec("risk", str(tmp_path / "out" / "risk.tif"), "raster", "gdal", risk_raster_qml())
    root = _xml(write_qgis_project(tmp_path / "out" / "p.qgs", [spec], CRS, EXTENT, "t").read_text("utf-8"))
    assert root.find("projectlayers/maplayer/datasource").text == "./risk.tif"


@pytest.mark.parametrize(
    ("layers", "extent", "message"),
    [
        ([], EXTENT, "at least one layer"),
        (None, (1, 1, 0, 2), "must be \\(xmin, ymin, xmax, ymax\\)"),
        ([LayerSpec("r", "r.tif", "raster", "ogr", risk_raster_qml())], EXTENT, "use raster\\+gdal"),
        ([LayerSpec("r", "r.tif", "raster", "gdal", "<qgis")], EXTENT, "not valid XML"),
        ([LayerSpec("r", "r.tif", "raster", "gdal", risk_raster_qml(), opacity=2)], EXTENT, "opacity 2"),
    ],
)
def test_project_rejects_bad_input(tmp_path, layers, extent, message):
    with pytest.raises(QgisProjectError, match=message):
        write_qgis_project(tmp_path / "p.qgs", _specs() if layers is None else layers, CRS, extent, "t")
    assert not (tmp_path / "p.qgs").exists()


# --------------------------------------------------------------------------- real QGIS


def make_prediction_folder(folder: Path) -> None:
    """A small synthetic prediction folder: risk, drivers, cells, imagery (EPSG:4326), styles, project."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    prob = np.tile(np.arange(COLS, dtype="float32") / (COLS - 1), (ROWS, 1))
    risk = np.stack([prob, prob * 3.0, np.full_like(prob, 0.05)])
    risk[:, :4, :4] = np.nan  # no imagery there: nodata
    write_cog(folder / "risk.tif", risk, from_origin(X0, Y0, CELL, CELL), CRS, float("nan"),
              ["riot_probability", "expected_events", "uncertainty"])
    write_style(folder / "risk.tif", risk_raster_qml(1))

    drivers = rng.normal(0.0, 0.1, (2, ROWS * 14, COLS * 14)).astype("float32")
    write_cog(folder / "drivers.tif", drivers, from_origin(X0, Y0, CELL / 14, CELL / 14), CRS, float("nan"),
              ["driver_imagery", "driver_metadata"])
    write_style(folder / "drivers.tif", driver_raster_qml(1, 0.3))

    # Imagery in geographic coordinates: green vegetation, 0 = nodata along the first row.
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    west, south, east, north = to_ll.transform_bounds(*EXTENT)
    img = np.stack([np.full((300, 400), v, "uint16") for v in (500, 1500, 500)])
    img = img + rng.integers(0, 100, img.shape).astype("uint16")
    img[:, 0, :] = 0
    write_cog(folder / "imagery.tif", img, from_bounds(west, south, east, north, 400, 300), "EPSG:4326", 0,
              ["red", "green", "blue"])
    write_style(folder / "imagery.tif", raster_rgb_qml(1, 2, 3, IMAGERY_STATS))

    rows, cols = np.mgrid[6:ROWS, 0:COLS]
    rows, cols = rows.ravel(), cols.ravel()
    p = prob[rows, cols].astype("float64")
    cells = gpd.GeoDataFrame(
        {"crop_id": [f"32737_672_{c}_{r}" for r, c in zip(rows, cols, strict=True)],
         "riot_probability": p, "risk_class": risk_class(p)},
        geometry=[box(X0 + c * CELL, Y0 - (r + 1) * CELL, X0 + (c + 1) * CELL, Y0 - r * CELL)
                  for r, c in zip(rows, cols, strict=True)],
        crs=CRS,
    )
    cells.to_file(folder / "cells.gpkg", layer="cells", driver="GPKG")
    cells.to_file(folder / "cells.geojson", driver="GeoJSON")
    write_style(folder / "cells.gpkg", risk_vector_qml())

    write_qgis_project(folder / "riotvit.qgs", _specs(), CRS, EXTENT, "riotvit test region")
    broken = [LayerSpec("risk", "missing.tif", "raster", "gdal", risk_raster_qml())]
    write_qgis_project(folder / "broken.qgs", broken, CRS, EXTENT, "broken")


def _centre(row: float, col: float) -> tuple[float, float]:
    return X0 + (col + 0.5) * CELL, Y0 - (row + 0.5) * CELL


PROBES = {
    "risk_nodata_over_imagery": _centre(1, 1),
    "risk_very_high_raster_only": _centre(2, 14),
    "cell_very_low": _centre(9, 0),
    "cell_very_high": _centre(9, 15),
    "outside_the_data": (X0 - 100.0, Y0 - 3 * CELL),
}


@pytest.fixture(scope="module")
def qgis_report(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("prediction")
    make_prediction_folder(base / "staging")
    folder = (base / "staging").rename(base / "moved")  # the project must survive a move
    paths = [folder / n for n in ("risk.tif", "drivers.tif", "imagery.tif", "cells.gpkg", "cells.geojson",
                                  "broken.qgs", "riotvit.qgs")]
    report = run_qgis_check(paths, render=folder / "render.png", probes=list(PROBES.values()))
    report["folder"] = folder
    return report


def _files(report: dict) -> dict[str, dict]:
    return {Path(f["source"].split("|")[0]).name: f for f in report["files"]}


def _close(got, expected, tol):
    return np.allclose(got, expected, atol=tol)


@pytest.mark.qgis
@requires_qgis
def test_every_layer_opens_valid_in_its_crs_and_extent(qgis_report):
    files = _files(qgis_report)
    assert set(files) == {"risk.tif", "drivers.tif", "imagery.tif", "cells.gpkg", "cells.geojson"}
    assert all(f["valid"] for f in files.values())
    for name in ("risk.tif", "drivers.tif", "cells.gpkg", "cells.geojson"):
        assert files[name]["crs"] == CRS
    assert _close(files["risk.tif"]["extent"], EXTENT, 1e-6)
    assert _close(files["drivers.tif"]["extent"], EXTENT, CELL / 14)
    cells_extent = (X0, Y0 - ROWS * CELL, X0 + COLS * CELL, Y0 - 6 * CELL)
    assert _close(files["cells.gpkg"]["extent"], cells_extent, 1e-6)
    assert files["imagery.tif"]["crs"] == "EPSG:4326"
    west, south, east, north = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform_bounds(*EXTENT)
    assert _close(files["imagery.tif"]["extent"], (west, south, east, north), (east - west) / 400)
    assert files["risk.tif"]["band_count"] == 3 and files["risk.tif"]["size"] == [COLS, ROWS]
    assert files["risk.tif"]["band_names"][0] == "Band 1: riot_probability"
    assert np.isnan(files["risk.tif"]["nodata"]).all() and files["imagery.tif"]["nodata"] == [0, 0, 0]
    assert files["cells.gpkg"]["feature_count"] == files["cells.geojson"]["feature_count"] == 6 * COLS
    assert {"riot_probability", "risk_class", "crop_id"} <= set(files["cells.gpkg"]["fields"])


@pytest.mark.qgis
@requires_qgis
def test_styles_are_applied_automatically(qgis_report):
    files = _files(qgis_report)
    assert all(f["style_applied"] for f in files.values())
    assert files["risk.tif"]["renderer"] == "singlebandpseudocolor"
    assert files["risk.tif"]["ramp"] == {"type": "DISCRETE", "min": 0.0, "max": 1.0, "band": 1}
    assert files["risk.tif"]["legend"] == RISK_LABELS
    assert files["risk.tif"]["legend_colors"] == [c.color for c in RISK_CLASSES]
    assert files["drivers.tif"]["renderer"] == "singlebandpseudocolor"
    assert files["drivers.tif"]["ramp"]["type"] == "INTERPOLATED"
    assert (files["drivers.tif"]["ramp"]["min"], files["drivers.tif"]["ramp"]["max"]) == (-0.3, 0.3)
    assert files["imagery.tif"]["renderer"] == "multibandcolor"
    assert files["imagery.tif"]["stretch"] == [[400.0, 1800.0, 1]] * 3  # 1 = StretchToMinimumMaximum
    for name in ("cells.gpkg", "cells.geojson"):
        assert files[name]["renderer"] == "graduatedSymbol"
        assert files[name]["class_attribute"] == "riot_probability"
        assert files[name]["legend"] == RISK_LABELS
        assert files[name]["fill_alpha"] == [153] * 5


@pytest.mark.qgis
@requires_qgis
def test_project_opens_every_layer_styled_in_order(qgis_report):
    broken, project = qgis_report["projects"]
    assert [lyr["valid"] for lyr in broken["layers"]] == [False]  # the harness does catch bad layers
    assert project["read_ok"] and project["title"] == "riotvit test region"
    assert project["crs"] == CRS and project["absolute_paths"] is False
    assert project["layer_order"] == ["cells", "risk", "drivers", "imagery"]
    layers = {lyr["name"]: lyr for lyr in project["layers"]}
    assert all(lyr["valid"] for lyr in layers.values())
    assert str(qgis_report["folder"]) in layers["risk"]["source"]  # resolved relative to the moved folder
    assert {n: lyr["renderer"] for n, lyr in layers.items()} == {
        "cells": "graduatedSymbol", "risk": "singlebandpseudocolor",
        "drivers": "singlebandpseudocolor", "imagery": "multibandcolor",
    }
    assert {n: lyr["crs"] for n, lyr in layers.items()} == {
        "cells": CRS, "risk": CRS, "drivers": CRS, "imagery": "EPSG:4326",
    }
    assert {n: lyr["visible"] for n, lyr in layers.items()} == {
        "cells": True, "risk": True, "drivers": False, "imagery": True,
    }
    assert layers["risk"]["opacity"] == pytest.approx(0.8)
    assert layers["risk"]["legend"] == RISK_LABELS and layers["cells"]["legend"] == RISK_LABELS
    xmin, ymin, xmax, ymax = project["canvas_extent"]
    assert xmin < EXTENT[0] and ymin < EXTENT[1] and xmax > EXTENT[2] and ymax > EXTENT[3]
    assert xmax - xmin < 1.1 * (EXTENT[2] - EXTENT[0]) or ymax - ymin < 1.1 * (EXTENT[3] - EXTENT[1])
    assert np.allclose([(xmin + xmax) / 2, (ymin + ymax) / 2],
                       [(EXTENT[0] + EXTENT[2]) / 2, (EXTENT[1] + EXTENT[3]) / 2], atol=1.0)


@pytest.mark.qgis
@requires_qgis
def test_rendered_map_shows_risk_over_imagery(qgis_report):
    render = qgis_report["render"]
    assert render["errors"] == [] and render["layers"] == ["cells", "risk", "imagery"]
    assert Path(render["png"]).stat().st_size > 1000
    assert render["non_background_fraction"] > 0.85
    rgb = {name: probe["rgb"] for name, probe in zip(PROBES, render["probes"], strict=True)}
    r, g, b = rgb["risk_nodata_over_imagery"]  # transparent nodata: the green imagery shows through
    assert g > r + 60 and g > b + 60
    r, g, b = rgb["risk_very_high_raster_only"]  # dark red at 80 % over green
    assert r > 120 and r > g + 60 and r > b + 60
    r, g, b = rgb["cell_very_low"]  # light yellow
    assert r > 200 and g > 200 and b < r - 40
    r, g, b = rgb["cell_very_high"]
    assert r > 140 and r > g + 80 and r > b + 80
    assert rgb["outside_the_data"] == [255, 255, 255]
