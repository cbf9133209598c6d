"""``riotvit predict`` on Dask: the region's blocks on two worker processes give the single-process maps,
exactly, even when a worker dies mid-run; a bad raster fails the same way, leaving nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from dask_fixtures import KillOneWorker, dask_client  # noqa: F401
from test_predict import _imagery, _region, trained  # noqa: F401
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.cluster import ClusterConfig
from riotvit.errors import ClusterError, RasterError
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.tile.plan import SourceSpec

pytestmark = pytest.mark.slow  # a two-process Dask cluster and a trained model

#: Small blocks, so the region (about 10 x 10 crops) is several blocks and several batches.
CFG = PredictConfig(tta=2, block_crops=4, batch_size=8)


def _maps(path):
    """risk.tif's bands (all three, nodata included), the cells and crops tables, run.json's counts."""
    with rasterio.open(path / "risk.tif") as r:
        risk, transform = r.read(), r.transform
    layers = {name: pyogrio.read_dataframe(path / "cells.gpkg", layer=name) for name in ("cells", "crops")}
    tables = {k: pd.DataFrame(v.drop(columns="geometry")).assign(wkt=v.geometry.to_wkt()) for k, v in layers.items()}
    return risk, transform, tables, json.loads((path / "run.json").read_text())["counts"]


@pytest.fixture(scope="module")
def single(trained):  # noqa: F811
    root, world, model = trained
    return predict(model, _region(world), root / "single", CFG, imagery=_imagery(world))


def _assert_same_maps(a, b):
    ra, ta, ca, na = _maps(a)
    rb, tb, cb, nb = _maps(b)
    assert ta == tb and ra.shape == rb.shape == (3, *ra.shape[1:])
    np.testing.assert_array_equal(ra, rb)  # every band, bit for bit
    for layer in ("cells", "crops"):
        pd.testing.assert_frame_equal(ca[layer], cb[layer], check_exact=True)
    assert na == nb


def test_dask_run_equals_the_single_process_run(single, trained, dask_client):  # noqa: F811
    root, world, model = trained
    res = predict(model, _region(world), root / "dask", CFG, imagery=_imagery(world), cluster=dask_client)
    assert res.n_predicted == single.n_predicted > 60 and res.n_cells == single.n_cells
    assert res.ran_on.startswith("Dask cluster at tcp://") and res.ran_on.endswith("2 workers")
    assert single.ran_on == "one process" and res.device == single.device == "cpu"
    _assert_same_maps(single.path, res.path)
    # the region really was cut into several blocks (4 x 4 crops) and batches (8 crops)
    b = pyogrio.read_dataframe(res.path / "cells.gpkg", layer="crops").geometry.bounds  # crops 672 m, stride 336 m
    cols, rows = np.floor(b["minx"] / 336).astype(int), np.floor(b["miny"] / 336).astype(int)
    assert len(set(zip(cols // 4, rows // 4))) >= 6 and res.n_predicted > 8 * 6
    assert res.warnings == single.warnings


def test_a_worker_killed_mid_run_is_retried_and_the_maps_are_the_same(single, trained, dask_client):  # noqa: F811
    root, world, model = trained
    killer = KillOneWorker(dask_client)
    res = predict(model, _region(world), root / "killed", CFG, imagery=_imagery(world), cluster=dask_client,
                  reporter=killer)
    assert killer.killed
    _assert_same_maps(single.path, res.path)


def _corrupt_middle(src, dst):
    """A copy of ``src`` (tiled, deflate) whose middle tile is garbage: it opens (first and last tiles are
    fine) and fails only when a block in the middle is read."""
    with rasterio.open(src) as r:
        prof = r.profile | {"driver": "GTiff", "tiled": True, "blockxsize": 32, "blockysize": 32, "compress": "deflate",
                            "interleave": "pixel"}
        data = r.read()
        with rasterio.open(dst, "w", **prof) as w:
            w.write(data)
            for i, desc in enumerate(r.descriptions, 1):
                w.set_band_description(i, desc)
            w.update_tags(**r.tags())
    with rasterio.open(dst) as r:
        ny, nx = r.height // 32, r.width // 32
        off = int(r.get_tag_item(f"BLOCK_OFFSET_{nx // 2}_{ny // 2}", "TIFF", bidx=1))
        size = int(r.get_tag_item(f"BLOCK_SIZE_{nx // 2}_{ny // 2}", "TIFF", bidx=1))
    raw = bytearray(dst.read_bytes())
    raw[off : off + size] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(raw))
    return dst


def test_a_bad_raster_gives_the_single_process_error_and_leaves_nothing(trained, dask_client, tmp_path):  # noqa: F811
    root, world, model = trained
    bad = _corrupt_middle(world.sample / "city.tif", tmp_path / "bad.tif")
    with pytest.raises(RasterError) as one:
        predict(model, _region(world), tmp_path / "one", CFG, imagery=[SourceSpec(bad)])
    with pytest.raises(RasterError) as many:
        predict(model, _region(world), tmp_path / "many", CFG, imagery=[SourceSpec(bad)], cluster=dask_client)
    assert str(many.value) == str(one.value)
    assert str(one.value).startswith(f"{bad}: read failed") and "corrupt or truncated" in str(one.value)
    assert "\n" not in str(many.value) and many.value.__traceback__ is not None  # raised here, not a Dask traceback
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tif"]  # no output, no .partial work folder


def test_cli_workers_gives_the_maps_and_says_where_it_ran(single, trained, dask_client, tmp_path):  # noqa: F811
    root, world, model = trained
    region = ",".join(str(v) for v in _region(world).in_crs(32737).bounds)
    args = ["predict", "--model", str(model), "--region", region, "--region-crs", "EPSG:32737", "--imagery",
            str(world.sample / "city.tif"), "--tta", "2", "--batch-size", "8", "--config", str(_block_config(tmp_path)),
            "--quiet"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "cli"), "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "ran on: local Dask cluster, 2 worker processes" in r.output
    _assert_same_maps(single.path, tmp_path / "cli")
    # a bad raster, on a running scheduler: one line, a non-zero exit, nothing that looks finished
    bad = _corrupt_middle(world.sample / "city.tif", tmp_path / "bad.tif")
    args[args.index("--imagery") + 1] = str(bad)
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "badout"), "--scheduler", dask_client.scheduler.address])
    assert r.exit_code == 2 and r.output.startswith(f"error: {bad}: read failed")
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not (tmp_path / "badout").exists() and not (tmp_path / "badout.partial").exists()
    # explanations accumulate over the whole region: refused on Dask, in one line naming the fix
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ex"), "--workers", "2", "--explain"])
    assert r.exit_code == 2 and "drop --workers/--scheduler to explain" in r.output
    assert not (tmp_path / "ex").exists()
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "both"), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert r.exit_code == 2 and "not both" in r.output


def _block_config(tmp_path):
    p = tmp_path / "predict.yaml"
    p.write_text("predict:\n  block_crops: 4\nexplain: {}\n")
    return p


def test_explain_with_a_cluster_is_refused_before_anything_is_written(trained, tmp_path):  # noqa: F811
    root, world, model = trained
    with pytest.raises(ClusterError, match=r"drop --workers/--scheduler to explain, or predict on Dask without --explain"):
        predict(model, _region(world), tmp_path / "x", CFG, imagery=_imagery(world), explain=object(),
                cluster=ClusterConfig(workers=2))
    assert list(tmp_path.iterdir()) == []


def test_work_is_one_block_on_a_cpu_and_full_batches_of_blocks_on_a_gpu():
    from riotvit.predict.blocks import block_groups, group_crops

    blocks = [(range(0, 4), range(0, 4), np.arange(k, k + n)) for k, n in ((0, 16), (16, 3), (19, 16), (35, 5), (40, 2))]
    assert block_groups(blocks, 8, across=False) == [[b] for b in blocks]
    gpu = block_groups(blocks, 20, across=True)  # consecutive blocks until a batch (20 crops) is full
    assert [[int(b[2][0]) for b in g] for g in gpu] == [[0, 16, 19], [35, 40]]
    assert [group_crops(g) for g in gpu] == [35, 7]
    assert sum(group_crops(g) for g in gpu) == 42
