"""Multi-task loss: weighted/focal BCE, Poisson and negative-binomial NLL, CORAL, with masking.

Targets are a dict keyed like the model outputs: ``riot`` (B,) 0/1, ``event_count`` and
``fatalities`` (B,) counts, ``crowd_size`` (B,) class index 0..K-1, ``type_counts`` (B, T)
counts. NaN in a target means "unknown": that sample (or element) adds no loss and does not
count in the mean. Every loss is computed in float32, also under bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from riotvit.errors import ModelError, SamplesError
from riotvit.train.models.config import LossConfig, ModelConfig

MAX_LOG_RATE = 20.0
"""Log-rates are clamped here in the count losses (e^20 events per cell is never real)."""

LOG_DISPERSION_RANGE = (-8.0, 8.0)
"""Negative-binomial log-dispersion clamp in :class:`MultiTaskLoss` (float32 precision)."""


def compute_class_weights(
    labels: Sequence[float] | np.ndarray | torch.Tensor, mode: str | Sequence[float], beta: float = 0.999
) -> torch.Tensor:
    """Class weights [w_neg, w_pos] for the riot BCE.

    Args:
        labels: training riot labels (0/1; NaN ignored).
        mode: ``"none"`` -> [1, 1]; ``"inverse"`` -> ``N / (2 n_c)`` (sklearn "balanced": the mean
            weight over the training samples is 1); ``"effective"`` -> ``(1 - beta) /
            (1 - beta^n_c)`` (Cui et al. 2019), normalised so the two weights sum to 2; or an
            explicit pair ``[w_neg, w_pos]``.
        beta: the effective-number beta.

    Raises:
        SamplesError: a class is absent from ``labels`` for the ``inverse``/``effective`` modes.
        ModelError: unknown mode.
    """
    if not isinstance(mode, str):
        w = [float(v) for v in mode]
        if len(w) != 2:
            raise ModelError(f"loss.class_weights {list(mode)}: give exactly [w_neg, w_pos]")
        return torch.tensor(w, dtype=torch.float32)
    if mode == "none":
        return torch.ones(2, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64)).flatten()
    y = y[~torch.isnan(y)]
    counts = torch.stack([(y < 0.5).sum(), (y >= 0.5).sum()]).double()
    if (counts == 0).any():
        raise SamplesError(
            f"loss.class_weights='{mode}': the training riot labels have {int(counts[0])} "
            f"negatives and {int(counts[1])} positives; both classes are needed (use "
            "class_weights: none or explicit [w_neg, w_pos])"
        )
    if mode == "inverse":
        w = counts.sum() / (2 * counts)
    elif mode == "effective":
        w = (1 - beta) / (1 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts))
        w = 2 * w / w.sum()
    else:
        raise ModelError(f"loss.class_weights '{mode}' is unknown; use none, inverse, effective or [w_neg, w_pos]")
    return w.float()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 (with gradient 0) when nothing is valid."""
    mask = mask.to(values.dtype)
    return (torch.where(mask > 0, values, 0.0) * mask).sum() / mask.sum().clamp_min(1.0)


def binary_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    gamma: float = 0.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Per-sample binary loss: ``w_y * |y_s - p|^gamma * BCE(logit, y_s)``.

    ``y_s = y (1 - e) + e / 2`` is the smoothed target; for a hard target ``|y - p|`` equals
    ``1 - p_t``, so this is the focal loss of Lin et al. and plain BCE for ``gamma = 0``. The
    class weight uses the unsmoothed label. NaN targets give 0 (mask them with
    :func:`masked_mean`).
    """
    y = torch.nan_to_num(target.float(), nan=0.0)
    z = logits.float()
    ys = y * (1 - label_smoothing) + 0.5 * label_smoothing
    loss = F.binary_cross_entropy_with_logits(z, ys, reduction="none")
    if gamma > 0:
        loss = loss * (ys - torch.sigmoid(z)).abs().pow(gamma)
    if class_weights is not None:
        cw = class_weights.to(loss)
        loss = loss * torch.where(y >= 0.5, cw[1], cw[0])
    return loss


def poisson_nll(log_rate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise Poisson NLL ``exp(eta) - y eta + lgamma(y + 1)`` (full, comparable to NB)."""
    eta = log_rate.float().clamp(max=MAX_LOG_RATE)
    y = torch.nan_to_num(target.float(), nan=0.0).clamp_min(0)
    return torch.exp(eta) - y * eta + torch.lgamma(y + 1)


def negbin_nll(log_rate: torch.Tensor, target: torch.Tensor, log_dispersion: torch.Tensor) -> torch.Tensor:
    """Elementwise negative-binomial NLL with mean ``mu = exp(eta)`` and variance ``mu + alpha mu^2``.

    ``-log p(y) = -lgamma(y + r) + lgamma(r) + lgamma(y + 1) + r log(1 + alpha mu)
    - y (eta + log alpha - log(1 + alpha mu))`` with ``r = 1 / alpha``; tends to the Poisson NLL
    as ``alpha -> 0`` (use float64 to check very small alpha).
    """
    dtype = torch.promote_types(log_rate.dtype, torch.float32)
    eta = log_rate.to(dtype).clamp(max=MAX_LOG_RATE)
    y = torch.nan_to_num(target.to(dtype), nan=0.0).clamp_min(0)
    log_a = log_dispersion.to(dtype)
    r = torch.exp(-log_a)
    sp = F.softplus(eta + log_a)  # log(1 + alpha * mu)
    ll = torch.lgamma(y + r) - torch.lgamma(r) - torch.lgamma(y + 1) - r * sp + y * (eta + log_a - sp)
    return -ll


def coral_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample CORAL loss: sum over k of ``BCE(logit_k, 1[y > k])`` for (B, K-1) logits."""
    z = logits.float()
    y = torch.nan_to_num(target.float(), nan=0.0)
    k = torch.arange(z.shape[-1], device=z.device, dtype=z.dtype)
    levels = (y.unsqueeze(-1) > k).to(z.dtype)
    return F.binary_cross_entropy_with_logits(z, levels, reduction="none").sum(-1)


class MultiTaskLoss(nn.Module):
    """Total loss over the enabled heads; returns ``{"loss": total, <task>: task loss, ...}``.

    ``total = sum_t w_t L_t``; with ``config.uncertainty_weighting`` each task also has a
    learnable log-variance ``s_t`` (Kendall et al. 2018) and
    ``total = sum_t w_t (0.5 exp(-s_t) L_t + 0.5 s_t)``. The ``log_vars`` are parameters of this
    module: give them to the optimizer too.

    Args:
        config: the model config (enabled heads, weights, count families).
        loss_config: class weights, focal gamma, label smoothing.
        riot_labels: training riot labels, needed for ``inverse``/``effective`` class weights.
    """

    def __init__(
        self,
        config: ModelConfig,
        loss_config: LossConfig | None = None,
        riot_labels: Sequence[float] | np.ndarray | torch.Tensor | None = None,
    ):
        super().__init__()
        self.loss_config = loss_config or LossConfig()
        self.tasks = config.heads.enabled()
        self.weights = {t: float(getattr(config.heads, t).weight) for t in self.tasks}
        self.families = {
            t: getattr(config.heads, t).family for t in ("event_count", "fatalities") if t in self.tasks
        }
        mode = self.loss_config.class_weights
        if isinstance(mode, str) and mode in ("inverse", "effective") and riot_labels is None:
            raise ModelError(
                f"loss.class_weights='{mode}' needs the training riot labels; pass riot_labels "
                "to MultiTaskLoss or use explicit [w_neg, w_pos]"
            )
        cw = compute_class_weights(riot_labels if riot_labels is not None else [], mode, self.loss_config.effective_beta)
        self.register_buffer("class_weights", cw)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks))) if config.uncertainty_weighting else None

    def task_loss(self, task: str, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """Masked mean loss of one task."""
        out = outputs[task]
        valid = ~torch.isnan(target.float())
        if task == "riot":
            lc = self.loss_config
            cw = None if lc.class_weights == "none" else self.class_weights
            per = binary_focal_loss(out, target, cw, lc.focal_gamma, lc.label_smoothing)
        elif task in ("event_count", "fatalities"):
            if self.families[task] == "negbin":
                log_a = outputs[f"{task}_log_dispersion"].float().clamp(*LOG_DISPERSION_RANGE)
                per = negbin_nll(out, target, log_a)
            else:
                per = poisson_nll(out, target)
        elif task == "crowd_size":
            per = coral_loss(out, target)
        else:  # type_counts
            per = poisson_nll(out, target)
        return masked_mean(per, valid)

    def forward(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Loss dict from model outputs and targets (NaN = unknown)."""
        result: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=next(iter(outputs.values())).device)
        for i, task in enumerate(self.tasks):
            if task not in targets:
                raise ModelError(
                    f"targets have no '{task}' but the {task} head is enabled; provide the "
                    f"target or set model.heads.{task}.enabled: false"
                )
            lt = self.task_loss(task, outputs, targets[task])
            result[task] = lt
            if self.log_vars is not None:
                s = self.log_vars[i]
                lt = 0.5 * torch.exp(-s) * lt + 0.5 * s
            total = total + self.weights[task] * lt
        result["loss"] = total
        return result
