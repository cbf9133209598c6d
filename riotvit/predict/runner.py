"""Run a trained bundle on crops: normalise, predict with test-time augmentation, calibrate.

The riot probability is the mean of the calibrated probabilities over the dihedral views of the
crop (flips and 90° rotations; the 8 views are all equally valid images of the ground), and
its **uncertainty** is their standard deviation. Unlike MC-dropout, the views of a crop do not
depend on which other crops share its batch, so a crop gets the same values whatever region
it is predicted in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from riotvit.join.features import BandNorm, MetaScaler
from riotvit.train.augment import dihedral
from riotvit.train.bundle import Bundle
from riotvit.train.calibration import calibrator_from_dict
from riotvit.train.data import chips_to_tensor, normalise
from riotvit.train.loop import autocast


def _bucket(k: int, batch: int) -> int:
    """The smallest power of two >= k, capped at the batch size."""
    return min(batch, 1 << max(0, (k - 1).bit_length()))


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    pad = np.zeros((size - a.shape[0], *a.shape[1:]), dtype=a.dtype)
    return np.concatenate([a, pad])


class ModelRunner:
    """A bundle ready to score crops.

    Args:
        bundle: the opened model bundle.
        device: torch device string.
        tta: number of dihedral views per crop (1, 2, 4 or 8).
        batch_size: crops per forward pass.
        bf16: autocast to bfloat16 (GPU).
    """

    def __init__(self, bundle: Bundle, device: str = "cpu", tta: int = 8, batch_size: int = 256, bf16: bool = False):
        if tta not in (1, 2, 4, 8):
            raise ValueError("tta must be 1, 2, 4 or 8")
        self.bundle = bundle
        self.device = torch.device(device)
        self.model = bundle.load_model(str(self.device))
        self.norm = BandNorm.from_dict(bundle.meta.normalisation.model_dump())
        self.scaler = MetaScaler.from_dict(bundle.meta.features.model_dump())
        self.calibrator = calibrator_from_dict(bundle.meta.calibration)
        self.input_px = bundle.meta.input_px
        self.tta = tta
        self.batch_size = batch_size
        self.bf16 = bf16
        self._mean = torch.tensor(self.norm.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.norm.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    @property
    def bands(self) -> list[str]:
        return list(self.norm.bands)

    @property
    def feature_names(self) -> list[str]:
        return list(self.scaler.names)

    def meta_array(self, features: pd.DataFrame) -> np.ndarray | None:
        """Scale a table of raw metadata features with the bundle's scaler (None if the model has none)."""
        return self.scaler.transform(features) if self.scaler.names else None

    def prepare(self, chips: np.ndarray, masks: np.ndarray) -> torch.Tensor:
        """Raw chips (N, C, H, W) + valid masks (N, H, W) -> normalised model input on the device."""
        x = chips_to_tensor(chips, self.device)
        v = torch.from_numpy(np.ascontiguousarray(masks)).to(self.device)
        return normalise(x, v, self._mean, self._std, self.input_px)

    @torch.no_grad()
    def predict(self, chips: np.ndarray, masks: np.ndarray, meta: np.ndarray | None) -> dict[str, np.ndarray]:
        """Probabilities, expected counts and uncertainty per crop.

        Returns:
            ``riot_probability`` (calibrated, mean over views), ``uncertainty`` (std over views),
            ``expected_events``, ``expected_fatalities``, ``riot_logit`` (mean raw logit) and,
            when the model has them, ``crowd_probs`` (N, K) and ``type_counts`` (N, T).
        """
        n = chips.shape[0]
        out: dict[str, list] = {}
        for a in range(0, n, self.batch_size):
            k = min(self.batch_size, n - a)
            size = _bucket(k, self.batch_size)  # a few fixed shapes: kernels are reused, not rebuilt
            x = self.prepare(_pad(chips[a : a + k], size), _pad(masks[a : a + k], size))
            m = None if meta is None else torch.from_numpy(_pad(np.ascontiguousarray(meta[a : a + k]), size)).to(self.device)
            views = [dihedral(x, torch.full((x.shape[0],), k, device=self.device)) if k else x for k in range(self.tta)]
            res = {}
            for v in views:
                with autocast(self.device, self.bf16):
                    o = self.model(v, m)
                for name, t in o.items():
                    if name != "features":
                        res.setdefault(name, []).append(t.float().cpu().numpy()[:k])
            z = np.stack(res["riot"])  # (views, b)
            p = np.stack([self.calibrator.transform(zz) for zz in z])
            out.setdefault("riot_probability", []).append(p.mean(0))
            out.setdefault("uncertainty", []).append(p.std(0))
            out.setdefault("riot_logit", []).append(z.mean(0))
            if "event_count" in res:
                out.setdefault("expected_events", []).append(np.exp(np.clip(np.stack(res["event_count"]), -20, 20)).mean(0))
            if "fatalities" in res:
                out.setdefault("expected_fatalities", []).append(np.exp(np.clip(np.stack(res["fatalities"]), -20, 20)).mean(0))
            if "crowd_size" in res:
                pg = 1 / (1 + np.exp(-np.stack(res["crowd_size"]).mean(0)))
                cum = np.concatenate([np.ones_like(pg[:, :1]), pg, np.zeros_like(pg[:, :1])], axis=1)
                pr = np.clip(cum[:, :-1] - cum[:, 1:], 0, None)
                out.setdefault("crowd_probs", []).append(pr / np.clip(pr.sum(1, keepdims=True), 1e-12, None))
            if "type_counts" in res:
                out.setdefault("type_counts", []).append(np.exp(np.clip(np.stack(res["type_counts"]), -20, 20)).mean(0))
        return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}
