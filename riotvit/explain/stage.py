"""``riotvit explain`` / ``predict --explain``: SHAP drivers per cell and image attribution maps.

For every predicted crop the riot log-odds is explained with expected gradients (the estimator
of ``shap.GradientExplainer``) over two inputs, the image and the metadata, against background
crops from the training data stored in the bundle. Per cell: the SHAP value of every metadata
feature and of the image (all pixels together), and the top drivers. Per ViT patch: the image
attribution, mosaicked over the region into ``drivers.tif``. Globally: ``shap_summary.png``
(beeswarm of the metadata features), ``shap_bar.png`` (mean |SHAP| per feature and the image)
and the completeness check (sum of SHAP values vs model output minus the expected value).
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
from riotvit.explain.gradients import Attributions, expected_gradients
from riotvit.explain.plots import shap_bar, shap_beeswarm
from riotvit.publish.mosaic import PatchRaster
from riotvit.publish.qgis_project import LayerSpec
from riotvit.publish.styles import driver_raster_qml, raster_pseudocolor_qml, write_style
from riotvit.train.bundle import Bundle


class ExplainConfig(StrictModel):
    """Options of the explanation."""

    backend: Literal["riotvit", "shap"] = Field("riotvit", description="riotvit: expected gradients batched across crops (same estimator and random draws as shap.GradientExplainer); shap: shap.GradientExplainer itself, crop by crop (the reference).")
    nsamples: int = Field(16, ge=1, description="Background/path samples per crop (shap's nsamples).")
    seed: int = Field(0, description="Random seed of the samples (shap's rseed).")
    top_k: int = Field(3, ge=1, le=10, description="Drivers listed per cell.")
    features: list[str] | None = Field(None, description="Metadata features to report as drivers and in plots (default: all).")
    attention: bool = Field(False, description="Also write attention.tif (attention rollout over the ViT patches).")
    batch_size: int = Field(128, ge=1, description="Path points per forward/backward pass.")


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
        self._phi_meta: list[np.ndarray] = []
        self._raw: list[np.ndarray] = []
        self._phi_img: list[np.ndarray] = []
        self._gap: list[np.ndarray] = []
        self._spread: list[np.ndarray] = []
        self._abs_patch: list[np.ndarray] = []

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
        if self.cfg.backend == "shap":
            att = shap_gradient_explainer(r.model, x, m, self.bg_img, self.bg_meta, self.cfg.nsamples, self.cfg.seed)
        else:
            att = expected_gradients(r.model, x, m, self.bg_img, self.bg_meta, self.cfg.nsamples, self.cfg.seed,
                                     self.cfg.batch_size)
        gh, gw = r.model.patch_grid
        b, _, h, w = att.image.shape
        patch = att.image.sum(1).reshape(b, gh, h // gh, gw, w // gw).sum((2, 4))
        self.drivers.add(crops["col"].to_numpy(), crops["row"].to_numpy(), patch)
        if self.attention is not None:

            self.attention.add(crops["col"].to_numpy(), crops["row"].to_numpy(), attention_rollout(r.model, x, m))
        img_total = att.image.reshape(b, -1).sum(1)
        idx = crops.index.to_numpy()
        raw = self.raw.iloc[idx][self.names].to_numpy(dtype=np.float64) if self.names else np.zeros((b, 0))
        self._phi_meta.append(att.meta)
        self._raw.append(raw)
        self._phi_img.append(img_total)
        self._gap.append(att.gap)
        self._spread.append(att.output - att.expected)
        self._abs_patch.append(np.abs(patch).ravel()[:: max(1, patch.size // 256)])
        self.expected = att.expected
        return rows.join(driver_columns(att.meta, img_total, raw, self.names, self.report, self.cfg.top_k, rows.index))

    def finish(self) -> None:

        self.drivers.close()
        if self.attention is not None:
            self.attention.close()
        if not self._phi_meta:
            return
        pm, raw, pi = np.concatenate(self._phi_meta), np.concatenate(self._raw), np.concatenate(self._phi_img)
        keep = [self.names.index(f) for f in self.report]
        if keep:
            shap_beeswarm(pm[:, keep], raw[:, keep], self.report, self.work / "shap_summary.png", self.expected)
        shap_bar(np.column_stack([pm[:, keep], pi]), [*self.report, "image"], self.work / "shap_bar.png")

    def layers(self, work: Path) -> list:

        lim = float(np.percentile(np.concatenate(self._abs_patch), 98)) if self._abs_patch else 1.0
        lim = lim if lim > 0 else 1.0
        qml = driver_raster_qml(1, lim)
        write_style(work / "drivers.tif", qml)
        out = [LayerSpec("drivers (image attribution, SHAP per patch)", "drivers.tif", "raster", "gdal", qml, visible=False)]
        if self.attention is not None:
            aq = raster_pseudocolor_qml(1, 0.0, 2.0 / np.prod(self.runner.model.patch_grid), "risk")
            write_style(work / "attention.tif", aq)
            out.append(LayerSpec("attention rollout", "attention.tif", "raster", "gdal", aq, visible=False))
        return out

    def summary(self) -> dict:
        """Completeness check and global importances for run.json."""
        if not self._phi_meta:
            return {"cells": 0}
        gap, spread = np.concatenate(self._gap), np.concatenate(self._spread)
        pm, pi = np.concatenate(self._phi_meta), np.concatenate(self._phi_img)
        imp = dict(zip(self.names, np.abs(pm).mean(0).round(6).tolist()))
        imp["image"] = round(float(np.abs(pi).mean()), 6)
        top = sorted(imp, key=imp.get, reverse=True)[:10]
        return {
            "method": f"expected gradients ({self.cfg.backend}), {self.cfg.nsamples} samples per cell, "
                      f"{self._bg['image'].shape[0]} background crops, output: riot log-odds",
            "cells": int(gap.size),
            "expected_value": round(float(self.expected), 6),
            "completeness": {
                "mean_abs_gap": round(float(np.abs(gap).mean()), 6),
                "mean_abs_output_minus_expected": round(float(np.abs(spread).mean()), 6),
                "relative_gap": round(float(np.abs(gap).mean() / max(np.abs(spread).mean(), 1e-12)), 4),
                "note": "sum of SHAP values = output - expected value holds in expectation; the gap is Monte Carlo "
                        "error and shrinks with --nsamples",
            },
            "mean_abs_shap": {k: imp[k] for k in top},
        }


def driver_columns(phi_meta: np.ndarray, phi_img: np.ndarray, raw: np.ndarray, names: list[str], report: list[str],
                   top_k: int, index) -> pd.DataFrame:
    """SHAP columns per feature and the top ``top_k`` drivers (name, effect, value, shap)."""
    cols = {"shap_image": np.round(phi_img.astype(np.float64), 6)}
    for j, n in enumerate(names):
        cols[f"shap_{n}"] = np.round(phi_meta[:, j].astype(np.float64), 6)
    cand = [names.index(f) for f in report]
    vals = np.column_stack([phi_meta[:, cand], phi_img]) if cand else phi_img[:, None]
    labels = [names[j] for j in cand] + ["image"]
    order = np.argsort(-np.abs(vals), axis=1, kind="stable")[:, :top_k]
    for k in range(min(top_k, vals.shape[1])):
        sel = order[:, k]
        v = vals[np.arange(vals.shape[0]), sel]
        cols[f"driver_{k + 1}"] = np.array(labels, dtype=object)[sel]
        cols[f"driver_{k + 1}_effect"] = np.where(v >= 0, "raises risk", "lowers risk")
        raw_v = np.array([raw[i, cand[s]] if s < len(cand) else np.nan for i, s in enumerate(sel)], dtype=np.float64)
        cols[f"driver_{k + 1}_value"] = np.round(raw_v, 6)
        cols[f"driver_{k + 1}_shap"] = np.round(v.astype(np.float64), 6)
    return pd.DataFrame(cols, index=index)


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
