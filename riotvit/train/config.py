"""``TrainConfig``: everything ``riotvit train`` needs, loaded from ``configs/*.yaml``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from riotvit.config import StrictModel
from riotvit.device import CompileMode, DeviceName, Precision
from riotvit.train.models.config import LossConfig, ModelConfig


class DataConfig(StrictModel):
    """How batches are built."""

    batch_size: int = Field(64, ge=1, description="Crops per batch.")
    eval_batch_size: int = Field(256, ge=1, description="Crops per batch when predicting validation/test rows.")
    cache: Literal["auto", "device", "none"] = Field("auto", description="Keep the used chips in device memory ('device'), stream them from disk ('none'), or decide by size ('auto').")
    augment: bool = Field(True, description="Random flips/90° rotations and per-band brightness jitter (on the device).")
    brightness: float = Field(0.1, ge=0, lt=1, description="Per-band brightness jitter: scale by 1 ± this.")
    riot_balance_ratio: float | None = Field(None, gt=0, lt=1, description="Share of riot crops in every training batch (balanced sampler); None = natural frequency.")
    features: list[str] | None = Field(None, description="Metadata feature columns to use (default: every census_* and hist_* column).")


class OptimConfig(StrictModel):
    """Optimiser and schedule."""

    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="AdamW or SGD with momentum.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.05, ge=0, description="Weight decay (decoupled for AdamW).")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    epochs: int = Field(30, ge=1, description="Maximum epochs.")
    warmup_epochs: float = Field(1.0, ge=0, description="Linear warmup, epochs; then cosine decay.")
    min_lr_ratio: float = Field(0.02, ge=0, le=1, description="Final learning rate as a share of the peak.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this (None = off).")
    patience: int = Field(8, ge=1, description="Early stopping: epochs without a better validation AUPR.")


class EvalConfig(StrictModel):
    """Honest evaluation."""

    calibration: Literal["auto", "temperature", "platt", "isotonic", "none"] = Field("auto", description="Calibrate riot probabilities on validation data (auto: temperature, Platt or isotonic, whichever has the lowest cross-fitted validation log-loss).")
    protocol: Literal["auto", "rolling", "spatial"] = Field("auto", description="rolling: test forward in time at later origins (rolling-origin x spatial blocks); spatial: spatial blocks at one date; auto: rolling when the samples have an origin whose earlier label windows are complete.")
    origins: Literal["last", "all"] | list[str] = Field("last", description="Rolling protocol: the test origins (ISO dates), the last testable one, or all.")
    threshold: Literal["f1", "prevalence", "rate"] = Field("f1", description="How the decision threshold is chosen on validation data.")
    baseline: Literal["logistic", "gbm"] = Field("logistic", description="The history-plus-census scikit-learn baseline.")
    cv_folds: list[int] | Literal["all"] | None = Field(None, description="Also train one model per listed test fold (spatial cross-validation) and report each; None = only the default split.")
    background_samples: int = Field(64, ge=0, description="Training crops stored in the bundle as background for explanations.")


class TrainConfig(StrictModel):
    """Options of ``riotvit train``."""

    model: ModelConfig = Field(default_factory=ModelConfig, description="Backbone, fusion and heads.")
    loss: LossConfig = Field(default_factory=LossConfig, description="Class weights, focal loss, label smoothing.")
    data: DataConfig = Field(default_factory=DataConfig, description="Batches and augmentation.")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimiser and schedule.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Calibration, thresholds, baselines, cross-validation.")
    seed: int = Field(0, description="Seed for weights, sampling and augmentation.")
    device: DeviceName = Field("auto", description="Where training runs (auto = CUDA when available).")
    precision: Precision = Field("auto", description="auto = bf16 autocast on CUDA, fp32 on CPU.")
    compile: CompileMode = Field("auto", description="torch.compile the model (auto = on CUDA only).")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's own).")
    deterministic: bool = Field(True, description="Deterministic algorithms (CPU runs are then bit-reproducible).")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        """Settings that are valid one by one but not together."""
        if not self.model.heads.riot.enabled:
            raise ValueError("model.heads.riot.enabled is false, but early stopping, calibration, thresholds and "
                             "evaluation all score the riot head; enable it (other heads may be disabled)")
        if self.optim.warmup_epochs > self.optim.epochs:
            raise ValueError(f"optim.warmup_epochs {self.optim.warmup_epochs:g} is longer than optim.epochs "
                             f"{self.optim.epochs}: training would end before the learning rate peaks; "
                             "shorten the warmup or train longer")
        return self
