"""The print layout in riotvit.qgs: the XML we write, then the layout exported by headless QGIS."""

from __future__ import annotations

import json
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from _pred_fixture import EXTENT, WINDOW, write_prediction
from PIL import Image
from qgis_support import QGIS_PYTHON, _qgis_env, requires_qgis

from riotvit.publish.layout import LAYOUT_NAME, LayoutError, add_print_layout, legend_label
from riotvit.publish.maptexts import DISCLAIMER, MapTexts, map_texts, skill_line

CHECK = Path(__file__).with_name("_qgis_layout_check.py")
SKILL = "Skill (test, held-out blocks, origin 2022-06-15): AUPR 0.41, Brier skill vs persistence +0.12."


@pytest.fixture
def project(tmp_path) -> Path:
    pred = write_prediction(tmp_path / "pred")
    add_print_layout(pred / "riotvit.qgs", map_texts(pred, skill=SKILL))
    return pred / "riotvit.qgs"


def _items(qgs: Path) -> dict[str, ET.Element]:
    lay = ET.parse(qgs).getroot().find("Layouts/Layout")
    return {it.get("id"): it for it in lay.findall("LayoutItem")}


def test_texts_come_from_run_json(tmp_path):
    t = map_texts(write_prediction(tmp_path / "p"), skill=SKILL)
    assert t.title == "Riot risk: Testville"
    assert t.window == "P(≥ 1 riot), 2022-06-15 → 2024-06-14"
    assert t.data_line == "Events: ACLED, acleddata.com; imagery: s2-test (2022-06-15)"
    assert t.disclaimer == DISCLAIMER and t.skill_line == SKILL


def test_window_is_derived_from_the_bundle_when_run_json_has_none(tmp_path):
    pred = write_prediction(tmp_path / "p", window=False)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps({"targets": {"lead_days": 30, "horizon_days": 365,
                                                                 "riot_event_types": ["Riots"]}}))
    run = json.loads((pred / "run.json").read_text())
    run["model"]["path"] = "../bundle"
    (pred / "run.json").write_text(json.dumps(run))
    # 2022-06-15 + 30 days = 2022-07-15; + 364 days = 2023-07-14 (the last day inside the window)
    assert map_texts(pred).window == "P(≥ 1 riot), 2022-07-15 → 2023-07-14"


def test_layout_has_every_item_with_the_window_and_the_visible_layers(project):
    items = _items(project)
    assert set(items) == {"map", "legend", "scalebar", "north arrow", "title", "window", "data line", "skill",
                          "disclaimer"}
    assert items["window"].get("labelText") == WINDOW["label"]
    assert items["data line"].get("labelText").startswith("Events: ACLED, acleddata.com")
    assert items["disclaimer"].get("labelText") == DISCLAIMER
    legend = items["legend"]
    assert legend.get("title") == WINDOW["label"]
    names = [n.get("name") for n in legend.iter("layer-tree-layer")]
    assert names == [f"risk: {WINDOW['label']}", "imagery s2-test (2022-06-15)"]  # the hidden cells layer is left out
    # the rows drop the window the title states; imagery shows no band swatches, risk no band-name row
    props = {n.get("name"): {o.get("name"): o.get("value") for o in n.iter("Option") if o.get("name")}
             for n in legend.iter("layer-tree-layer")}
    assert props[f"risk: {WINDOW['label']}"] == {"legend/title-label": "risk", "legend/node-order": "1,2,3,4,5"}
    assert props["imagery s2-test (2022-06-15)"] == {"legend/node-order": "empty"}
    # the map covers the project's view, grown to the map box's aspect (190 x 155 mm)
    ext = items["map"].find("Extent").attrib
    w, h = float(ext["xmax"]) - float(ext["xmin"]), float(ext["ymax"]) - float(ext["ymin"])
    assert w / h == pytest.approx(190 / 155)
    assert float(ext["xmin"]) < EXTENT[0] and float(ext["xmax"]) > EXTENT[2]
    assert float(ext["ymin"]) < EXTENT[1] and float(ext["ymax"]) > EXTENT[3]
    uuid = items["map"].get("uuid")
    assert legend.get("map_uuid") == uuid and items["scalebar"].get("mapUuid") == uuid


def test_adding_again_replaces_the_layout_and_writes_the_same_bytes(project, tmp_path):
    first = project.read_bytes()
    add_print_layout(project, map_texts(project.parent, skill=SKILL))
    assert project.read_bytes() == first
    assert len(ET.parse(project).getroot().findall("Layouts/Layout")) == 1
    assert not list(project.parent.glob(".riotvit.qgs.tmp*"))


def test_bad_inputs_are_one_line_errors(project, tmp_path):
    texts = MapTexts("t", "w", "d")
    with pytest.raises(LayoutError, match="not a readable QGIS project"):
        add_print_layout(tmp_path / "missing.qgs", texts)
    with pytest.raises(LayoutError, match=r"legend layers \['nope'\] are not in the project"):
        add_print_layout(project, texts, legend_layers=["nope"])


def _overlap(a, b) -> bool:
    return a[0] < b[2] - 0.01 and b[0] < a[2] - 0.01 and a[1] < b[3] - 0.01 and b[1] < a[3] - 0.01


@pytest.mark.qgis
@requires_qgis
def test_layout_exports_to_png_in_qgis(project, tmp_path):
    png, report = tmp_path / "layout.png", tmp_path / "layout.json"
    with tempfile.TemporaryDirectory(prefix="riotvit-qgis-") as home:
        done = subprocess.run([QGIS_PYTHON, str(CHECK), str(project), LAYOUT_NAME, str(png), str(report)],
                              env=_qgis_env(Path(home)), capture_output=True, text=True, timeout=180)
    assert report.exists(), done.stderr[-3000:]
    rep = json.loads(report.read_text())
    assert rep["read_ok"] and rep["found"] and rep["export_ok"], rep
    assert rep["page_mm"] == [297.0, 210.0]  # A4 landscape
    items = {it["id"]: it for it in rep["items"] if it["id"]}
    legend = items["legend"]
    assert legend["title"] == WINDOW["label"] and legend["linked_map"]
    assert legend["layers"] == [f"risk: {WINDOW['label']}", "imagery s2-test (2022-06-15)"]
    assert all(legend["layer_valid"])
    assert items["map"]["crs"] == "EPSG:32737"
    assert items["scalebar"]["unit_label"] == "km" and items["scalebar"]["linked_map"]
    assert items["title"]["text"] == "Riot risk: Testville" and items["skill"]["text"] == SKILL
    # the blocks of the page do not overlap (north arrow and scale bar sit inside the map on purpose)
    blocks = ["map", "legend", "title", "window", "data line", "skill", "disclaimer"]
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            assert not _overlap(items[a]["rect"], items[b]["rect"]), (a, b)
    for inner in ("north arrow", "scalebar"):
        r, m = items[inner]["rect"], items["map"]["rect"]
        assert m[0] <= r[0] and r[2] <= m[2] and m[1] <= r[1] and r[3] <= m[3], inner
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[1] == pytest.approx(297 / 25.4 * 100, abs=2)  # 100 dpi
    assert img.shape[0] == pytest.approx(210 / 25.4 * 100, abs=2)
    not_white = (img < 250).any(axis=2).mean()
    assert 0.2 < not_white < 0.9
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # the map, the legend swatches and text


def test_legend_rows_drop_the_window_and_wrap():
    w = WINDOW["label"]
    assert legend_label(f"admin units: expected riots, {w}", w) == "admin units: expected riots"
    assert legend_label(f"{w}: cells (hatched: partial)", w) == "cells (hatched: partial)"
    assert legend_label("imagery s2-test (2022-06-15)", w) == "imagery s2-test (2022-06-15)"
    long = legend_label("a very long layer name that would not fit into the legend column at all", w)
    assert long.split("\n") == ["a very long layer name that would not fit", "into the legend column at all"]


def test_skill_line_from_bundle_metrics():
    forecast = {"forecast": {"selected": "image + history", "origin": "2022-06-15"},
                "metrics": {"origin": "2022-06-15", "scores": {"held-out blocks": {
                    "riotvit": {"aupr": 0.412, "bss_persistence": 0.118, "n": 324, "positives": 34},
                    "persistence": {"aupr": 0.221}}}}}
    assert skill_line(forecast) == ("Skill at origin 2022-06-15 (held-out blocks): AUPR 0.41 (persistence 0.22); "
                                    "Brier skill vs persistence +0.12. See model_card.md.")
    thin = {"metrics": {"scores": {"held-out blocks": {"riotvit": {"aupr": 0.9, "n": 173, "positives": 8}}}}}
    assert "Too few riots to judge (8 riot cells)." in skill_line(thin)
    single = {"metrics": {"riotvit": {"riot": {"aupr": {"mean": 0.5}}},
                          "history_census": {"riot": {"aupr": {"mean": 0.31}}}}}
    assert skill_line(single) == ("Skill (spatial block cross-validation): AUPR 0.50 (history + census 0.31). "
                                  "See model_card.md.")
    assert skill_line({}) == ""
