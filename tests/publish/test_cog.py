"""COG writing: valid layout, exact values, streamed = one-shot, averaging, atomicity, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from riotvit.errors import RasterError
from riotvit.publish.cog import COG_PROFILE, StreamingGeoTIFFWriter, validate_cog, write_cog

CRS = "EPSG:32737"
TRANSFORM = from_origin(500_000.0, 9_000_000.0, 48.0, 48.0)
NODATA = -9999.0
NAMES = ["riot_probability", "expected_events", "uncertainty"]
BANDS, H, W = 3, 1500, 2000


@pytest.fixture(scope="module")
def array() -> np.ndarray:
    """Smooth fields plus noise, with a nodata rectangle in the top-left corner."""
    rng = np.random.default_rng(42)
    yy, xx = np.mgrid[0:H, 0:W].astype("float32")
    base = np.stack([xx / W, yy / H, (xx + yy) / (W + H)])
    a = (base + rng.normal(0, 0.01, base.shape)).astype("float32")
    a[:, :300, :400] = NODATA
    return a


@pytest.fixture(scope="module")
def one_shot(tmp_path_factory, array) -> rasterio.Path:
    path = tmp_path_factory.mktemp("cog") / "risk.tif"
    return write_cog(path, array, TRANSFORM, CRS, NODATA, NAMES, tags={"riotvit_version": "0.1.0"})


def _blocks(step_x: int, step_y: int):
    for row in range(0, H, step_y):
        for col in range(0, W, step_x):
            yield Window(col, row, min(step_x, W - col), min(step_y, H - row))


def test_write_cog_is_a_valid_cog_with_metadata(one_shot, array):
    assert validate_cog(one_shot) == []
    with rasterio.open(one_shot) as src:
        assert (src.count, src.height, src.width) == (BANDS, H, W)
        assert src.descriptions == tuple(NAMES)
        assert src.nodatavals == (NODATA,) * BANDS
        assert src.crs.to_epsg() == 32737
        assert src.transform == TRANSFORM
        assert src.block_shapes[0] == (512, 512)
        assert src.compression.value == COG_PROFILE["COMPRESS"]
        assert src.tags()["riotvit_version"] == "0.1.0"
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        # overviews down to a single block: 1000x750, 500x375
        assert src.overviews(1) == [2, 4]
        np.testing.assert_array_equal(src.read(), array)


def test_overviews_average_valid_pixels_and_keep_nodata(one_shot, array):
    with rasterio.open(one_shot, overview_level=0) as ovr:
        assert (ovr.width, ovr.height) == (W // 2, H // 2)
        level = ovr.read(1)
    expected = array[0].reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(level[200:, 300:], expected[200:, 300:], rtol=1e-6)
    assert (level[:150, :200] == NODATA).all()


def test_streamed_blocks_equal_one_shot_values(tmp_path, one_shot, array):
    out = tmp_path / "streamed.tif"
    with StreamingGeoTIFFWriter(out, W, H, BANDS, "float32", TRANSFORM, CRS, NODATA, NAMES,
                                tags={"riotvit_version": "0.1.0"}) as writer:
        for win in _blocks(700, 333):  # blocks deliberately not aligned to the 512 tiles
            r, c = win.row_off, win.col_off
            writer.write(win, array[:, r:r + win.height, c:c + win.width])
    assert validate_cog(out) == []
    with rasterio.open(out) as a, rasterio.open(one_shot) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.descriptions == b.descriptions and a.tags() == b.tags()
        assert a.overviews(1) == b.overviews(1) and a.transform == b.transform
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.tif"]


def test_unwritten_blocks_read_back_as_nodata(tmp_path):
    out = tmp_path / "sparse.tif"
    with StreamingGeoTIFFWriter(out, 1200, 900, 1, "float32", TRANSFORM, CRS, np.nan, ["p"]) as w:
        w.write(Window(600, 450, 100, 50), np.full((1, 50, 100), 0.5, "float32"))
    with rasterio.open(out) as src:
        data = src.read(1)
        assert np.isnan(src.nodata)
    assert np.count_nonzero(data == 0.5) == 5000
    assert np.isnan(data).sum() == 1200 * 900 - 5000


def test_accumulate_averages_overlaps_with_weights(tmp_path):
    out = tmp_path / "avg.tif"
    a = np.full((2, 100, 100), 1.0, "float32")
    b = np.full((2, 100, 100), 4.0, "float32")
    b[1, :10, :] = NODATA  # nodata adds nothing: band 2 keeps a's value there
    with StreamingGeoTIFFWriter(out, 300, 200, 2, "float32", TRANSFORM, CRS, NODATA, ["a", "b"]) as w:
        w.accumulate(Window(0, 0, 100, 100), a, weight=1.0)
        w.accumulate(Window(50, 0, 100, 100), b, weight=2.0)
        w.write(Window(250, 150, 50, 50), np.full((2, 50, 50), 7.0, "float32"))
    with rasterio.open(out) as src:
        d = src.read()
    np.testing.assert_array_equal(d[:, :, :50][:, :100], 1.0)  # only a
    np.testing.assert_allclose(d[0, :100, 50:100], (1 * 1 + 4 * 2) / 3)  # overlap: weighted mean
    np.testing.assert_allclose(d[1, :10, 50:100], 1.0)
    np.testing.assert_allclose(d[1, 10:100, 50:100], 3.0)
    np.testing.assert_array_equal(d[0, :100, 100:150], 4.0)  # only b
    np.testing.assert_array_equal(d[1, 10:100, 100:150], 4.0)
    assert (d[1, :10, 100:150] == NODATA).all()  # only b there, and b is nodata
    np.testing.assert_array_equal(d[:, 150:, 250:], 7.0)  # plain writes kept
    assert (d[:, 100:150, :] == NODATA).all()  # untouched stays nodata


def test_accumulate_with_per_pixel_weights_rounds_integers(tmp_path):
    out = tmp_path / "int.tif"
    taper = np.array([[1.0, 3.0]])
    with StreamingGeoTIFFWriter(out, 2, 1, 1, "uint8", TRANSFORM, CRS, 0, ["n"]) as w:
        w.accumulate(Window(0, 0, 2, 1), np.array([[[10, 10]]], "uint8"), weight=taper)
        w.accumulate(Window(0, 0, 2, 1), np.array([[[20, 20]]], "uint8"), weight=1.0)
    with rasterio.open(out) as src:
        assert src.read(1).tolist() == [[15, 12]]  # (10+20)/2 and (30+20)/4 = 12.5 -> 12 (even)


def test_exception_inside_with_leaves_nothing(tmp_path):
    out = tmp_path / "risk.tif"
    with pytest.raises(ValueError, match="boom"), StreamingGeoTIFFWriter(
        out, 600, 600, 1, "float32", TRANSFORM, CRS, NODATA, ["p"]
    ) as w:
        w.accumulate(Window(0, 0, 600, 600), np.ones((1, 600, 600), "float32"))
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_cog_leaves_previous_file_untouched(tmp_path, array):
    out = tmp_path / "risk.tif"
    write_cog(out, array[:1, :100, :100], TRANSFORM, CRS, NODATA, ["p"])
    before = out.read_bytes()
    with pytest.raises(RasterError, match="resampling 'bilinaer' is unknown"):
        write_cog(out, array[:1, :100, :100] * 2, TRANSFORM, CRS, NODATA, ["p"], resampling="bilinaer")
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["risk.tif"]


def test_same_data_gives_byte_identical_files(tmp_path, array):
    small = array[:, :700, :900]
    paths = []
    for name in ("a.tif", "b.tif"):
        paths.append(write_cog(tmp_path / name, small, TRANSFORM, CRS, NODATA, NAMES, tags={"k": "v"}))
        with StreamingGeoTIFFWriter(tmp_path / f"s{name}", 900, 700, 3, "float32", TRANSFORM, CRS,
                                    NODATA, NAMES, tags={"k": "v"}) as w:
            for win in (Window(0, 0, 900, 300), Window(0, 300, 900, 400)):
                w.write(win, small[:, win.row_off:win.row_off + win.height, :])
        paths.append(tmp_path / f"s{name}")
    a, sa, b, sb = (p.read_bytes() for p in paths)
    assert a == b
    assert sa == sb
    assert b"DATETIME" not in a


def test_validate_cog_reports_plain_geotiffs(tmp_path, array):
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=W, height=H, count=1, dtype="float32",
                       transform=TRANSFORM) as dst:
        dst.write(array[:1])
    problems = "\n".join(validate_cog(plain))
    for expected in ("not tiled", "LAYOUT is not COG", "no overviews", "no CRS", "nodata is not set"):
        assert expected in problems
    assert validate_cog(tmp_path / "missing.tif")[0].endswith(")") and "cannot be opened" in validate_cog(
        tmp_path / "missing.tif"
    )[0]


def test_validate_cog_reports_overviews_appended_after_the_data(tmp_path, array):
    """A tiled GTiff with overviews added afterwards has its overview IFDs at the end."""
    path = tmp_path / "tiled.tif"
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype="float32",
                       crs=CRS, transform=TRANSFORM, nodata=NODATA, tiled=True, blockxsize=512,
                       blockysize=512) as dst:
        dst.write(array[:1])
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4])
    problems = validate_cog(path)
    assert any("LAYOUT is not COG" in p for p in problems)
    assert any("IFD lies after tile data" in p for p in problems)
    assert not any("not tiled" in p or "no overviews" in p for p in problems)


def test_small_single_block_cog_needs_no_overviews(tmp_path):
    out = write_cog(tmp_path / "tiny.tif", np.zeros((1, 40, 30), "uint8"), TRANSFORM, CRS, 255, ["c"],
                    resampling="nearest")
    assert validate_cog(out) == []
    with rasterio.open(out) as src:
        assert src.overviews(1) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"band_descriptions": ["only one"]}, "3 bands but 1 band descriptions"),
        ({"crs": None}, "no CRS given"),
        ({"crs": "EPSG:0"}, "is not understood"),
    ],
)
def test_write_cog_rejects_bad_metadata(tmp_path, array, kwargs, message):
    args = {"band_descriptions": NAMES, "crs": CRS} | kwargs
    with pytest.raises(RasterError, match=message):
        write_cog(tmp_path / "x.tif", array[:, :10, :10], TRANSFORM, args["crs"], NODATA, args["band_descriptions"])
    assert list(tmp_path.iterdir()) == []


def test_streaming_rejects_bad_blocks(tmp_path):
    w = StreamingGeoTIFFWriter(tmp_path / "x.tif", 100, 100, 2, "float32", TRANSFORM, CRS, NODATA, ["a", "b"])
    with pytest.raises(RasterError, match=r"has shape \(1, 10, 10\), expected \(2, 10, 10\)"):
        w.write(Window(0, 0, 10, 10), np.zeros((1, 10, 10), "float32"))
    with pytest.raises(RasterError, match="outside the 100x100 raster"):
        w.write(Window(95, 0, 10, 10), np.zeros((2, 10, 10), "float32"))
    w.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RasterError, match="writer is closed"):
        w.write(Window(0, 0, 10, 10), np.zeros((2, 10, 10), "float32"))
