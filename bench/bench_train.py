"""Benchmark training throughput: riotvit's full loop vs the same model fed from device memory.

The full loop is ``riotvit.train.loop.fit`` reading the tile set's chip store (cache mode
``auto``: chips copied to the device once, then gathered there per batch), converting,
augmenting and normalising on the device. The model-only figure trains the same model, loss
and optimiser on batches already in device memory (no data work at all): the ceiling. The two
alternate (``--rounds``) and the medians are compared.

    python bench/bench_train.py                                  # CPU: tiny ViT, 64 px
    python bench/bench_train.py --backbone vit_small_patch16_224 --px 224 --batch 256 --precision bf16 --compile
                                                                 # GPU (the issue's configuration)
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="vit_tiny_patch16_224")
    ap.add_argument("--px", type=int, default=64, help="crop pixels (tile set and model input)")
    ap.add_argument("--tiny", action="store_true", default=None, help="tiny widths (default on CPU)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3, help="full-loop epochs; the first is warm-up")
    ap.add_argument("--size-km", type=float, default=12.0)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of full loop and model alone (medians)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    from riotvit.config import build_config
    from riotvit.join.features import BandNorm, target_arrays
    from riotvit.join.stage import read_samples
    from riotvit.tile.tileset import TileSet
    from riotvit.train.config import TrainConfig
    from riotvit.train.data import ChipBatcher
    from riotvit.train.loop import autocast, fit, make_optimizer
    from riotvit.train.models import create_model
    from riotvit.train.models.losses import MultiTaskLoss

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    bf16 = args.precision == "bf16" or (args.precision == "auto" and cuda)
    if args.threads:
        torch.set_num_threads(args.threads)
    tiny = args.tiny if args.tiny is not None else not cuda
    from pipeline_fixtures import make_world

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        w = make_world(Path(d), size_km=args.size_km, crop_px=args.px, overlap=0.5, block_m=2688.0)
        print(f"tile set + samples made in {time.perf_counter() - t:.1f} s")
        model_cfg = {"backbone": args.backbone, "img_size": args.px, "global_pool": "avg", "fusion": "late"}
        if tiny:
            model_cfg.update(patch_size=8, embed_dim=96, depth=4, num_heads=3)
        cfg = TrainConfig.model_validate({
            "model": model_cfg, "data": {"batch_size": args.batch, "cache": "auto"},
            "optim": {"epochs": args.epochs, "patience": 99}, "threads": args.threads,
            "compile": "on" if args.compile else "off", "deterministic": False,
        })
        cfg = build_config(TrainConfig, None, cfg.model_dump())
        ts = TileSet.open(w.tiles)
        df, smeta = read_samples(w.samples)
        feats = smeta["features"]
        meta = np.nan_to_num(df[feats].to_numpy(np.float32))
        types = smeta["type_counts"]
        targets = target_arrays(df, types)
        rows = np.arange(len(df))
        riot = df["riot"].to_numpy(np.float32)

        def build():
            torch.manual_seed(0)
            m = create_model(cfg.model, ts.bands, len(feats), len(types)).to(dev)
            lf = MultiTaskLoss(cfg.model, cfg.loss).to(dev)
            return m, lf, (torch.compile(m) if args.compile else None)

        # the full loop and the model alone, alternating (rounds), so both see the same machine state:
        # on a shared 2-core machine one measured after the other differed by up to 25% either way
        batcher = ChipBatcher(ts, df["chip_index"].to_numpy(), meta, targets, BandNorm.from_stats(ts.bands, ts.stats),
                              dev, args.px, "auto")
        m_full, lf_full, comp_full = build()
        m, lf, comp = build()
        run = comp or m
        opt = make_optimizer(list(m.parameters()) + list(lf.parameters()), cfg)
        x = torch.randn(args.batch, len(ts.bands), args.px, args.px, device=dev)
        mt = torch.from_numpy(meta[: args.batch]).to(dev)
        tg = {k: torch.from_numpy(np.asarray(v[: args.batch], np.float32)).to(dev) for k, v in targets.items()}
        steps = max(10, len(df) // args.batch)

        def step():
            with autocast(dev, bf16):
                out = run(x, mt)
            loss = lf({k: v.float() for k, v in out.items()}, tg)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def model_only() -> float:
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(steps):
                step()
            if cuda:
                torch.cuda.synchronize()
            return steps * args.batch / (time.perf_counter() - t)

        for _ in range(3):
            step()
        fulls, onlys = [], []
        with tempfile.TemporaryDirectory() as wd:
            # fit() over every crop as training data (validation on a small slice, not timed); its first
            # epoch warms up, later ones are the figures
            fr = fit(m_full, lf_full, batcher, rows, rows[:256], riot, cfg, Path(wd), "bench", bf16=bf16,
                     compiled=comp_full)
            fulls += fr.history["images_per_s"].iloc[1:].tolist() or fr.history["images_per_s"].tolist()
            onlys.append(model_only())
            for r in range(args.rounds - 1):
                fr = fit(m_full, lf_full, batcher, rows, rows[:256], riot, cfg.model_copy(
                    update={"optim": cfg.optim.model_copy(update={"epochs": 2})}), Path(wd) / f"r{r}", "bench",
                    bf16=bf16, compiled=comp_full)
                fulls.append(float(fr.history["images_per_s"].iloc[-1]))
                onlys.append(model_only())
        batcher.close()
        full, only = float(np.median(fulls)), float(np.median(onlys))
    out = {
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)",
        "backbone": args.backbone, "tiny": tiny, "px": args.px, "batch": args.batch, "bf16": bf16,
        "compile": args.compile, "crops": len(df), "cache": batcher.cache,
        "full_loop_img_per_s": round(full, 1), "model_only_img_per_s": round(only, 1),
        "full_over_model_only": round(full / only, 3), "torch": torch.__version__,
        "full_loop_rounds": [round(v, 1) for v in fulls], "model_only_rounds": [round(v, 1) for v in onlys],
        "load_avg": os.getloadavg()[0],
    }
    for k, v in out.items():
        print(f"{k:>22}: {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
