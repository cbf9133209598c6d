"""Scale-out benchmark: tile and predict on Dask workers against one process, on a synthetic province.

In one run on this machine:

1. **Inputs.** A synthetic "province" of ``--size-km`` (default 48 km, 4-band uint16 at 10 m,
   UTM 37S, tiled and compressed like a Sentinel-2 product; 64 px crops of 672 m so every crop
   is resampled), and the same province cut to a quarter of its area (half the side).
2. **Tile**: one process (the default path; its reader thread overlaps decoding with cutting),
   one process limited to one thread, and ``--workers`` Dask workers of one thread each
   (a LocalCluster started before the clock runs; its start-up is reported on its own). The
   stitch of the Dask shards is timed on its own. The tile sets are checked byte-identical.
3. **Predict** a tiny ViT bundle (trained for one epoch on the synthetic city: speed does not
   depend on the weights) over the province the same three ways; risk rasters checked equal.
4. **Memory and serial work**: peak RSS (VmHWM) of a Dask worker after tiling and predicting
   the quarter province and the whole province, each on a fresh cluster: it must stay flat as
   the area grows 4x. The two sizes also split the work one process does outside the tasks
   (planning, stitch, metadata, merge, writing) into a fixed part and a part per crop.
5. **Projection** for Kenya and Nigeria from the measured per-worker rates and the H200
   references in the design notes (``../shared/DESIGN.md``), with its assumptions printed.

    python bench/bench_scale.py                      # 48 km province, 2 workers (about 10 min on 2 cores)
    python bench/bench_scale.py --size-km 24 --json scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import environment, load_average, warm_page_cache  # noqa: E402

CROP_M, CROP_PX, GSD = 672.0, 64, 10.0
#: Areas of the projection, km² (land area; the grid covers the bounding rectangle of the land,
#: but only crops with imagery are tiled and predicted).
COUNTRIES = {"Kenya": 580_367.0, "Nigeria": 923_768.0}
#: H200 references from the design notes: vit_small, 224 px, bf16, batch 1024.
H200_INFER_COMPILED = 28_100.0  # crops/s per view
H200_CROPS_PER_CORE_NEEDED = 1_750.0  # data-path crops/s per core one H200 needs, with 16 cores


def make_province(path: Path, size_km: float, centre: tuple[float, float], seed: int = 0) -> Path:
    """A 4-band uint16 raster of ``size_km`` at 10 m: smooth land cover plus texture, tiled and deflated."""
    import rasterio
    from affine import Affine
    from scipy.ndimage import zoom

    n = int(round(size_km * 1000 / GSD))
    rng = np.random.default_rng(seed)
    coarse = rng.random((4, max(2, n // 200), max(2, n // 200))).astype(np.float32)
    x0 = np.floor((centre[0] - size_km * 500) / GSD) * GSD
    y1 = np.floor((centre[1] + size_km * 500) / GSD) * GSD
    prof = dict(driver="GTiff", width=n, height=n, count=4, dtype="uint16", crs="EPSG:32737",
                transform=Affine(GSD, 0, x0, 0, -GSD, y1), compress="deflate", tiled=True, blockxsize=512,
                blockysize=512, nodata=0)
    with rasterio.open(path, "w", **prof) as dst:
        dst.update_tags(ACQUISITION_DATE="2023-02-16")
        for i, name in enumerate(["blue", "green", "red", "nir"], 1):
            dst.set_band_description(i, name)
        field = zoom(coarse, (1, n / coarse.shape[1], n / coarse.shape[2]), order=1, prefilter=False)[:, :n, :n]
        step = 1024
        for r in range(0, n, step):
            h = min(step, n - r)
            tex = rng.integers(0, 400, size=(4, h, n), dtype=np.uint16)
            dst.write((300 + 2500 * field[:, r : r + h]).astype(np.uint16) + tex + 1, window=((r, r + h), (0, n)))
    return path


def worker_peaks(client) -> list[float]:
    """Peak RSS (VmHWM) of every worker process, MB."""

    def hwm() -> float:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    return sorted(client.run(hwm).values())


def local_cluster(n: int, warm=None):
    from distributed import Client

    from riotvit.cluster import local_cluster as riotvit_local_cluster

    t = time.perf_counter()
    lc = riotvit_local_cluster(n)  # as riotvit starts it (--workers N)
    client = Client(lc)
    client.run(warm or _warm_tile)  # imports once per worker process, outside the clock
    return lc, client, time.perf_counter() - t


def _warm_tile() -> None:
    import riotvit.tile.fanout  # noqa: F401  (rasterio, GDAL, pandas)


def _warm_predict() -> None:
    import riotvit.predict.predictor  # noqa: F401  (torch, timm)


class _OneThread:
    """torch, NumPy's BLAS and GDAL on one thread in this process (the per-core reference)."""

    def __enter__(self):
        import torch

        self.t = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.t)


def on_cluster(n: int, run, warm=None) -> dict:
    """Run ``run(client)`` on a fresh LocalCluster of ``n`` one-thread workers; wall time (start-up
    excluded), the summed compute time of its tasks (Dask's task stream) and every worker's peak RSS."""
    from distributed import get_task_stream

    lc, client, start = local_cluster(n, warm)
    try:
        with get_task_stream(client) as ts:
            t = time.perf_counter()
            run(client)
            wall = time.perf_counter() - t
        compute = sum(ss["stop"] - ss["start"] for task in ts.data for ss in task.get("startstops", ())
                      if ss.get("action") == "compute")
        return {"wall_s": wall, "task_compute_s": compute, "tasks": len(ts.data), "cluster_start_s": start,
                "worker_peak_mb": worker_peaks(client)}
    finally:
        client.close()
        lc.close()


def _scaling(out: dict, one: dict, many: dict, workers: int) -> None:
    """Speed-ups and what limits them: the tasks' compute time grows when workers share the machine."""
    n = out["crops"]
    out["dask_1_worker"] = one
    out[f"dask_{workers}_workers"] = many
    out["one_process_crops_per_s"] = n / out["one_process_s"]
    out["one_thread_crops_per_s"] = n / out["one_thread_s"]
    out["dask_1_crops_per_s"] = n / one["wall_s"]
    out["dask_n_crops_per_s"] = n / many["wall_s"]
    out["dask_n_crops_per_s_per_worker"] = out["dask_n_crops_per_s"] / workers
    out["speedup_n_vs_1_worker"] = one["wall_s"] / many["wall_s"]
    out["speedup_n_workers_vs_one_process"] = out["one_process_s"] / many["wall_s"]
    # > 1 when the same tasks take longer side by side than alone (shared cores, caches, memory bandwidth)
    out["task_compute_inflation"] = many["task_compute_s"] / one["task_compute_s"] if one["task_compute_s"] else None
    if out["task_compute_inflation"]:
        out["speedup_ceiling_from_inflation"] = workers / out["task_compute_inflation"]


def bench_tile(work: Path, raster: Path, workers: int) -> dict:
    import shutil

    from riotvit.tile import fanout
    from riotvit.tile.plan import TileConfig
    from riotvit.tile.tiler import tile

    cfg = TileConfig(crop_px=CROP_PX, block_crops=16)
    out: dict = {}
    warm_page_cache(raster)

    def fresh(p: Path) -> Path:
        shutil.rmtree(p, ignore_errors=True)
        return p

    t = time.perf_counter()
    one = tile([raster], fresh(work / "t_one"), cfg)
    out["one_process_s"] = time.perf_counter() - t
    out["crops"] = one.n_crops
    with _OneThread():
        t = time.perf_counter()
        tile([raster], fresh(work / "t_one_thread"), cfg)
        out["one_thread_s"] = time.perf_counter() - t
    stitch_s = []
    real_stitch = fanout.stitch

    def timed_stitch(*a, **k):
        t0 = time.perf_counter()
        r = real_stitch(*a, **k)
        stitch_s.append(time.perf_counter() - t0)
        return r

    fanout.stitch = timed_stitch
    try:
        runs = {n: on_cluster(n, lambda c, n=n: tile([raster], fresh(work / f"t_dask{n}"), cfg, cluster=c))
                for n in (1, workers)}
    finally:
        fanout.stitch = real_stitch
    out["stitch_s"] = stitch_s[-1]
    out["identical"] = all((work / "t_one" / f).read_bytes() == (work / f"t_dask{workers}" / f).read_bytes()
                           for f in ("chips.npy", "masks.npy", "tileset.json", "tiles.parquet"))
    out["chips_bytes"] = (work / "t_one" / "chips.npy").stat().st_size
    _scaling(out, runs[1], runs[workers], workers)
    return out


def train_model(work: Path) -> tuple[Path, Path]:
    from pipeline_fixtures import make_world

    from riotvit.train.config import TrainConfig
    from riotvit.train.trainer import train

    w = make_world(work / "world", size_km=12.0, crop_px=CROP_PX, overlap=None, block_m=2688.0)
    cfg = TrainConfig.model_validate({"model": {"backbone": "vit_tiny_patch16_224", "img_size": CROP_PX, "patch_size": 8,
                                                "embed_dim": 96, "depth": 4, "num_heads": 3},
                                      "optim": {"epochs": 1}, "eval": {"background_samples": 0}})
    return train(w.tiles, w.samples, work / "model", cfg).path, w.sample / "city.tif"


def bench_predict(work: Path, model: Path, raster: Path, workers: int, tta: int) -> dict:
    import rasterio

    from riotvit.predict.plan import PredictConfig
    from riotvit.predict.predictor import predict
    from riotvit.tile.plan import SourceSpec

    region = _imagery_region(raster)
    cfg = PredictConfig(tta=tta, max_cells=10_000_000)
    img = [SourceSpec(raster)]
    out: dict = {}
    warm_page_cache(raster)
    t = time.perf_counter()
    one = predict(model, region, work / "p_one", cfg, imagery=img, overwrite=True, yes=True)
    out["one_process_s"] = time.perf_counter() - t
    out["stream_s"] = one.stream_seconds
    out["crops"] = one.n_predicted
    with _OneThread():
        t = time.perf_counter()
        predict(model, region, work / "p_one_thread", cfg, imagery=img, overwrite=True, yes=True)
        out["one_thread_s"] = time.perf_counter() - t
    runs = {n: on_cluster(n, lambda c, n=n: predict(model, region, work / f"p_dask{n}", cfg, imagery=img, overwrite=True,
                                                    yes=True, cluster=c), _warm_predict)
            for n in (1, workers)}
    with rasterio.open(work / "p_one" / "risk.tif") as a, rasterio.open(work / f"p_dask{workers}" / "risk.tif") as b:
        out["identical"] = bool(np.array_equal(a.read(), b.read()))
    _scaling(out, runs[1], runs[workers], workers)
    return out


def _imagery_region(raster: Path):
    import rasterio
    import shapely

    from riotvit.predict.region import Region, _to_wgs84

    with rasterio.open(raster) as s:
        b = s.bounds
        g = _to_wgs84(shapely.box(b.left, b.bottom, b.right, b.top).segmentize(1000.0), s.crs)
    return Region(raster.stem, g, str(raster))


def quarter_runs(work: Path, small: Path, model: Path | None, tile_r: dict, pred_r: dict | None, tta: int) -> dict:
    """The quarter province (a 4x smaller area) on one worker: its peak memory against the whole province's,
    and a second point for the serial part (so it splits into a fixed cost and a cost per crop)."""
    from riotvit.predict.plan import PredictConfig
    from riotvit.predict.predictor import predict
    from riotvit.tile.plan import SourceSpec, TileConfig
    from riotvit.tile.tiler import tile

    out: dict = {}
    res: dict = {}
    res["tile"] = on_cluster(1, lambda c: tile([small], work / "q_t", TileConfig(crop_px=CROP_PX, block_crops=16),
                                               overwrite=True, cluster=c))
    res["tile"]["crops"] = int(len(__import__("pandas").read_parquet(work / "q_t" / "tiles.parquet", columns=["col"])))
    if model is not None:
        def run(c):
            res["predict"]["crops"] = predict(model, _imagery_region(small), work / "q_p",
                                              PredictConfig(tta=tta, max_cells=10_000_000), imagery=[SourceSpec(small)],
                                              overwrite=True, yes=True, cluster=c).n_predicted
        res["predict"] = {}
        res["predict"].update(on_cluster(1, run, _warm_predict))
    for k, whole in (("tile", tile_r), ("predict", pred_r)):
        if k not in res or whole is None:
            continue
        q, w = res[k], whole["dask_1_worker"]
        out[f"{k}_quarter"] = q
        out[f"{k}_peak_mb_quarter_vs_whole"] = [max(q["worker_peak_mb"]), max(w["worker_peak_mb"])]
        out[f"{k}_peak_ratio_4x"] = max(w["worker_peak_mb"]) / max(q["worker_peak_mb"])
        sq, sw = q["wall_s"] - q["task_compute_s"], w["wall_s"] - w["task_compute_s"]
        per_crop = max(0.0, (sw - sq) / max(1, whole["crops"] - q["crops"]))
        out[f"{k}_serial"] = {"fixed_s": max(0.0, sw - per_crop * whole["crops"]), "s_per_crop": per_crop,
                              "quarter_s": sq, "whole_s": sw}
    return out


def rates(r: dict, workers: int, serial: dict) -> dict:
    """Per-worker compute rates (alone on a core; sharing the machine) and the serial part, from one stage's runs."""
    one, many = r["dask_1_worker"], r[f"dask_{workers}_workers"]
    return {"alone": r["crops"] / one["task_compute_s"], "shared": r["crops"] / many["task_compute_s"],
            # what one process does outside the tasks (plan, metadata, merge, stitch, write): fixed + per crop
            "serial_fixed_s": serial["fixed_s"], "serial_s_per_crop": serial["s_per_crop"]}


def projection(tile_r: dict, pred_r: dict | None, workers: int, q: dict, workers_list=(16, 64, 256)) -> dict:
    """Kenya and Nigeria from the rates measured here: [alone, shared] minutes on n one-core workers."""
    out: dict = {"assumptions": [
        "cells = land area / 0.672² km² (no overlap); every cell has imagery",
        "chips: 4 bands uint16; 64 px = 32 KiB, 224 px = 392 KiB per crop",
        "CPU workers, 64 px crops of 10 m imagery: minutes = cells / (per-worker rate x n) + cells x the serial time "
        "per crop; [a, b] = at the rate of one worker alone on a core, and of workers sharing this 2-core VM "
        "(Dask's task stream); storage and the scheduler assumed not limiting",
        "serial = what one process does outside the tasks (1 worker: wall minus the tasks' compute): for tile the "
        "planning, stitch and tiles.parquet, for predict the model load, metadata, merge and the writing of cells, "
        "risk.tif, map and project; split into a fixed part and a part per crop from the quarter and whole province",
        f"H200: vit_small at 224 px, bf16, compiled: {H200_INFER_COMPILED:,.0f} crops/s per test-time view (design notes); "
        "model time = cells x views / that rate, if the data path keeps up (about "
        f"{H200_CROPS_PER_CORE_NEEDED:,.0f} crops/s per core from 16 cores); the serial merge is added as measured here",
    ]}
    rt = {"tile": rates(tile_r, workers, q["tile_serial"])}
    if pred_r:
        rt["predict_tiny64"] = rates(pred_r, workers, q["predict_serial"])
    out["rates"] = rt
    for name, km2 in COUNTRIES.items():
        cells = km2 / 0.672**2
        c: dict = {"area_km2": km2, "cells": round(cells), "chips_64px_gb": round(cells * 4 * 64 * 64 * 2 / 1e9, 1),
                   "chips_224px_gb": round(cells * 4 * 224 * 224 * 2 / 1e9, 1)}
        for stage, r in rt.items():
            serial = r["serial_fixed_s"] + cells * r["serial_s_per_crop"]
            c[f"{stage}_serial_min"] = round(serial / 60, 1)
            for n in workers_list:
                c[f"{stage}_{n}_workers_min"] = [round((cells / (r['alone'] * n) + serial) / 60, 1),
                                                 round((cells / (r['shared'] * n) + serial) / 60, 1)]
        pr = rt.get("predict_tiny64")
        merge = pr["serial_fixed_s"] + cells * pr["serial_s_per_crop"] if pr else 0.0
        for gpus in (1, 8):
            for views in (1, 8):
                c[f"predict_vit_small_224_{gpus}xH200_tta{views}_min"] = [
                    round(views * cells / (H200_INFER_COMPILED * gpus) / 60, 2),
                    round((views * cells / (H200_INFER_COMPILED * gpus) + merge) / 60, 1)]
        out[name] = c
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-km", type=float, default=48.0, help="province side, km (the 4x memory check uses half of it)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tta", type=int, default=1, help="test-time views in predict")
    ap.add_argument("--skip-predict", action="store_true")
    ap.add_argument("--workdir", type=Path, help="keep inputs and outputs here (default: a temporary folder)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res: dict = {"environment": environment(), "size_km": args.size_km, "workers": args.workers, "tta": args.tta}
    with tempfile.TemporaryDirectory() as d:
        work = args.workdir or Path(d)
        work.mkdir(parents=True, exist_ok=True)
        model, city = (None, None) if args.skip_predict else train_model(work)
        import rasterio

        centre = (500_000.0, 9_850_000.0)
        if city is not None:
            with rasterio.open(city) as s:
                centre = ((s.bounds.left + s.bounds.right) / 2, (s.bounds.bottom + s.bounds.top) / 2)
        t = time.perf_counter()
        big = make_province(work / f"province_{args.size_km:g}km.tif", args.size_km, centre)
        small = make_province(work / f"province_{args.size_km / 2:g}km.tif", args.size_km / 2, centre, seed=1)
        res["inputs_s"] = time.perf_counter() - t
        print(f"inputs ready ({res['inputs_s']:.0f} s); load {load_average()}", file=sys.stderr)
        res["tile"] = bench_tile(work, big, args.workers)
        print(json.dumps(res["tile"], indent=1), file=sys.stderr)
        if model is not None:
            res["predict"] = bench_predict(work, model, big, args.workers, args.tta)
            print(json.dumps(res["predict"], indent=1), file=sys.stderr)
        res["quarter"] = quarter_runs(work, small, model, res["tile"], res.get("predict"), args.tta)
        res["projection"] = projection(res["tile"], res.get("predict"), args.workers, res["quarter"])
    res["load_avg_after"] = list(load_average())
    text = json.dumps(res, indent=2, default=float)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
