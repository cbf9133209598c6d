"""Benchmark explanations: riotvit vs ``shap.GradientExplainer``, same model, crops and background, one run.

A demo-like model (configs/train_tiny.yaml's ViT, late fusion, trained one epoch on the synthetic
city) explains the same crops against the same background crops four ways, side by side:

- ``shap``: ``shap.GradientExplainer`` (expected gradients), crop by crop: the reference tool.
- ``riotvit players``: the same estimator over the players {metadata features, image} with the
  backbone run once per crop (:mod:`riotvit.explain.players`): the metadata paths run only the
  fusion MLP, the image player is its converged value.
- ``riotvit image map``: the per-patch image attribution of ``drivers.tif`` (expected gradients
  from patch tokens computed once per crop and background crop, path points of all crops batched);
  ``riotvit image map (pixels)`` is the same through per-pixel gradients, as before.
- ``riotvit Shapley drivers``: what ``predict --explain`` reports per cell for late fusion
  (antithetic permutations on the additive head), and the same on the full head (before).

Accuracy: the correlation of each with a converged reference (expected gradients with
``--reference`` samples through the whole model, and Shapley values with ``--shapley-reference``
permutations). ``--stage`` also times ``predict`` with and without the demo's explanations.

    python bench/bench_explain.py                       # CPU: 32 crops, nsamples 50, reference 400
    python bench/bench_explain.py --crops 256 --batch 1024   # GPU
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]), 4)


def _timed(fn, sync):
    t = time.perf_counter()
    r = fn()
    sync()
    return r, time.perf_counter() - t


def _stage(world, model: Path, out: Path) -> dict:
    """predict over the city with and without the demo's explanations (nsamples 16, attention)."""
    import rasterio

    from riotvit.explain.stage import ExplainConfig, Explainer
    from riotvit.predict.plan import PredictConfig
    from riotvit.predict.predictor import predict
    from riotvit.predict.region import resolve_region
    from riotvit.tile.plan import SourceSpec

    with rasterio.open(world.sample / "city.tif") as s:
        b, crs = s.bounds, s.crs.to_string()
    region = resolve_region(f"{b.left},{b.bottom},{b.right},{b.top}", crs)
    res = {}
    for name, ex in (("predict", None), ("predict_explain", Explainer(model, ExplainConfig(nsamples=16, attention=True)))):
        t = time.perf_counter()
        r = predict(model, region, out / name, PredictConfig(tta=1), imagery=[SourceSpec(world.sample / "city.tif")],
                    explain=ex)
        res[f"{name}_crops_per_s"] = round(r.n_predicted / (time.perf_counter() - t), 2)
        res["stage_crops"] = r.n_predicted
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=32, help="crops explained (default 32)")
    ap.add_argument("--nsamples", type=int, default=50, help="expected-gradient samples per crop, as shap's nsamples")
    ap.add_argument("--reference", type=int, default=400, help="samples of the converged expected gradients (0 = skip)")
    ap.add_argument("--permutations", type=int, default=128, help="Shapley permutations per crop and run (as predict)")
    ap.add_argument("--shapley-reference", type=int, default=4096, help="permutations of the converged Shapley values")
    ap.add_argument("--batch", type=int, default=256, help="path points per forward/backward pass")
    ap.add_argument("--stage", action=argparse.BooleanOptionalAction, default=True,
                    help="also time predict with and without explanations (default on)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()
    import torch
    import yaml
    from pipeline_fixtures import make_world, tiny_config

    from riotvit.explain.gradients import expected_gradients, patch_sums
    from riotvit.explain.players import player_expected_gradients
    from riotvit.explain.shapley import Game, permutation_shapley
    from riotvit.explain.stage import shap_gradient_explainer
    from riotvit.join.stage import read_samples
    from riotvit.predict.runner import ModelRunner
    from riotvit.tile.tileset import TileSet
    from riotvit.train.bundle import Bundle
    from riotvit.train.trainer import train

    dev = "cuda" if torch.cuda.is_available() else "cpu"

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    demo = yaml.safe_load((ROOT / "configs" / "train_tiny.yaml").read_text())["model"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        w = make_world(tmp, size_km=8.0, crop_px=64, overlap=0.0, history_event_types=["Riots"])
        cfg = tiny_config(epochs=1, img=64, model={k: demo[k] for k in ("embed_dim", "depth", "num_heads", "global_pool",
                                                                       "meta_hidden")},
                          eval={"background_samples": 64})
        model = train(w.tiles, w.samples, tmp / "m", cfg).path
        runner = ModelRunner(Bundle.open(model), dev, tta=1)
        net = runner.model
        bg = Bundle.open(model).background()
        bgi, bgm = bg["image"].to(dev), bg["meta"].to(dev)
        df, _ = read_samples(w.samples)
        rows = df.sample(min(args.crops, len(df)), random_state=0)
        chips, masks = TileSet.open(w.tiles).read(rows["chip_index"].to_numpy())
        x = runner.prepare(chips, masks)
        m = torch.from_numpy(np.nan_to_num(runner.meta_array(rows))).to(dev)
        n, ns = x.shape[0], args.nsamples

        def patches(img):  # per-pixel (B, C, H, W) -> per patch (B, gh, gw)
            return patch_sums(img, net.patch_grid)

        def players(meta, image_total):
            return np.concatenate([np.ravel(meta), np.ravel(image_total)])

        expected_gradients(net, x[:2], m[:2], bgi, bgm, nsamples=2)  # warm-up
        sh, t_shap = _timed(lambda: shap_gradient_explainer(net, x, m, bgi, bgm, ns, 1), sync)

        def fast_players():
            return player_expected_gradients(Game(net, x, m, bgi, bgm, args.batch), ns, seed=1)

        pv, t_players = _timed(fast_players, sync)
        old, t_old = _timed(lambda: expected_gradients(net, x, m, bgi, bgm, ns, seed=1, batch_size=args.batch), sync)

        def image_map():
            game = Game(net, x, m, bgi, bgm, args.batch)  # the explainer's f(x) and E f come with the drivers' game
            return expected_gradients(net, x, m, bgi, bgm, ns, seed=1, batch_size=args.batch, per_patch=True,
                                      output=game.fx, expected=float(game.fb.mean()))

        new, t_map = _timed(image_map, sync)
        res = {"device": dev if dev == "cpu" else torch.cuda.get_device_name(), "cpus": os.cpu_count(),
               "crops": n, "nsamples": ns, "background_crops": int(bgi.shape[0]), "features": int(m.shape[1]),
               "shap_crops_per_s": round(n / t_shap, 2),
               "riotvit_players_crops_per_s": round(n / t_players, 2),
               "riotvit_image_map_crops_per_s": round(n / t_map, 2),
               "riotvit_image_map_pixels_crops_per_s": round(n / t_old, 2),
               "speedup_players_vs_shap": round(t_shap / t_players, 2),
               "speedup_image_map_vs_shap": round(t_shap / t_map, 2),
               "speedup_image_map_vs_pixels": round(t_old / t_map, 2),
               "same_values": {"players_meta_vs_shap_max_abs": float(np.abs(pv.values[:, :-1] - sh.meta).max()),
                               "image_map_vs_shap_corr": _corr(new.image, patches(sh.image)),
                               "image_map_vs_pixels_max_abs": float(np.abs(new.image - patches(old.image)).max())}}
        if args.reference:
            ref = expected_gradients(net, x, m, bgi, bgm, args.reference, seed=7, batch_size=args.batch, per_patch=True)
            rv = players(ref.meta, ref.image.reshape(n, -1).sum(1))
            res["converged_samples"] = args.reference
            res["corr_players_to_converged"] = {
                f"shap@{ns}": _corr(players(sh.meta, sh.image.reshape(n, -1).sum(1)), rv),
                f"riotvit_players@{ns}": _corr(players(pv.values[:, :-1], pv.values[:, -1]), rv),
                f"riotvit_image_map@{ns}": _corr(players(new.meta, new.image.reshape(n, -1).sum(1)), rv)}
            res["corr_image_map_to_converged"] = {f"shap@{ns}": _corr(patches(sh.image), ref.image),
                                                  f"riotvit@{ns}": _corr(new.image, ref.image)}
        keys = np.arange(n)
        games = {}
        for name, fast in (("fast", True), ("full", False)):  # the tokens once (shared cost), then the two runs
            games[name], t_game = _timed(lambda fast=fast: Game(net, x, m, bgi, bgm, args.batch, fast=fast), sync)
            g = games[name]
            runs, t_runs = _timed(lambda g=g: [permutation_shapley(g, args.permutations, s, keys) for s in (0, 1)], sync)
            games[name] = (runs, t_game, t_runs)
        (fa, fb), t_game, t_fast = games["fast"]
        (sa, _), _, t_slow = games["full"]
        sv = {"permutations_per_run": fa.samples, "runs": 2, "tokens_s": round(t_game, 3),
              "crops_per_s": round(n / (t_game + t_fast), 2), "runs_only_crops_per_s": round(n / t_fast, 2),
              "full_head_runs_only_crops_per_s": round(n / t_slow, 2), "speedup_runs_vs_full_head": round(t_slow / t_fast, 2),
              "max_abs_diff_vs_full_head": float(np.abs(fa.values - sa.values).max()),
              "completeness_max_abs_gap": float(np.abs(fa.gap).max())}
        if args.shapley_reference:
            conv = permutation_shapley(Game(net, x, m, bgi, bgm, args.batch), args.shapley_reference, 99, keys)
            both = (fa.values + fb.values) / 2
            sv["converged_permutations"] = conv.samples
            sv["corr_to_converged"] = _corr(both, conv.values)
            sv["corr_to_converged_metadata_only"] = _corr(both[:, :-1], conv.values[:, :-1])
            sv["corr_to_converged_one_run_metadata_only"] = _corr(fa.values[:, :-1], conv.values[:, :-1])
        res["shapley_drivers"] = sv
        if args.stage:
            res.update(_stage(w, model, tmp / "stage"))
    res["load_avg"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
