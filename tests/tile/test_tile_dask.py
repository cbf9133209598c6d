"""Tiling on a two-process Dask cluster gives the single-process tile set, byte for byte."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from dask_fixtures import KillOneWorker, dask_client  # noqa: F401
from raster_fixtures import aligned_transform, random_image, write_raster

from riotvit.cluster import ClusterConfig
from riotvit.errors import RasterError
from riotvit.tile.plan import TileConfig
from riotvit.tile.tiler import tile as _tile

pytestmark = pytest.mark.slow

SMALL = dict(crop_m=96.0, crop_px=32)
FILES = ("chips.npy", "masks.npy", "tileset.json", "tiles.parquet")


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    """A 4-band uint16 raster of 20 x 14 crops on the lattice, with a nodata hole, and a float
    raster in EPSG:4326 (warped onto the grid, so band statistics are float sums)."""
    d = tmp_path_factory.mktemp("dask_tile")
    data = random_image((4, 14 * 32, 20 * 32), seed=5)
    data[:, 100:180, 200:330] = 0  # partly masked crops
    ints = write_raster(d / "ints.tif", data, aligned_transform(100, 50, stride_m=96.0), nodata=0,
                        descriptions=["blue", "green", "red", "nir"])
    fl = np.random.default_rng(2).random((3, 300, 400)).astype(np.float32)
    floats = write_raster(d / "floats.tif", fl, rasterio.Affine(2.7e-5, 0, 36.8, 0, -2.7e-5, -1.28), crs="EPSG:4326",
                          descriptions=["red", "green", "blue"])
    return ints, floats


def tile(src, out, cfg: dict, **kw):
    return _tile(src, out, TileConfig(**cfg), **kw)


def _same(a, b):
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.mark.parametrize("which,cfg", [("ints", dict(overlap=0.5, block_crops=4)),
                                       ("floats", dict(block_crops=3, write_geotiffs=True))])
def test_dask_tile_set_is_byte_identical(tmp_path, rasters, dask_client, which, cfg):  # noqa: F811
    src = rasters[0] if which == "ints" else rasters[1]
    c = dict(SMALL, **cfg)
    one = tile([src], tmp_path / "one", c)
    two = tile([src], tmp_path / "two", c, cluster=dask_client)
    assert two.n_crops == one.n_crops > 50 and two.n_masked == one.n_masked
    if which == "ints":
        assert one.n_masked > 0  # the hole makes partly masked crops, so masks.npy is exercised
    _same(one.path, two.path)
    assert not (tmp_path / "two.partial").exists()
    if cfg.get("write_geotiffs"):
        ga = sorted(p.name for p in (one.path / "geotiffs").iterdir())
        assert ga == sorted(p.name for p in (two.path / "geotiffs").iterdir()) and len(ga) == one.n_crops


def test_dask_run_with_a_killed_worker_is_identical(tmp_path, rasters, dask_client):  # noqa: F811
    c = dict(SMALL, overlap=0.5, block_crops=2)  # 70+ blocks: many in flight when a worker dies
    one = tile([rasters[0]], tmp_path / "one", c)
    rep = KillOneWorker(dask_client)
    two = tile([rasters[0]], tmp_path / "two", c, cluster=dask_client, reporter=rep)
    assert rep.killed
    _same(one.path, two.path)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_interrupted_dask_run_resumes_and_single_process_starts_over(tmp_path, rasters, dask_client):  # noqa: F811
    c = dict(SMALL, overlap=0.5, block_crops=4)
    one = tile([rasters[0]], tmp_path / "one", c)
    part = tile([rasters[0]], tmp_path / "two", c, cluster=dask_client, stop_after_blocks=5)
    work = tmp_path / "two.partial"
    assert not (tmp_path / "two").exists() and not (work / "tileset.json").exists() and part.n_crops == 0
    assert len(list((work / "parts").glob("block_*.parquet"))) == 5
    res = tile([rasters[0]], tmp_path / "two", c, cluster=dask_client)
    assert res.resumed_blocks == 5
    _same(one.path, res.path)
    # a Dask work folder is not resumed by one process (the journals differ): it starts over, same result
    tile([rasters[0]], tmp_path / "three", c, cluster=dask_client, stop_after_blocks=2)
    res3 = tile([rasters[0]], tmp_path / "three", c)
    assert res3.resumed_blocks == 0
    _same(one.path, res3.path)


def test_resumed_single_process_run_has_identical_float_statistics(tmp_path, rasters):
    """Resumption replays the statistics crop row by crop row, so float sums match to the last bit."""
    c = dict(SMALL, block_crops=3)
    one = tile([rasters[1]], tmp_path / "one", c)
    tile([rasters[1]], tmp_path / "two", c, stop_after_blocks=4)
    res = tile([rasters[1]], tmp_path / "two", c)
    assert res.resumed_blocks == 4
    _same(one.path, res.path)


def _corrupt_middle_tile(src, dst):
    """A tiled GeoTIFF whose first and last blocks decode but a middle block does not."""
    dst.write_bytes(src.read_bytes())
    with rasterio.open(dst) as ds:
        off = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(ds.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    b = bytearray(dst.read_bytes())
    b[off : off + size] = bytes(range(256)) * (size // 256) + bytes(size % 256)
    dst.write_bytes(bytes(b))
    return dst


def test_bad_raster_gives_the_single_process_error_and_leaves_nothing(tmp_path, dask_client):  # noqa: F811
    data = random_image((2, 1024, 1024), seed=1)
    good = write_raster(tmp_path / "good.tif", data, aligned_transform(10, 40, stride_m=96.0))
    bad = _corrupt_middle_tile(good, tmp_path / "bad.tif")
    c = dict(SMALL, block_crops=4)
    with pytest.raises(RasterError) as one:
        tile([bad], tmp_path / "one", c)
    with pytest.raises(RasterError) as two:
        tile([bad], tmp_path / "two", c, cluster=dask_client)
    assert str(two.value) == str(one.value)
    assert "bad.tif: read failed" in str(two.value) and "corrupt or truncated" in str(two.value)
    assert not (tmp_path / "two").exists() and not (tmp_path / "two.partial" / "tileset.json").exists()


def test_cluster_config_runs_a_local_cluster(tmp_path, rasters):
    c = dict(SMALL, block_crops=8)
    one = tile([rasters[0]], tmp_path / "one", c)
    two = tile([rasters[0]], tmp_path / "two", c, cluster=ClusterConfig(workers=2))
    _same(one.path, two.path)
    t = gpd.read_parquet(two.path / "tiles.parquet")
    assert len(t) == one.n_crops and t.crs.to_epsg() == 32637


def test_cli_tile_on_workers_and_scheduler_errors(tmp_path, rasters):
    from typer.testing import CliRunner

    from riotvit.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["tile", str(rasters[0]), "--out", str(tmp_path / "ts"), "--crop-m", "96", "--crop-px", "32",
                            "--workers", "2", "--json"])
    assert r.exit_code == 0, r.output
    import json

    s = json.loads(r.stdout)
    # 20 x 14 crops, less the 11 that the nodata hole leaves under half valid
    assert s["ran_on"] == "local Dask cluster, 2 worker processes" and s["crops"] == 20 * 14 - 11
    r = runner.invoke(app, ["tile", str(rasters[0]), "--out", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9"])
    assert r.exit_code != 0 and "Traceback" not in r.output
    line = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(line) == 1 and "--scheduler tcp://127.0.0.1:9: no Dask scheduler answers there" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
    r = runner.invoke(app, ["tile", str(rasters[0]), "--out", str(tmp_path / "x"), "--scheduler", "tcp://h:1",
                            "--workers", "2"])
    assert r.exit_code != 0 and "either workers" in r.output and "Traceback" not in r.output


def _decode_threads() -> tuple[int | None, str | None]:
    """In a task: the worker's threads, and the GDAL_NUM_THREADS a GridReader sets there."""
    from rasterio.env import getenv

    from riotvit.cluster import worker_threads
    from riotvit.grid import CropGrid
    from riotvit.tile.reader import GridReader

    with GridReader([], CropGrid(32737, 672.0, 672.0, 64), "uint16"):
        return worker_threads(), getenv().get("GDAL_NUM_THREADS")


def test_a_worker_decodes_with_its_own_threads_and_one_process_with_every_core(dask_client):  # noqa: F811
    """Workers sharing a machine must not each start a decoding thread per core."""
    assert dask_client.submit(_decode_threads, pure=False).result() == (1, "1")  # one thread per worker here
    assert _decode_threads() == (None, "ALL_CPUS")
