"""Benchmark explanations: riotvit's batched expected gradients vs ``shap.GradientExplainer``.

Both compute the same estimator (expected gradients of the riot log-odds over the image and the
metadata); riotvit batches the path points of many crops into large forward/backward passes,
shap runs one batch of ``nsamples`` points per crop. Same crops, same model, same background,
same sample count and seed: crops/s for each, the correlation of their values, and the
completeness gap. Also: how close each gets to a converged reference (``--reference`` samples).

    python bench/bench_explain.py                 # CPU, tiny ViT at 64 px, nsamples 50
    python bench/bench_explain.py --crops 256     # GPU: more crops, larger batches
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
    ap.add_argument("--crops", type=int, default=32)
    ap.add_argument("--nsamples", type=int, default=50)
    ap.add_argument("--reference", type=int, default=400, help="samples of the converged reference (0 = skip)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch
    from pipeline_fixtures import make_world, tiny_config

    from riotvit.explain.gradients import expected_gradients
    from riotvit.explain.stage import shap_gradient_explainer
    from riotvit.join.stage import read_samples
    from riotvit.predict.runner import ModelRunner
    from riotvit.tile.tileset import TileSet
    from riotvit.train.bundle import Bundle
    from riotvit.train.trainer import train

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        w = make_world(tmp, size_km=8.0, crop_px=64)
        model = train(w.tiles, w.samples, tmp / "m", tiny_config(epochs=1, img=64)).path
        runner = ModelRunner(Bundle.open(model), dev, tta=1)
        bg = Bundle.open(model).background()
        bgi, bgm = bg["image"].to(dev), bg["meta"].to(dev)
        df, _ = read_samples(w.samples)
        rows = df.sample(min(args.crops, len(df)), random_state=0)
        chips, masks = TileSet.open(w.tiles).read(rows["chip_index"].to_numpy())
        x = runner.prepare(chips, masks)
        m = torch.from_numpy(np.nan_to_num(runner.meta_array(rows))).to(dev)
        n = x.shape[0]

        def timed(fn):
            fn_small = fn  # warm-up on 2 crops
            t = time.perf_counter()
            r = fn_small()
            if dev == "cuda":
                torch.cuda.synchronize()
            return r, time.perf_counter() - t

        expected_gradients(runner.model, x[:2], m[:2], bgi, bgm, nsamples=4)
        ours, t_ours = timed(lambda: expected_gradients(runner.model, x, m, bgi, bgm, args.nsamples, seed=1,
                                                        batch_size=args.batch))
        ref_shap, t_shap = timed(lambda: shap_gradient_explainer(runner.model, x, m, bgi, bgm, args.nsamples, 1))
        res = {"device": dev if dev == "cpu" else torch.cuda.get_device_name(), "cpus": os.cpu_count(), "crops": n,
               "nsamples": args.nsamples, "riotvit_crops_per_s": round(n / t_ours, 2),
               "shap_crops_per_s": round(n / t_shap, 2), "speedup": round(t_shap / t_ours, 2),
               "corr_meta": float(np.corrcoef(ours.meta.ravel(), ref_shap.meta.ravel())[0, 1]),
               "corr_image": float(np.corrcoef(ours.image.ravel(), ref_shap.image.ravel())[0, 1]),
               "completeness_relative_gap": float(np.abs(ours.gap).mean() / np.abs(ours.output - ours.expected).mean())}
        if args.reference:
            conv, _ = timed(lambda: expected_gradients(runner.model, x, m, bgi, bgm, args.reference, seed=7,
                                                       batch_size=args.batch))

            def vec(a):
                return np.concatenate([a.meta.ravel(), a.image.reshape(n, -1).sum(1)])

            res["corr_to_converged"] = {
                f"riotvit@{args.nsamples}": float(np.corrcoef(vec(ours), vec(conv))[0, 1]),
                f"shap@{args.nsamples}": float(np.corrcoef(vec(ref_shap), vec(conv))[0, 1]),
            }
            res["converged_samples"] = args.reference
            res["converged_relative_gap"] = float(np.abs(conv.gap).mean() / np.abs(conv.output - conv.expected).mean())
    res["load_avg"] = os.getloadavg()[0]
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
