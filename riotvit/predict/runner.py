"""Run a trained bundle on crops: normalise, predict (ensemble, optional test-time views), calibrate.

A rolling-origin bundle holds an **ensemble**: one model per held-out block fold of its last
test origin, each with its stacker on the history + census log-odds and its calibration
(:mod:`riotvit.train.forecast`). The riot probability is the members' mean and the
**uncertainty** their standard deviation; expected riots get a 10-90% interval from the count
head's predictive distribution (negative binomial with the dispersion fitted on validation).
When validation found that the image does not help, the members' stackers ignore the image and
the forecast is history + census, recalibrated.

Dihedral views (flips and 90° rotations, ``tta``) can be averaged per model; their spread is
reported as ``view_spread``, never as the uncertainty. A single-model bundle (trained at one
date) uses its views' spread as before. Crops get the same values whatever batch or region they
are predicted in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from riotvit.join.features import BandNorm, MetaScaler
from riotvit.train.augment import dihedral
from riotvit.train.baselines import HistoryCensusBaseline
from riotvit.train.bundle import Bundle
from riotvit.train.calibration import calibrator_from_dict
from riotvit.train.data import chips_to_tensor, normalise, to_device
from riotvit.train.forecast_metrics import count_interval
from riotvit.train.loop import autocast
from riotvit.train.stacking import Stacker


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
        self.members = bundle.members()
        self.models = [self.model] + [bundle.load_model(str(self.device), m["weights"]) for m in self.members[1:]]
        self.base_p: np.ndarray | None = None  # (crops, members) history + census probabilities, see set_baseline
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

    @property
    def ensemble(self) -> bool:
        return bool(self.members)

    def set_baseline(self, features: pd.DataFrame) -> None:
        """Each member's history + census probability for every crop of the plan (raw features)."""
        if self.ensemble:
            self.base_p = np.column_stack([HistoryCensusBaseline.from_dict(m["baseline"]).predict_proba(features)
                                           for m in self.members])

    def meta_array(self, features: pd.DataFrame) -> np.ndarray | None:
        """Scale a table of raw metadata features with the bundle's scaler (None if the model has none)."""
        return self.scaler.transform(features) if self.scaler.names else None

    def prepare(self, chips: np.ndarray, masks: np.ndarray) -> torch.Tensor:
        """Raw chips (N, C, H, W) + valid masks (N, H, W) -> normalised model input on the device.

        Two dates (``model.temporal``): chips (N, 2C, H, W) and masks (N, 2, H, W), each date
        normalised with its own mask, as in training.
        """
        x = chips_to_tensor(chips, self.device)
        v = to_device(torch.from_numpy(np.ascontiguousarray(masks)), self.device)
        if v.ndim == 3:
            return normalise(x, v, self._mean, self._std, self.input_px)
        c = x.shape[1] // v.shape[1]
        return torch.cat([normalise(x[:, i * c:(i + 1) * c], v[:, i], self._mean, self._std, self.input_px)
                          for i in range(v.shape[1])], dim=1)

    def _combine(self, res: list[dict[str, list]], base: np.ndarray | None, k: int) -> dict[str, np.ndarray]:
        """Per-model view outputs -> forecasts: ensemble mean and spread (or, single model, the views' spread)."""
        out: dict[str, np.ndarray] = {}
        if not self.ensemble:
            r = res[0]
            z = np.stack(r["riot"])
            p = np.stack([self.calibrator.transform(zz) for zz in z])
            out.update(riot_probability=p.mean(0), uncertainty=p.std(0), riot_logit=z.mean(0))
        else:
            ps, zs = [], []
            for j, (r, m) in enumerate(zip(res, self.members)):
                z = np.stack(r["riot"]).mean(0)
                st = Stacker.from_dict(m["stacker"])
                ps.append(calibrator_from_dict(m["calibration"]).transform(st.logit(z, base[:, j])))
                zs.append(z)
            p = np.stack(ps)
            out.update(riot_probability=p.mean(0), uncertainty=p.std(0), riot_logit=np.stack(zs).mean(0))
            if self.tta > 1:
                views = np.stack([np.stack(r["riot"]) for r in res])
                out["view_spread"] = (1 / (1 + np.exp(-views))).std(1).mean(0)
        for name, key in (("event_count", "expected_events"), ("fatalities", "expected_fatalities"),
                          ("type_counts", "type_counts")):
            if name in res[0]:
                out[key] = np.mean([np.exp(np.clip(np.stack(r[name]), -20, 20)).mean(0) for r in res], axis=0)
        if self.ensemble and "expected_events" in out:
            alpha = float(np.mean([m.get("dispersion", 0.0) for m in self.members]))
            lo, hi = count_interval(out["expected_events"], 0.1, 0.9, alpha=alpha or None)
            out["events_p10"], out["events_p90"] = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if "crowd_size" in res[0]:
            pg = 1 / (1 + np.exp(-np.mean([np.stack(r["crowd_size"]).mean(0) for r in res], axis=0)))
            cum = np.concatenate([np.ones_like(pg[:, :1]), pg, np.zeros_like(pg[:, :1])], axis=1)
            pr = np.clip(cum[:, :-1] - cum[:, 1:], 0, None)
            out["crowd_probs"] = pr / np.clip(pr.sum(1, keepdims=True), 1e-12, None)
        return out

    @torch.no_grad()
    def predict(self, chips: np.ndarray, masks: np.ndarray, meta: np.ndarray | None,
                rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Probabilities, expected counts and uncertainty per crop.

        Returns:
            ``riot_probability`` (calibrated; ensemble mean), ``uncertainty`` (ensemble spread, or the
            views' spread for a single model), ``expected_events`` (+ ``events_p10``/``events_p90``
            for an ensemble), ``expected_fatalities``, ``riot_logit`` (mean raw logit) and, when the
            model has them, ``crowd_probs`` (N, K), ``type_counts`` (N, T), ``view_spread``.
            ``rows``: the crops' indexes in the plan (needed by an ensemble, for its baseline).
        """
        n = chips.shape[0]
        out: dict[str, list] = {}
        for a in range(0, n, self.batch_size):
            k = min(self.batch_size, n - a)
            size = _bucket(k, self.batch_size)  # a few fixed shapes: kernels are reused, not rebuilt
            x = self.prepare(_pad(chips[a : a + k], size), _pad(masks[a : a + k], size))
            m = None if meta is None else to_device(torch.from_numpy(_pad(np.ascontiguousarray(meta[a : a + k]), size)), self.device)
            views = [dihedral(x, torch.full((x.shape[0],), k, device=self.device)) if k else x for k in range(self.tta)]
            res: list[dict[str, list]] = []
            for model in self.models:
                r: dict[str, list] = {}
                for v in views:
                    with autocast(self.device, self.bf16):
                        o = model(v, m)
                    for name, t in o.items():
                        if name != "features":
                            r.setdefault(name, []).append(t.float().cpu().numpy()[:k])
                res.append(r)
            base = None if self.base_p is None else self.base_p[rows[a : a + k]]
            for key, val in self._combine(res, base, k).items():
                out.setdefault(key, []).append(val)
        return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}
