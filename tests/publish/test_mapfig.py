"""map.png / map.pdf: the hand-out map drawn with matplotlib, without QGIS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _pred_fixture import CELL, ROWS, WINDOW, X0, Y1, write_prediction
from PIL import Image

from riotvit.errors import InputError
from riotvit.publish.mapfig import map_figure, risk_classes, write_map_figure
from riotvit.publish.maptexts import DISCLAIMER, MapTexts
from riotvit.publish.styles import (
    RISK_CLASSES,
    raster_pseudocolor_qml,
    risk_raster_qml,
    write_style,
)

TEXTS = MapTexts("Riot risk: Testville", WINDOW["label"], "Events: ACLED, acleddata.com; imagery: s2-test",
                 "Skill: AUPR 0.41")


@pytest.fixture(scope="module")
def pred(tmp_path_factory) -> Path:
    out = write_prediction(tmp_path_factory.mktemp("mapfig") / "pred")
    write_style(out / "risk.tif", risk_raster_qml(1))
    return out


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts]


def test_writes_an_a4_png_and_a_pdf_that_show_the_map(pred):
    paths = write_map_figure(pred, TEXTS)
    assert [p.name for p in paths] == ["map.png", "map.pdf"]
    assert pred.joinpath("map.pdf").read_bytes()[:5] == b"%PDF-"
    img = np.asarray(Image.open(pred / "map.png").convert("RGB"))
    assert img.shape[:2] == (1240, 1753)  # A4 landscape (297 x 210 mm) at 150 dpi
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 100
    # the hot spot (cell row 4, col 10: p = 0.73, class "high") drawn at 0.7 opacity over red roofs
    # is red; the west edge (p = 0.05, "very low") over green fields is not
    fig = map_figure(pred, TEXTS)
    scale = 150 / fig.dpi

    def pixel(x, y):
        px, py = fig.axes[0].transData.transform((x, y)) * scale
        return img[int(round(img.shape[0] - py)), int(round(px))].astype(int)

    hot = pixel(X0 + 10.5 * CELL, Y1 - 4.5 * CELL)
    assert hot[0] > 200 and hot[1] < 90 and hot[2] < 90, hot
    cold = pixel(X0 + 0.3 * CELL, Y1 - 8.3 * CELL)
    assert cold[1] > 150 and cold[1] > cold[0], cold
    assert not list(pred.glob(".map.*tmp*"))


def test_figure_carries_the_texts_and_the_class_edges(pred):
    fig = map_figure(pred, TEXTS, admin=None)
    texts = _texts(fig)
    assert texts[:2] == ["Riot risk: Testville", WINDOW["label"]]
    assert TEXTS.data_line in texts and "Skill: AUPR 0.41" in texts and DISCLAIMER in texts
    legend = fig.axes[1].get_legend()
    assert legend.get_title().get_text().startswith(WINDOW["label"])
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [c.label for c in RISK_CLASSES] + ["partial cell (image edge)"]


def test_classes_follow_risk_qml(tmp_path):
    pred = write_prediction(tmp_path / "p")
    classes = [(0.12, "#ffffb2", "0.05–0.12"), (0.2, "#fd8d3c", "0.12–0.20"), (1.0, "#bd0026", "0.20–0.95")]
    write_style(pred / "risk.tif", raster_pseudocolor_qml(1, 0.05, 0.95, classes=classes))
    rc = risk_classes(pred / "risk.tif")
    assert rc.labels == ("0.05–0.12", "0.12–0.20", "0.20–0.95") and not rc.continuous
    fig = map_figure(pred, TEXTS)
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()][:3] == list(rc.labels)


def test_admin_outlines_and_missing_imagery(tmp_path):
    import geopandas as gpd
    import shapely

    pred = write_prediction(tmp_path / "p")
    (pred / "imagery.tif").unlink()
    (pred / "cells.gpkg").unlink()
    admin = gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.box(500_000, 8_992_000, 505_000, 9_000_000)],
                             crs="EPSG:32737").to_crs(4326)
    paths = write_map_figure(pred, TEXTS, admin=admin, pdf=False)
    assert [p.name for p in paths] == ["map.png"]
    fig = map_figure(pred, TEXTS, admin=admin)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "admin unit boundary" in labels and "partial cell (image edge)" not in labels


def test_missing_risk_raster_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="no risk raster; run `riotvit predict`"):
        write_map_figure(tmp_path, TEXTS)


def test_renders_without_qgis(pred, tmp_path):
    code = ("import sys; from riotvit.publish.mapfig import write_map_figure; "
            f"write_map_figure({str(pred)!r}); assert not any(m.startswith('qgis') for m in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_edge_flag_marks_the_partial_cells(tmp_path):
    import geopandas as gpd

    pred = write_prediction(tmp_path / "p")
    cells = gpd.read_file(pred / "cells.gpkg", layer="cells")
    cells["edge"] = cells["valid_fraction"] < 0.99
    cells.to_file(pred / "cells.gpkg", layer="cells", driver="GPKG")
    fig = map_figure(pred, TEXTS)
    hatched = [c for c in fig.axes[0].collections if c.get_hatch() == "////"]
    assert len(hatched) == 1 and len(hatched[0].get_paths()) == ROWS  # the right-hand column


@pytest.mark.parametrize("crs", ["EPSG:32637", "EPSG:4326"])
def test_backdrop_averages_the_imagery_like_a_full_resolution_warp(tmp_path, crs):
    """map.png's imagery: read once in strips and block-averaged, then warped; against GDAL's
    average warp of the whole raster: the same coverage and nodata hole, values within the
    difference of two averaging footprints on a smooth image."""
    import rasterio
    from affine import Affine
    from raster_fixtures import write_raster
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds
    from rasterio.warp import reproject, transform_bounds

    from riotvit.publish.mapfig import _backdrop, _block_mean

    yy, xx = np.mgrid[0:1200, 0:900]
    data = np.stack([1000 + xx, 1000 + yy, 3000 - xx - yy]).astype(np.uint16)
    data[:, 500:600, 300:420] = 0  # a nodata hole
    path = write_raster(tmp_path / "img.tif", data, Affine(3, 0, 500_000, 0, -3, 9_700_000), nodata=0)
    left, right, bottom, top = 500_000 - 300, 500_000 + 2400, 9_700_000 - 3900, 9_700_000 + 150  # sticks out on 2 sides
    if crs != "EPSG:32637":
        left, bottom, right, top = transform_bounds("EPSG:32637", crs, left, bottom, right, top)
    shape = (400, 270)
    with rasterio.open(path) as ds:
        got = _backdrop(ds, [1, 2, 3], crs, (left, right, bottom, top), shape)
        ref = np.full((3, *shape), np.nan)
        reproject(rasterio.band(ds, [1, 2, 3]), ref, dst_transform=from_bounds(left, bottom, right, top, shape[1], shape[0]),
                  dst_crs=crs, dst_nodata=np.nan, resampling=Resampling.average)
    a, b = np.isfinite(got).all(0), np.isfinite(ref).all(0)
    assert a.shape == shape and 0.5 < a.mean() < 0.95  # outside the raster and the hole: no imagery
    assert (a != b).mean() < 0.02  # the same coverage, up to the edges of the footprints
    both = a & b
    assert np.abs(got - ref)[:, both].max() < 12  # a 3-pixel block differs by at most a few DN on these ramps
    assert np.median(np.abs(got - ref)[:, both]) < 2

    m = np.ma.masked_array(np.arange(2 * 7 * 9, dtype=np.uint16).reshape(2, 7, 9), mask=np.zeros((2, 7, 9), bool))
    m.mask[:, 0, 0] = True
    blocks = _block_mean(m, 3)
    assert blocks.shape == (2, 3, 3)
    assert blocks[0, 0, 0] == pytest.approx(np.mean([1, 2, 9, 10, 11, 18, 19, 20]))  # the masked pixel left out
    assert blocks[1, 2, 2] == pytest.approx(m[1, 6:, 6:].mean())  # a partial last block averages what it has
    full = np.ma.masked_array(np.arange(2 * 6 * 9, dtype=np.uint16).reshape(2, 6, 9), mask=False)
    np.testing.assert_allclose(_block_mean(full, 3), full.data.reshape(2, 2, 3, 3, 3).mean((2, 4)))  # all valid


def test_backdrop_reads_a_cogs_overviews_instead_of_every_pixel(tmp_path):
    """A 1-pixel checkerboard averages to 500 at full resolution; its nearest-neighbour overviews
    hold one colour only, so a backdrop that took them shows 0 or 1000, not 500."""
    import rasterio
    from affine import Affine
    from raster_fixtures import write_raster
    from rasterio.enums import Resampling

    from riotvit.publish.mapfig import _backdrop

    yy, xx = np.mgrid[0:1024, 0:1024]
    data = np.stack([((xx + yy) % 2) * 1000] * 3).astype(np.uint16)
    plain = write_raster(tmp_path / "plain.tif", data, Affine(3, 0, 500_000, 0, -3, 9_700_000))
    cog = write_raster(tmp_path / "cog.tif", data, Affine(3, 0, 500_000, 0, -3, 9_700_000))
    with rasterio.open(cog, "r+") as ds:
        ds.build_overviews([2, 4, 8], Resampling.nearest)
    bounds = (500_000, 500_000 + 3072, 9_700_000 - 3072, 9_700_000)
    with rasterio.open(plain) as ds:
        full = _backdrop(ds, [1, 2, 3], "EPSG:32637", bounds, (256, 256))
    with rasterio.open(cog) as ds:
        assert ds.overviews(1) == [2, 4, 8]
        over = _backdrop(ds, [1, 2, 3], "EPSG:32637", bounds, (256, 256))
    assert np.isfinite(full).all() and np.isfinite(over).all()
    assert np.abs(full - 500).max() < 1  # every pixel averaged
    assert min(np.abs(over - 0).max(), np.abs(over - 1000).max()) < 1  # one colour: read from an overview
