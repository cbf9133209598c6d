"""Tiling benchmark: the same raster on the same crop grid, three ways, in one run.

1. ``riotvit``: ``riotvit.tile.tiler.tile`` end to end (plan, checksum, read, resample,
   statistics, chip store, tiles.parquet, tileset.json).
2. ``rasterio WarpedVRT``: a plain per-crop loop, ``vrt.read(window=from_bounds(...),
   out_shape=(C, 224, 224), resampling=bilinear)`` into a preallocated array, then ``np.save``.
3. ``torchgeo``: a ``RasterDataset`` subclass, ``GridGeoSampler`` (and, to compare on exactly
   riotvit's crops, a sampler over riotvit's footprints), a ``DataLoader`` with
   ``collate_fn=stack_samples`` and ``num_workers`` 0 and 2; every batch is stored into a
   preallocated array in the tile set's dtype, then ``np.save``.

It also times the I/O floor (one plain ``src.read()`` of the whole raster) and a write floor
(``np.save`` of an array the size of the chip store), checks that riotvit's chips equal the
WarpedVRT chips (and torchgeo's), and measures riotvit's peak memory (``ru_maxrss`` of a fresh
process) on the raster and on a 2 x 2 mosaic of it (4x the area).

The page cache is warmed before timing; every timing is repeated ``--repeat`` times and the
best (minimum) is reported. torchgeo is optional (``pip install -e '.[bench]'``).

Usage::

    python bench/bench_tile.py                       # synthetic city, 12 km (4032 px), 324 crops
    python bench/bench_tile.py --overlap 0.5 --json bench_tile.json
    python bench/bench_tile.py --warp-to EPSG:4326   # same city in lon/lat: every way resamples
    python bench/bench_tile.py --raster my.tif --date 2023-05-01
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    best_of,
    environment,
    load_average,
    peak_rss_mb,
    run_json_child,
    warm_page_cache,
)

TARGET_VS_TORCHGEO = 5.0
TARGET_VS_FLOOR = 2.0
TARGET_MEMORY_RATIO = 1.25


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def make_sample(workdir: Path, size_km: float) -> Path:
    """The synthetic city (4-band uint16, UTM 37S, 3 m, aligned with the crop grid)."""
    from riotvit.synth import SampleConfig, generate_sample

    out = workdir / f"sample_{size_km:g}km"
    if not (out / "city.tif").exists():
        generate_sample(out, SampleConfig(size_km=size_km), overwrite=True)
    return out / "city.tif"


def warp_raster(src_path: Path, dst_path: Path, crs: str) -> Path:
    """Reproject a raster (bilinear, same profile) so that every way has to resample."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(src_path) as src, WarpedVRT(src, crs=crs, resampling=Resampling.bilinear) as vrt:
        prof = dict(src.profile)
        prof.update(crs=vrt.crs, transform=vrt.transform, width=vrt.width, height=vrt.height)
        with rasterio.open(dst_path, "w", **prof) as dst:
            for _, w in dst.block_windows(1):
                dst.write(vrt.read(window=w), window=w)
            dst.descriptions = src.descriptions
            dst.colorinterp = src.colorinterp
            dst.update_tags(**src.tags())
    return dst_path


def mosaic_2x2(src_path: Path, dst_path: Path, strip_rows: int = 512) -> Path:
    """Write a raster twice as wide and high (4x the area) made of 2 x 2 copies of ``src_path``.

    Same CRS, origin, pixel size, profile, tags and band descriptions, so a grid-aligned input
    stays grid-aligned. Written strip by strip (bounded memory).
    """
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src_path) as src:
        w, h = src.width, src.height
        prof = dict(src.profile)
        prof.update(width=2 * w, height=2 * h, BIGTIFF="IF_SAFER")
        with rasterio.open(dst_path, "w", **prof) as dst:
            for r in range(0, 2 * h, strip_rows):
                n = min(strip_rows, 2 * h - r)
                pieces, row = [], r
                while row < r + n:
                    sr = row % h
                    take = min(h - sr, r + n - row)
                    pieces.append(src.read(window=Window(0, sr, w, take)))
                    row += take
                strip = np.concatenate(pieces, axis=1)
                dst.write(np.concatenate([strip, strip], axis=2), window=Window(0, r, 2 * w, n))
            dst.descriptions = src.descriptions
            dst.colorinterp = src.colorinterp
            dst.update_tags(**src.tags())
    return dst_path


def data_band_indexes(src) -> list[int]:
    """1-based band indexes without an alpha band (what riotvit tiles)."""
    from rasterio.enums import ColorInterp

    return [i + 1 for i, ci in enumerate(src.colorinterp) if ci != ColorInterp.alpha]


# --------------------------------------------------------------------------------------------
# the three ways and the floors
# --------------------------------------------------------------------------------------------
def full_read(path: Path) -> int:
    """The I/O floor: one plain read of every band of the whole raster."""
    import rasterio

    with rasterio.open(path) as src:
        return int(src.read().nbytes)


def riotvit_tile(path: Path, out: Path, cfg) -> Any:
    from riotvit.tile.tiler import tile

    return tile([path], out, cfg)


def vrt_tile(path: Path, fps: np.ndarray, crs: str, crop_px: int, dtype: str, out_file: Path,
             resampling: str = "bilinear") -> np.ndarray:
    """Way 2: one WarpedVRT window read per crop footprint, into a preallocated array.

    Footprints that stick out of the raster are read for their inside part only (WarpedVRT
    refuses boundless reads); the rest stays 0, as in riotvit's chips.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window, from_bounds

    rs = Resampling[resampling]
    with rasterio.open(path) as src:
        idx = data_band_indexes(src)
        chips = np.zeros((len(fps), len(idx), crop_px, crop_px), dtype=dtype)
        with WarpedVRT(src, crs=crs, resampling=rs) as vrt:
            full = Window(0, 0, vrt.width, vrt.height)
            for k, fp in enumerate(fps):
                win = from_bounds(*fp, transform=vrt.transform)
                try:
                    inter = win.intersection(full)
                except Exception:  # WindowError: the crop is outside the raster
                    continue
                eps = 1e-6
                if (abs(inter.col_off - win.col_off) < eps and abs(inter.row_off - win.row_off) < eps
                        and abs(inter.width - win.width) < eps and abs(inter.height - win.height) < eps):
                    chips[k] = vrt.read(idx, window=win, out_shape=(len(idx), crop_px, crop_px), resampling=rs)
                    continue
                sx, sy = crop_px / win.width, crop_px / win.height
                c0 = int(round((inter.col_off - win.col_off) * sx))
                r0 = int(round((inter.row_off - win.row_off) * sy))
                cw = min(int(round(inter.width * sx)), crop_px - c0)
                rh = min(int(round(inter.height * sy)), crop_px - r0)
                if cw <= 0 or rh <= 0:
                    continue
                chips[k, :, r0:r0 + rh, c0:c0 + cw] = vrt.read(idx, window=inter, out_shape=(len(idx), rh, cw),
                                                               resampling=rs)
    np.save(out_file, chips)
    return chips


def torchgeo_available() -> str | None:
    try:
        import torchgeo
    except ImportError:
        return None
    return torchgeo.__version__


def _torchgeo_dataset(path: Path, epsg: int, gsd: float):
    from rasterio.crs import CRS
    from torchgeo.datasets import RasterDataset

    class OneRaster(RasterDataset):
        filename_glob = path.name
        is_image = True

    return OneRaster(paths=str(path), crs=CRS.from_epsg(epsg), res=gsd)


def _footprint_queries(ds, fps: np.ndarray, grid_query) -> list:
    """riotvit's footprints in the form the installed torchgeo's samplers yield.

    torchgeo >= 0.8 indexes with ``(slice(x), slice(y), slice(t))``; older versions with a
    ``BoundingBox(minx, maxx, miny, maxy, mint, maxt)``.
    """
    if isinstance(grid_query, tuple) and isinstance(grid_query[0], slice):
        t = grid_query[2]
        return [(slice(float(a), float(c)), slice(float(b), float(d)), slice(t.start, t.stop)) for a, b, c, d in fps]
    from torchgeo.datasets import BoundingBox

    return [BoundingBox(float(a), float(c), float(b), float(d), grid_query.mint, grid_query.maxt) for a, b, c, d in fps]


def torchgeo_queries(path: Path, epsg: int, gsd: float, crop_px: int, stride_px: int, fps: np.ndarray):
    """The queries of ``GridGeoSampler`` (its own grid) and riotvit's footprints as queries."""
    from torchgeo.samplers import GridGeoSampler

    ds = _torchgeo_dataset(path, epsg, gsd)
    grid_q = list(GridGeoSampler(ds, size=crop_px, stride=stride_px))
    return grid_q, _footprint_queries(ds, fps, grid_q[0])


def query_bounds(q) -> tuple[float, float, float, float]:
    if isinstance(q, tuple):
        return (q[0].start, q[1].start, q[0].stop, q[1].stop)
    return (q.minx, q.miny, q.maxx, q.maxy)


def torchgeo_tile(path: Path, epsg: int, gsd: float, crop_px: int, stride_px: int, queries: list | None,
                  n_bands: int, dtype: str, workers: int, batch_size: int, out_file: Path) -> np.ndarray:
    """Way 3: RasterDataset + sampler + DataLoader(stack_samples); store every crop.

    ``queries`` None uses ``GridGeoSampler(ds, size=crop_px, stride=stride_px)`` (pixel units);
    otherwise the given queries (riotvit's footprints) in that order.
    """
    from torch.utils.data import DataLoader
    from torchgeo.datasets import stack_samples
    from torchgeo.samplers import GridGeoSampler

    ds = _torchgeo_dataset(path, epsg, gsd)
    sampler = GridGeoSampler(ds, size=crop_px, stride=stride_px) if queries is None else queries
    n = len(sampler)
    chips = np.zeros((n, n_bands, crop_px, crop_px), dtype=dtype)
    loader = DataLoader(ds, sampler=sampler, batch_size=batch_size, num_workers=workers, collate_fn=stack_samples)
    k = 0
    for batch in loader:
        img = batch["image"].numpy()
        if img.shape[1:] != chips.shape[1:]:
            raise RuntimeError(f"torchgeo returned crops of shape {img.shape[1:]}, expected {chips.shape[1:]}")
        chips[k:k + len(img)] = img
        k += len(img)
    if k != n:
        raise RuntimeError(f"torchgeo returned {k} crops, its sampler announced {n}")
    np.save(out_file, chips)
    return chips


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------
def riotvit_crops(tileset: Path):
    """(grid, footprints in chip order, valid-mask getter) of a tile set."""
    import pandas as pd

    from riotvit.grid import CropGrid

    info = json.loads((tileset / "tileset.json").read_text())
    grid = CropGrid.from_dict(info["grid"])
    df = pd.read_parquet(tileset / "tiles.parquet", columns=["col", "row", "chip_index", "mask_index"])
    df = df.sort_values("chip_index").reset_index(drop=True)
    fps = grid.footprints(df["col"].to_numpy(), df["row"].to_numpy())
    return grid, fps, df["mask_index"].to_numpy(), info


def max_abs_diff(ref: np.ndarray, other: np.ndarray, mask_index: np.ndarray, masks: np.ndarray | None) -> int:
    """Largest |ref - other| over the pixels riotvit marks valid (all pixels of full crops)."""
    worst = 0
    for a in range(0, len(ref), 64):
        r = ref[a:a + 64].astype(np.int64)
        o = other[a:a + 64].astype(np.int64)
        d = np.abs(r - o)
        mi = mask_index[a:a + 64]
        for j in np.flatnonzero(mi >= 0):
            d[j][:, masks[mi[j]] == 0] = 0
        worst = max(worst, int(d.max()) if d.size else 0)
    return worst


def footprint_match(grid_q: list, fps: np.ndarray) -> dict[str, int]:
    """How many of GridGeoSampler's crops coincide with one of riotvit's."""
    ours = {tuple(np.round(fp, 3)) for fp in fps}
    theirs = {tuple(np.round(query_bounds(q), 3)) for q in grid_q}
    return {"torchgeo": len(theirs), "riotvit": len(ours), "same": len(ours & theirs)}


# --------------------------------------------------------------------------------------------
# peak memory (child process)
# --------------------------------------------------------------------------------------------
def child_tile(raster: str, out: str, overlap: float, date: str | None) -> None:
    """Run one riotvit tile in this (fresh) process and print its peak RSS as JSON."""
    from riotvit.tile.plan import TileConfig
    from riotvit.tile.tiler import tile

    cfg = TileConfig(overlap=overlap, date=dt.date.fromisoformat(date) if date else None)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    res = tile([Path(raster)], Path(out), cfg)
    secs = time.perf_counter() - t0
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_imports_mb": round(base, 1),
                      "seconds": round(secs, 3), "n_crops": res.n_crops}))


def measure_memory(script: Path, rasters: dict[str, Path], workdir: Path, overlap: float,
                   date: str | None) -> dict[str, dict]:
    out = {}
    for name, path in rasters.items():
        warm_page_cache(path)
        dst = workdir / f"mem_{name}"
        shutil.rmtree(dst, ignore_errors=True)
        argv = [str(script), "--child-tile", str(path), "--child-out", str(dst), "--overlap", str(overlap)]
        if date:
            argv += ["--date", date]
        out[name] = run_json_child(argv)
        shutil.rmtree(dst, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-km", type=float, default=12.0, help="side of the synthetic city, km (default 12)")
    ap.add_argument("--raster", type=Path, help="benchmark this raster instead of the synthetic city")
    ap.add_argument("--date", help="acquisition date YYYY-MM-DD when --raster has none in its tags")
    ap.add_argument("--warp-to", metavar="CRS", help="first reproject the raster to this CRS (e.g. EPSG:4326)")
    ap.add_argument("--overlap", type=float, default=0.0, help="crop overlap 0..1 (default 0)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per way; the best is reported (default 3; use 2 or more: a first run pays one-time imports)")
    ap.add_argument("--workers", default="0,2", help="torchgeo DataLoader num_workers to try (default 0,2)")
    ap.add_argument("--batch-size", type=int, default=32, help="torchgeo DataLoader batch size (default 32)")
    ap.add_argument("--no-torchgeo", action="store_true", help="skip torchgeo")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--workdir", type=Path, help="keep inputs and outputs here (default: a temp folder)")
    ap.add_argument("--json", type=Path, help="also save the figures as JSON here")
    ap.add_argument("--child-tile", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from riotvit.tile.plan import TileConfig

    say = lambda s: print(s, flush=True)  # noqa: E731
    res: dict[str, Any] = {"env": environment(), "args": {k: str(v) for k, v in vars(args).items()
                                                          if not k.startswith("child")}}
    t_setup = time.perf_counter()
    path = args.raster.resolve() if args.raster else make_sample(workdir, args.size_km)
    if args.warp_to:
        path = warp_raster(path, workdir / f"{path.stem}_warped.tif", args.warp_to)
    cfg = TileConfig(overlap=args.overlap, date=dt.date.fromisoformat(args.date) if args.date else None)
    import rasterio

    with rasterio.open(path) as src:
        raster = {"path": str(path), "width": src.width, "height": src.height, "bands": src.count,
                  "dtype": src.dtypes[0], "crs": str(src.crs), "res": list(src.res),
                  "file_mb": round(path.stat().st_size / 1e6, 1)}
    res["raster"] = raster
    say(f"raster: {path} ({raster['width']} x {raster['height']} px, {raster['bands']} bands {raster['dtype']}, "
        f"{raster['crs']}, {raster['file_mb']} MB) - setup {time.perf_counter() - t_setup:.1f} s")
    say(f"load average before: {load_average()} on {res['env']['cpus']} CPUs")
    warm_page_cache(path)
    rep = args.repeat

    # I/O floor
    floor = best_of(lambda i: full_read(path), rep)
    res["floor"] = {"seconds": floor.best, "times": floor.times, "decoded_mb": round(floor.result / 1e6, 1)}
    say(f"I/O floor (one full src.read()): {floor.best:.3f} s")

    # 1. riotvit
    outs = [workdir / f"riotvit_{i}" for i in range(rep)]
    rv = best_of(
        lambda i: riotvit_tile(path, outs[i], cfg), rep,
        before=lambda i: shutil.rmtree(outs[i], ignore_errors=True),
        after=lambda i, r: shutil.rmtree(outs[i]) if i < rep - 1 else None,
    )
    tileset = outs[-1]
    grid, fps, mask_index, info = riotvit_crops(tileset)
    n = len(fps)
    chip_mb = (tileset / "chips.npy").stat().st_size / 1e6
    res["grid"] = grid.to_dict() | {"crops": n, "candidates": rv.result.n_candidates}
    res["riotvit"] = {"seconds": rv.best, "times": rv.times, "crops": n, "crops_per_s": n / rv.best,
                      "chip_store_mb": round(chip_mb, 1)}
    say(f"riotvit: {n} crops ({rv.result.n_masked} partly masked) in {rv.best:.3f} s")
    dtype = info["dtype"]
    n_bands = len(info["bands"])
    masks = np.load(tileset / "masks.npy", mmap_mode="r") if rv.result.n_masked else None
    riot_chips = np.load(tileset / "chips.npy", mmap_mode="r")

    # write floor: saving an array the size of the chip store
    wf = workdir / "write_floor.npy"
    store = np.ascontiguousarray(riot_chips)
    wfl = best_of(lambda i, a=store: np.save(wf, a), rep, after=lambda i, r: wf.unlink())
    del store
    res["write_floor"] = {"seconds": wfl.best, "times": wfl.times, "mb": round(chip_mb, 1)}
    say(f"write floor (np.save of {chip_mb:.0f} MB): {wfl.best:.3f} s")

    # 2. WarpedVRT per crop
    vf = workdir / "vrt_chips.npy"
    vr = best_of(lambda i: vrt_tile(path, fps, grid.crs, grid.crop_px, dtype, vf, cfg.resampling), rep,
                 after=lambda i, r: vf.unlink())
    diff_vrt = max_abs_diff(riot_chips, vr.result, mask_index, masks)
    res["vrt"] = {"seconds": vr.best, "times": vr.times, "crops": n, "crops_per_s": n / vr.best,
                  "max_abs_diff_vs_riotvit": diff_vrt}
    say(f"WarpedVRT per crop: {vr.best:.3f} s; max |riotvit - WarpedVRT| = {diff_vrt}")
    del vr

    # 3. torchgeo
    res["torchgeo"] = {}
    tg_version = None if args.no_torchgeo else torchgeo_available()
    if args.no_torchgeo:
        say("torchgeo: skipped (--no-torchgeo)")
    elif tg_version is None:
        say("torchgeo: not installed; pip install -e '.[bench]' to include it")
    else:
        res["env"]["torchgeo"] = tg_version
        import warnings

        warnings.filterwarnings("ignore", module="torchgeo")
        grid_q, fp_q = torchgeo_queries(path, grid.epsg, grid.gsd, grid.crop_px, grid.stride_px, fps)
        match = footprint_match(grid_q, fps)
        res["torchgeo"]["grid_sampler_footprints"] = match
        say(f"torchgeo {tg_version}: GridGeoSampler gives {match['torchgeo']} crops, riotvit {match['riotvit']}, "
            f"{match['same']} identical footprints")
        tf = workdir / "torchgeo_chips.npy"
        for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            for kind, queries in (("GridGeoSampler", None), ("riotvit footprints", fp_q)):
                tg = best_of(
                    lambda i, q=queries, w=workers: torchgeo_tile(
                        path, grid.epsg, grid.gsd, grid.crop_px, grid.stride_px, q, n_bands, dtype, w,
                        args.batch_size, tf),
                    rep, after=lambda i, r: tf.unlink(),
                )
                m = len(tg.result)
                entry = {"seconds": tg.best, "times": tg.times, "crops": m, "crops_per_s": m / tg.best,
                         "workers": workers, "sampler": kind}
                if queries is not None:
                    entry["max_abs_diff_vs_riotvit"] = max_abs_diff(riot_chips, tg.result, mask_index, masks)
                res["torchgeo"][f"{kind} w{workers}"] = entry
                extra = f"; max |riotvit - torchgeo| = {entry['max_abs_diff_vs_riotvit']}" if queries is not None else ""
                say(f"torchgeo {kind}, num_workers={workers}: {m} crops in {tg.best:.3f} s{extra}")
                del tg
    del riot_chips, masks
    shutil.rmtree(tileset, ignore_errors=True)

    # peak memory
    if not args.no_memory:
        big = mosaic_2x2(path, workdir / f"{path.stem}_x4.tif")
        mem = measure_memory(Path(__file__).resolve(), {"raster": path, "raster_x4": big}, workdir,
                             args.overlap, args.date)
        for m in (mem["raster"], mem["raster_x4"]):
            m["tiling_mb"] = round(m["peak_rss_mb"] - m["rss_after_imports_mb"], 1)
        mem["ratio_x4"] = mem["raster_x4"]["peak_rss_mb"] / mem["raster"]["peak_rss_mb"]
        mem["tiling_ratio_x4"] = mem["raster_x4"]["tiling_mb"] / max(mem["raster"]["tiling_mb"], 1.0)
        res["memory"] = mem
        say(f"peak RSS: {mem['raster']['peak_rss_mb']:.0f} MB ({mem['raster']['n_crops']} crops), "
            f"{mem['raster_x4']['peak_rss_mb']:.0f} MB for 4x the area ({mem['raster_x4']['n_crops']} crops)")
    res["env"]["load_avg_after"] = list(load_average())
    return res


def report(res: dict[str, Any]) -> str:
    """The plain-text table."""
    floor = res["floor"]["seconds"]
    rv = res["riotvit"]
    rows = [("riotvit tile (end to end)", rv)]
    rows.append(("rasterio WarpedVRT per crop", res["vrt"]))
    tgs = res.get("torchgeo", {})
    for v in tgs.values():
        if isinstance(v, dict) and "crops_per_s" in v:
            rows.append((f"torchgeo {v['sampler']}, workers={v['workers']}", v))
    g = res["grid"]
    lines = [
        f"raster {res['raster']['width']} x {res['raster']['height']} px, {res['raster']['bands']} bands "
        f"{res['raster']['dtype']}, {res['raster']['crs']}; grid EPSG:{g['epsg']} crop {g['crop_m']:g} m / "
        f"{g['crop_px']} px, stride {g['stride_m']:g} m (overlap {g['overlap']:g}); riotvit crops {g['crops']}",
        f"times: best of {len(rv['times'])} runs each, page cache warm; "
        f"load average before {res['env']['load_avg']}, after {res['env'].get('load_avg_after')} "
        f"on {res['env']['cpus']} CPUs",
        "",
        f"{'way':<42}{'crops':>7}{'best s':>9}{'crops/s':>10}{'x floor':>9}{'riotvit x':>11}{'max|diff|':>11}",
    ]
    for name, v in rows:
        diff = v.get("max_abs_diff_vs_riotvit", "")
        lines.append(f"{name:<42}{v['crops']:>7}{v['seconds']:>9.3f}{v['crops_per_s']:>10,.0f}"
                     f"{v['seconds'] / floor:>9.2f}{rv['crops_per_s'] / v['crops_per_s']:>11.2f}{diff!s:>11}")
    lines.append(f"{'I/O floor: one full src.read()':<42}{'':>7}{floor:>9.3f}{'':>10}{1.0:>9.2f}")
    wf = res["write_floor"]
    lines.append(f"{'write floor: np.save of the chip store':<42}{'':>7}{wf['seconds']:>9.3f}{'':>10}"
                 f"{wf['seconds'] / floor:>9.2f}   ({wf['mb']:.0f} MB)")
    lines.append("")
    lines.append("targets:")
    best_tg = max((v for v in tgs.values() if isinstance(v, dict) and v.get("sampler") == "GridGeoSampler"),
                  key=lambda v: v["crops_per_s"], default=None)
    if best_tg is not None:
        r = rv["crops_per_s"] / best_tg["crops_per_s"]
        lines.append(f"  riotvit >= {TARGET_VS_TORCHGEO:g}x torchgeo (its fastest GridGeoSampler setting): "
                     f"{r:.2f}x  {'MET' if r >= TARGET_VS_TORCHGEO else 'NOT MET'}")
    r = rv["seconds"] / floor
    lines.append(f"  riotvit within {TARGET_VS_FLOOR:g}x of the I/O floor: {r:.2f}x  "
                 f"{'MET' if r <= TARGET_VS_FLOOR else 'NOT MET'}")
    if "memory" in res:
        m = res["memory"]
        lines.append(
            f"  flat peak memory (riotvit tile in a fresh process, VmHWM): {m['raster']['peak_rss_mb']:.0f} MB -> "
            f"{m['raster_x4']['peak_rss_mb']:.0f} MB for 4x the area, ratio {m['ratio_x4']:.2f}  "
            f"{'MET' if m['ratio_x4'] <= TARGET_MEMORY_RATIO else 'NOT MET'}"
        )
        lines.append(
            f"    of which imports {m['raster']['rss_after_imports_mb']:.0f} MB; tiling itself "
            f"{m['raster']['tiling_mb']:.0f} MB -> {m['raster_x4']['tiling_mb']:.0f} MB "
            f"(ratio {m['tiling_ratio_x4']:.2f}); tile times {m['raster']['seconds']:.2f} s -> "
            f"{m['raster_x4']['seconds']:.2f} s for {m['raster']['n_crops']} -> {m['raster_x4']['n_crops']} crops"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child_tile:
        child_tile(args.child_tile, args.child_out, args.overlap, args.date)
        return
    from riotvit.errors import RiotvitError

    try:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            res = run(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="bench_tile_") as tmp:
                res = run(args, Path(tmp))
    except RiotvitError as e:
        sys.exit(f"error: {e}")
    text = report(res)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
        print(f"\nfigures saved to {args.json}")


if __name__ == "__main__":
    main()
