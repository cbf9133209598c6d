"""Benchmark ``riotvit predict``: km²/s for a region, next to the model-only inference ceiling,
and peak memory as the region grows 4x.

Builds the synthetic city by code, trains a model for one epoch (speed does not depend on the
weights), then predicts a region and its 4x larger version in fresh processes (peak RSS from
/proc's VmHWM), and times the model's forward pass alone on batches already in memory.

    python bench/bench_predict.py                      # CPU: tiny ViT, 64 px crops (10.5 m GSD)
    python bench/bench_predict.py --px 224 --backbone vit_small_patch16_224 --batch 1024   # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import emit_json  # noqa: E402

CHILD = r"""
import json, sys, time, resource
from pathlib import Path
from riotvit.predict.plan import PredictConfig
from riotvit.predict.predictor import predict
from riotvit.tile.plan import SourceSpec
from riotvit.predict.region import resolve_region
model, image, bbox, out, tta, batch = sys.argv[1:7]
t = time.perf_counter()
r = predict(model, resolve_region(bbox, "EPSG:32737"), out, PredictConfig(tta=int(tta), batch_size=int(batch)),
            imagery=[SourceSpec(Path(image))])
dt = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"crops": r.n_predicted, "km2": r.area_km2, "seconds": dt, "stream_seconds": r.stream_seconds,
                  "peak_mb": hwm, "device": r.device}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--px", type=int, default=64)
    ap.add_argument("--backbone", default="vit_tiny_patch16_224")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size-km", type=float, default=24.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import rasterio
    import torch
    from pipeline_fixtures import make_world

    from riotvit.train.bundle import Bundle
    from riotvit.train.config import TrainConfig
    from riotvit.train.trainer import train

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        w = make_world(tmp, size_km=args.size_km, crop_px=args.px, overlap=None, block_m=2688.0)
        tiny = {"patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3} if "tiny" in args.backbone else {}
        cfg = TrainConfig.model_validate({"model": {"backbone": args.backbone, "img_size": args.px, **tiny},
                                          "optim": {"epochs": 1}, "eval": {"background_samples": 0}})
        model = train(w.tiles, w.samples, tmp / "model", cfg).path
        img = w.sample / "city.tif"
        with rasterio.open(img) as s:
            b = s.bounds
        cx, cy = (b.left + b.right) / 2, (b.bottom + b.top) / 2
        half = (b.right - b.left) / 4
        small = f"{cx - half},{cy - half},{cx + half},{cy + half}"
        big = f"{b.left},{b.bottom},{b.right},{b.top}"
        runs = {}
        for name, bbox in (("region", small), ("region_4x", big)):
            for tta in (1, 8):
                out = subprocess.run([sys.executable, "-c", CHILD, str(model), str(img), bbox, str(tmp / f"p_{name}_{tta}"),
                                      str(tta), str(args.batch)], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["crops_per_s"] = r["crops"] / r["seconds"]
                r["km2_per_s"] = r["km2"] / r["seconds"]
                r["stream_crops_per_s"] = r["crops"] / r["stream_seconds"]
                r["stream_km2_per_s"] = r["km2"] / r["stream_seconds"]
                runs[f"{name}_tta{tta}"] = r
        # model-only ceiling: the same model's forward pass on batches already in memory
        b = Bundle.open(model)
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        m = b.load_model(dev)
        x = torch.randn(args.batch, len(b.meta["bands"]), args.px, args.px, device=dev)
        meta = torch.randn(args.batch, len(b.meta["features"]["names"]), device=dev)
        with torch.no_grad():
            for _ in range(2):
                m(x, meta)
            n = 0
            t = time.perf_counter()
            while time.perf_counter() - t < 5:
                m(x, meta)
                n += args.batch
            if dev == "cuda":
                torch.cuda.synchronize()
            ceiling = n / (time.perf_counter() - t)
    km2_per_crop = 0.672**2
    out = {"device": dev if dev == "cpu" else torch.cuda.get_device_name(), "cpus": os.cpu_count(), "px": args.px,
           "backbone": args.backbone, "model_only_crops_per_s": round(ceiling, 1),
           "model_only_km2_per_s": round(ceiling * km2_per_crop, 2), "runs": runs,
           "share_of_ceiling_tta1_stream": round(runs["region_4x_tta1"]["stream_crops_per_s"] / ceiling, 3),
           "share_of_ceiling_tta1_end_to_end": round(runs["region_4x_tta1"]["crops_per_s"] / ceiling, 3),
           "peak_mb_ratio_4x": round(runs["region_4x_tta1"]["peak_mb"] / runs["region_tta1"]["peak_mb"], 3),
           "load_avg": os.getloadavg()[0]}
    emit_json(out, args.json)


if __name__ == "__main__":
    main()
