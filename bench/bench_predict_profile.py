"""Where ``riotvit predict``'s time goes: decode, warp, cutting, conversion, model, writing.

Runs one prediction in this process with the read-ahead thread replaced by a plain loop, and
charges every moment to exactly one stage (the innermost timed function running): the stages
add up to the wall time. Then runs it again with the model replaced by a no-op that returns
zeros of the right shapes: the data path alone, in crops/s per core.

    python bench/bench_predict_profile.py                      # tiny ViT, 64 px crops (10.5 m from 3 m imagery)
    python bench/bench_predict_profile.py --px 224 --backbone vit_small_patch16_224 --size-km 12 --batch 64   # 224 px
    python bench/bench_predict_profile.py --px 224 --data-path-only --size-km 24   # 224 px data path, 1,296 crops
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import emit_json  # noqa: E402


class Clock:
    """Exclusive time per stage: a stage's time excludes the stages timed inside it."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.stack = ["other"]
        self.last = time.perf_counter()

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        self.t[self.stack[-1]] += now - self.last
        self.stack.append(stage)
        self.last = now

    def exit(self) -> None:
        now = time.perf_counter()
        self.t[self.stack.pop()] += now - self.last
        self.last = now


def timed(clock: Clock, stage: str, fn, parent: str | None = None):
    """``fn`` with its time charged to ``stage`` (only while ``parent`` is the running stage, if given)."""
    @functools.wraps(fn)
    def f(*a, **k):
        if parent is not None and clock.stack[-1] != parent:
            return fn(*a, **k)
        clock.enter(stage)
        try:
            return fn(*a, **k)
        finally:
            clock.exit()
    return f


def timed_gen(clock: Clock, stage: str, fn):
    """A generator function whose every step is charged to ``stage``."""
    @functools.wraps(fn)
    def f(*a, **k):
        it = fn(*a, **k)
        while True:
            clock.enter(stage)
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                clock.exit()
            yield item
    return f


class Inline:
    """Prefetch without the thread: items are made when asked for (so stages do not overlap)."""

    def __init__(self, make, depth: int = 2):
        self._it = iter(make())

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


@contextlib.contextmanager
def instrumented(clock: Clock, noop_model: bool):
    """Patch the stages' functions with timers (and optionally the model with a no-op)."""
    import rasterio.io
    import torch

    import riotvit.predict.blocks as blocks
    import riotvit.predict.predictor as predictor
    import riotvit.predict.runner as runner
    import riotvit.publish.layers as layers
    import riotvit.publish.mosaic as mosaic
    import riotvit.tile.reader as reader
    import riotvit.train.bundle as bundle

    patches = [
        (rasterio.io.DatasetReader, "read", functools.partial(timed, parent="mask + mosaic"),
         "decode (GDAL read)"),
        (reader, "reproject", timed, "warp / resample (GDAL)"),
        (reader, "valid_mask", timed, "mask + mosaic"),
        (reader.GridReader, "read", timed, "mask + mosaic"),
        (blocks, "block_bands", timed_gen, "band assembly"),
        (blocks, "batches", timed_gen, "cut crops + batch"),
        (blocks, "value_sums", timed, "value-range check"),
        (runner.ModelRunner, "prepare", timed, "to float + normalise + resize (+ host→device)"),
        (runner, "dihedral", timed, "test-time views"),
        (runner.ModelRunner, "_combine", timed, "calibrate + combine"),
        (runner.ModelRunner, "predict", timed, "runner: pad, device→host copies"),
        (blocks, "cell_rows", timed, "cell rows (attributes)"),
        (layers.CropsWriter, "add", timed, "write crops (GeoPackage)"),
        (mosaic.RiskRaster, "add", timed, "accumulate risk.tif"),
        (mosaic.RiskRaster, "close", timed, "write COG"),
        (predictor, "write_cells", timed, "cells layers"),
        (predictor, "write_prediction_project", timed, "QGIS project, styles, map.png"),
        (predictor, "write_handout", timed, "QGIS project, styles, map.png"),
        (predictor, "metadata_features", timed, "metadata (history, census)"),
        (predictor, "plan_prediction", timed, "plan"),
        (predictor, "ModelRunner", timed, "load model"),
        (predictor, "prediction_meta", timed, "run.json"),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _w, _s in patches]
    saved.append((predictor, "Prefetch", predictor.Prefetch))
    saved.append((bundle.Bundle, "load_model", bundle.Bundle.load_model))
    try:
        for obj, name, wrap, stage in patches:
            setattr(obj, name, wrap(clock, stage, fn=getattr(obj, name)))
        predictor.Prefetch = Inline
        load = bundle.Bundle.load_model

        def load_model(self, *a, **k):
            m = load(self, *a, **k)
            if noop_model:
                n_types = len(self.meta.targets.type_counts)

                def forward(x, meta=None):  # the heads' shapes, no work
                    z = torch.zeros(x.shape[0], device=x.device)
                    out = {"riot": z, "event_count": z, "fatalities": z}
                    if n_types:
                        out["type_counts"] = torch.zeros(x.shape[0], n_types, device=x.device)
                    return out
                m.forward = forward
            m.forward = timed(clock, "model forward", m.forward)
            return m

        bundle.Bundle.load_model = load_model
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


def profile_once(model: Path, image: Path, bbox: str, out: Path, tta: int, batch: int, noop: bool) -> dict:
    from riotvit.predict.plan import PredictConfig
    from riotvit.predict.predictor import predict
    from riotvit.predict.region import resolve_region
    from riotvit.tile.plan import SourceSpec

    clock = Clock()
    with instrumented(clock, noop):
        t = time.perf_counter()
        clock.last = t
        r = predict(model, resolve_region(bbox, "EPSG:32737"), out, PredictConfig(tta=tta, batch_size=batch),
                    imagery=[SourceSpec(image)])
        wall = time.perf_counter() - t
        clock.t["other"] += time.perf_counter() - clock.last
    stages = {k: round(v, 3) for k, v in sorted(clock.t.items(), key=lambda kv: -kv[1])}
    return {"crops": r.n_predicted, "wall_s": round(wall, 3), "stream_s": round(r.stream_seconds, 3),
            "crops_per_s": round(r.n_predicted / wall, 1), "stream_crops_per_s": round(r.stream_crops_per_s, 1),
            "stages_s": stages, "stages_share": {k: round(v / wall, 3) for k, v in stages.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--px", type=int, default=64)
    ap.add_argument("--backbone", default="vit_tiny_patch16_224")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--tta", type=int, default=1)
    ap.add_argument("--size-km", type=float, default=24.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--data-path-only", action="store_true",
                    help="only the no-op model run (the bundle is a minimal ViT of the same input size: fast to train)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import rasterio
    import torch
    from pipeline_fixtures import make_world

    from riotvit.train.config import TrainConfig
    from riotvit.train.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        w = make_world(tmp, size_km=args.size_km, crop_px=args.px, overlap=None, block_m=2688.0)
        tiny = {"patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3} if "tiny" in args.backbone else {}
        if args.data_path_only:  # the model is replaced by a no-op: only its input size matters
            tiny = {"patch_size": 32, "embed_dim": 32, "depth": 1, "num_heads": 1}
        cfg = TrainConfig.model_validate({"model": {"backbone": args.backbone, "img_size": args.px, **tiny},
                                          "optim": {"epochs": 1}, "eval": {"background_samples": 0},
                                          "data": {"batch_size": 32}})
        model = train(w.tiles, w.samples, tmp / "model", cfg).path
        img = w.sample / "city.tif"
        with rasterio.open(img) as s:
            b = s.bounds
        bbox = f"{b.left},{b.bottom},{b.right},{b.top}"
        runs = {}
        for name, noop in (("with_model", False), ("noop_model", True))[1 if args.data_path_only else 0:]:
            runs[name] = profile_once(model, img, bbox, tmp / f"p_{name}", args.tta, args.batch, noop)
    threads = torch.get_num_threads()
    dp = runs["noop_model"]
    out = {"cpus": os.cpu_count(), "torch_threads": threads, "px": args.px, "backbone": args.backbone,
           "tta": args.tta, "batch": args.batch, "runs": runs,
           "data_path_stream_crops_per_s_per_core": round(dp["stream_crops_per_s"] / os.cpu_count(), 1),
           "load_avg": os.getloadavg()[0]}
    emit_json(out, args.json)


if __name__ == "__main__":
    main()
