"""``riotvit explain`` / ``predict --explain``: SHAP drivers per cell and image attribution maps.

The riot log-odds of every predicted crop is explained against background crops from the
training data stored in the bundle. Per cell: the SHAP value of every metadata feature and of the
image (all pixels together), the top drivers, and whether that ranking is reliable. With ``late``
(or ``none``) fusion these are exact-efficiency Shapley values computed on the model's head
(:mod:`riotvit.explain.shapley`): exact over all coalitions for few players, else antithetic
permutation sampling; with ``film``/``token`` fusion expected gradients (the estimator of
``shap.GradientExplainer``). Every cell is estimated by two runs with different seeds, and its
ranking is flagged unreliable when the runs disagree on the top driver, the top two are near-tied
or the completeness gap is large (:mod:`riotvit.explain.drivers`). Per ViT patch: the image
attribution (expected gradients), mosaicked over the region into ``drivers.tif``. Globally:
``shap_summary.png`` (beeswarm of the metadata features), ``shap_bar.png`` (mean |SHAP| per
feature and the image), the completeness check and the reliability figures.

Cost: the backbone runs once per crop for the drivers and f(x) (and once per run for the
background crops); with late fusion and a linear riot head the coalitions then run only the
metadata MLP (:mod:`riotvit.explain.additive`). The image attribution interpolates patch tokens
computed once per crop and background crop, and needs one backward pass per sample: it is most
of the cost (``nsamples``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from riotvit.config import StrictModel
from riotvit.errors import ConfigError, suggest
from riotvit.explain.attention import attention_rollout
from riotvit.explain.drivers import assess, driver_columns, from_gradients, reliability_summary
from riotvit.explain.gradients import Attributions, expected_gradients, patch_sums
from riotvit.explain.plots import shap_bar, shap_beeswarm
from riotvit.explain.shapley import Game, permutation_shapley, shapley_values, supports_shapley
from riotvit.publish.mosaic import PatchRaster
from riotvit.publish.qgis_project import LayerSpec
from riotvit.publish.styles import driver_raster_qml, ramp_raster_qml, write_style
from riotvit.train.bundle import Bundle


class ExplainConfig(StrictModel):
    """Options of the explanation."""

    backend: Literal["riotvit", "shap"] = Field("riotvit", description="Image attribution per pixel (drivers.tif): riotvit: expected gradients batched across crops, per ViT patch from patch tokens computed once per crop (same estimator and random draws as shap.GradientExplainer); shap: shap.GradientExplainer itself, crop by crop (the reference).")
    nsamples: int = Field(16, ge=1, description="Background/path samples per crop of the image attribution (shap's nsamples).")
    seed: int = Field(0, description="Random seed of the samples (shap's rseed); the drivers' second run uses seed + 1.")
    top_k: int = Field(3, ge=1, le=10, description="Drivers listed per cell.")
    features: list[str] | None = Field(None, description="Metadata features to report as drivers and in plots (default: all).")
    attention: bool = Field(False, description="Also write attention.tif (attention rollout over the ViT patches).")
    batch_size: int = Field(128, ge=1, description="Path points per forward/backward pass.")
    permutations: int = Field(128, ge=2, description="Late fusion: Shapley permutations per cell and run (antithetic pairs), rounded up to a multiple of 2 x the background crops.")
    max_exact_players: int = Field(10, ge=1, le=14, description="Late fusion: exact Shapley values over all coalitions up to this many players (features + image).")
    gradient_samples: int = Field(64, ge=1, description="film/token fusion: expected-gradient samples per cell and run for the drivers.")


class Explainer:
    """Explains batches of crops during ``predict`` and writes the explanation outputs."""

    def __init__(self, model: str | Path, config: ExplainConfig | None = None):

        self.cfg = config or ExplainConfig()
        self.bundle = Bundle.open(model)
        bg = self.bundle.background()  # raises a clear BundleError when missing
        self.names = list(self.bundle.meta.features.names)
        if self.cfg.features:
            unknown = [f for f in self.cfg.features if f not in self.names]
            if unknown:
                raise ConfigError(f"--features: unknown feature '{unknown[0]}'{suggest(unknown[0], self.names)}; "
                                  f"the model's features are: {', '.join(self.names[:8])}...")
        self.report = list(self.cfg.features or self.names)
        self._bg = bg
        self._values: list[np.ndarray] = []  # (B, F + 1) per batch: the features, then the image
        self._raw: list[np.ndarray] = []
        self._gap: list[np.ndarray] = []
        self._spread: list[np.ndarray] = []
        self._rel_gap: list[np.ndarray] = []
        self._stable: list[np.ndarray] = []
        self._reliable: list[np.ndarray] = []
        self._abs_patch: list[np.ndarray] = []
        self._attn: list[np.ndarray] = []  # a sample of attention values per batch: the style's range
        self._bg_tokens = None  # the background's tokens after the backbone (Shapley drivers), once per run
        self._bg_embed = None  # and its patch embeddings (image attribution), once per run
        self._expected: float | None = None  # mean riot logit over the background
        self.estimator, self.samples = "", 0

    # -- called by the predictor ------------------------------------------------------------
    def begin(self, plan, work: Path, runner, raw_features: pd.DataFrame) -> None:

        self.plan, self.work, self.runner = plan, work, runner
        self.raw = raw_features
        dev = runner.device
        self.bg_img = self._bg["image"].to(dev)
        self.bg_meta = self._bg["meta"].to(dev) if self._bg["meta"].shape[1] else None
        tags = {"units": "SHAP of the riot log-odds, summed over the patch's pixels and bands"}
        self.drivers = PatchRaster(work / "drivers.tif", plan.grid, runner.model.patch_grid, plan.crops, plan.region_grid,
                                   "image_attribution", tags)
        self.attention = None
        if self.cfg.attention:
            self.attention = PatchRaster(work / "attention.tif", plan.grid, runner.model.patch_grid, plan.crops,
                                         plan.region_grid, "attention_rollout", {"units": "share of attention"})

    def add(self, crops: pd.DataFrame, chips: np.ndarray, masks: np.ndarray, meta: np.ndarray | None,
            pred: dict, rows: pd.DataFrame) -> pd.DataFrame:
        import torch

        r = self.runner
        x = r.prepare(chips, masks)
        m = None if meta is None else torch.from_numpy(np.ascontiguousarray(meta)).to(r.device)
        c = self.cfg
        game = None
        if supports_shapley(r.model):  # the crops' and background's tokens, once: the drivers and f(x), E f
            game = Game(r.model, x, m, self.bg_img, self.bg_meta, c.batch_size, bg_tokens=self._bg_tokens)
            self._bg_tokens, self._expected = game.bg_tokens, float(game.fb.mean())
        n_eg = c.nsamples if game is not None else max(c.nsamples, c.gradient_samples)
        if c.backend == "shap":
            att = shap_gradient_explainer(r.model, x, m, self.bg_img, self.bg_meta, n_eg, c.seed)
            patch = patch_sums(att.image, r.model.patch_grid)
        else:  # per patch, from patch tokens computed once per crop and per background crop
            att = expected_gradients(r.model, x, m, self.bg_img, self.bg_meta, n_eg, c.seed, c.batch_size,
                                     per_patch=True, output=None if game is None else game.fx,
                                     expected=self._expected, bg_tokens=self._bg_embed)
            self._bg_embed, self._expected = att.bg_tokens, att.expected
            patch = att.image
        b = patch.shape[0]
        self.drivers.add(crops["col"].to_numpy(), crops["row"].to_numpy(), patch)
        if self.attention is not None:
            att_map = np.asarray(attention_rollout(r.model, x, m))
            self.attention.add(crops["col"].to_numpy(), crops["row"].to_numpy(), att_map)
            self._attn.append(att_map.ravel()[:: max(1, att_map.size // 256)])
        run_a, run_b = self._runs(x, m, att, n_eg, crops, game)
        cand = [self.names.index(f) for f in self.report] + [len(self.names)]
        a = assess(run_a, run_b, cand)
        idx = crops.index.to_numpy()
        raw = self.raw.iloc[idx][self.names].to_numpy(dtype=np.float64) if self.names else np.zeros((b, 0))
        self._values.append(a.values)
        self._raw.append(raw)
        self._gap.append(a.gap)
        self._spread.append(a.spread)
        self._rel_gap.append(a.rel_gap)
        self._stable.append(a.stable)
        self._reliable.append(a.reliable)
        self._abs_patch.append(np.abs(patch).ravel()[:: max(1, patch.size // 256)])
        self.expected = run_a.expected
        return rows.join(driver_columns(a.values, raw, self.names, self.report, self.cfg.top_k, rows.index, a.reliable))

    def _runs(self, x, m, att: Attributions, n_eg: int, crops: pd.DataFrame, game: Game | None):
        """Run A and run B of the drivers (exact Shapley values are computed once and serve as both)."""
        r, c = self.runner, self.cfg
        if game is not None:
            keys = crops["col"].to_numpy().astype(np.int64) * 1_000_003 + crops["row"].to_numpy().astype(np.int64)
            run_a = shapley_values(r.model, x, m, self.bg_img, self.bg_meta, c.permutations, c.seed, keys,
                                   c.max_exact_players, game=game)
            run_b = run_a if run_a.estimator == "exact" else permutation_shapley(game, c.permutations, c.seed + 1, keys)
        else:
            run_a = from_gradients(att, n_eg)
            run_b = from_gradients(expected_gradients(r.model, x, m, self.bg_img, self.bg_meta, n_eg, c.seed + 1,
                                                      c.batch_size, per_patch=True, output=att.output,
                                                      expected=att.expected, bg_tokens=self._bg_embed), n_eg)
        self.estimator, self.samples = run_a.estimator, run_a.samples
        return run_a, run_b

    def finish(self) -> None:

        self.drivers.close()
        if self.attention is not None:
            self.attention.close()
        if not self._values:
            return
        v, raw = np.concatenate(self._values), np.concatenate(self._raw)
        pm, pi = v[:, :-1], v[:, -1]
        keep = [self.names.index(f) for f in self.report]
        if keep:
            shap_beeswarm(pm[:, keep], raw[:, keep], self.report, self.work / "shap_summary.png", self.expected)
        shap_bar(np.column_stack([pm[:, keep], pi]), [*self.report, "image"], self.work / "shap_bar.png")

    def layers(self, work: Path) -> list:

        """The explanation layers, off by default, ramps set from the data (symmetric about 0 for drivers)."""
        lim = float(np.percentile(np.concatenate(self._abs_patch), 98)) if self._abs_patch else 1.0
        lim = lim if lim > 0 else 1.0
        qml = driver_raster_qml(1, lim)
        write_style(work / "drivers.tif", qml)
        out = [LayerSpec(f"image drivers: SHAP of the riot log-odds per patch (±{lim:.3g}, 98th percentile)",
                         "drivers.tif", "raster", "gdal", qml, visible=False, opacity=0.6)]
        if self.attention is not None:
            a = np.concatenate(self._attn) if self._attn else np.zeros(1)
            lo, hi = (float(np.percentile(a, 2)), float(np.percentile(a, 98))) if a.size else (0.0, 1.0)
            aq = ramp_raster_qml(1, lo, hi if hi > lo else lo + 1e-6, "count")
            write_style(work / "attention.tif", aq)
            out.append(LayerSpec(f"attention rollout (share of attention, {lo:.3g}–{hi:.3g}: 2nd–98th percentile)",
                                 "attention.tif", "raster", "gdal", aq, visible=False, opacity=0.6))
        return out

    def summary(self) -> dict:
        """Completeness check, reliability of the drivers and global importances for run.json."""
        if not self._values:
            return {"cells": 0}
        gap, spread = np.concatenate(self._gap), np.concatenate(self._spread)
        v = np.concatenate(self._values)
        imp = dict(zip([*self.names, "image"], np.abs(v).mean(0).round(6).tolist()))
        top = sorted(imp, key=imp.get, reverse=True)[:10]
        shapley = self.estimator != "expected gradients"
        runs = ("one exact computation (deterministic; both runs are it)" if self.estimator == "exact" else
                f"mean of two runs (seeds {self.cfg.seed} and {self.cfg.seed + 1}) of {self.samples} samples each")
        n_img = self.cfg.nsamples if shapley else self.samples
        return {
            "method": (f"drivers: {self.estimator} Shapley values of the riot log-odds over the metadata features and "
                       "the image (one player)" if shapley else
                       f"drivers: expected gradients of the riot log-odds ({self.samples} samples per run)"),
            "estimator": self.estimator,
            "samples": self.samples,
            "runs": runs,
            "background_crops": int(self._bg["image"].shape[0]),
            "image_attribution": f"drivers.tif: expected gradients ({self.cfg.backend}), {n_img} samples per cell",
            "cells": int(gap.size),
            "expected_value": round(float(self.expected), 6),
            **reliability_summary(np.concatenate(self._rel_gap), np.concatenate(self._stable),
                                  np.concatenate(self._reliable)),
            "completeness": {
                "mean_abs_gap": round(float(np.abs(gap).mean()), 6),
                "mean_abs_output_minus_expected": round(float(np.abs(spread).mean()), 6),
                "relative_gap": round(float(np.abs(gap).mean() / max(np.abs(spread).mean(), 1e-12)), 4),
                "note": ("the Shapley values sum to output - expected value exactly (the gap is float error)" if shapley
                         else "sum of SHAP values = output - expected value holds in expectation; the gap is Monte "
                              "Carlo error and shrinks with gradient_samples"),
            },
            "reliability": "a cell's drivers are reliable when its gap is <= 10% of |output - expected|, both runs name "
                           "the same top driver and the top two differ by more than one standard error; the others "
                           "say 'no clear driver'",
            "mean_abs_shap": {k: imp[k] for k in top},
        }


def shap_gradient_explainer(model, images, meta, bg_images, bg_meta, nsamples: int, seed: int):
    """The same attributions with ``shap.GradientExplainer`` (crop by crop): the reference."""
    import shap
    import torch


    class Logit(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, image, meta=None):
            return self.m(image, meta)["riot"].float().unsqueeze(1)

    wrapped = Logit(model)
    has_meta = meta is not None and meta.shape[1] > 0
    data = [bg_images, bg_meta] if has_meta else bg_images
    e = shap.GradientExplainer(wrapped, data, batch_size=50)
    sv = e.shap_values([images, meta] if has_meta else images, nsamples=nsamples, rseed=seed)
    if has_meta:
        si, sm = sv[0], sv[1]
    else:
        si, sm = sv, np.zeros((images.shape[0], 0))
    si = np.asarray(si).reshape(images.shape)
    sm = np.asarray(sm).reshape(images.shape[0], -1)
    with torch.no_grad():
        fx = wrapped(images, meta if has_meta else None)[:, 0].cpu().numpy()
        fb = wrapped(bg_images, bg_meta if has_meta else None)[:, 0].cpu().numpy()
    return Attributions(si, sm, fx, float(fb.mean()))
