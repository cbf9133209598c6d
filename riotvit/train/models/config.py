"""Model and loss configuration (pure pydantic; importing this module does not import torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from riotvit.config import StrictModel
from riotvit.errors import ConfigError
from riotvit.sensors import check_sensor

HEAD_NAMES = ("riot", "event_count", "fatalities", "crowd_size", "type_counts")
"""Every head the model knows, in output order."""

FUSION_MODES = ("late", "film", "token", "none")
"""Ways to fuse the metadata vector with the image."""


class BinaryHeadConfig(StrictModel):
    """The ``riot`` head: one logit per crop."""

    enabled: bool = Field(True, description="Build and train this head.")
    weight: float = Field(1.0, ge=0.0, description="Weight of this task in the total loss.")


class CountHeadConfig(StrictModel):
    """A count head (``event_count``, ``fatalities``): predicts a log-rate."""

    enabled: bool = Field(True, description="Build and train this head.")
    weight: float = Field(1.0, ge=0.0, description="Weight of this task in the total loss.")
    family: Literal["poisson", "negbin"] = Field(
        "poisson",
        description="Count distribution: 'poisson', or 'negbin' (negative binomial with a learned "
        "log-dispersion; variance = rate + dispersion * rate^2).",
    )


class OrdinalHeadConfig(StrictModel):
    """The ``crowd_size`` head: ordinal classes with cumulative (CORAL) logits."""

    enabled: bool = Field(True, description="Build and train this head.")
    weight: float = Field(1.0, ge=0.0, description="Weight of this task in the total loss.")
    num_classes: int = Field(
        4, ge=2, description="Number of ordered classes K (default 4: none/small/medium/large); "
        "the head outputs K-1 cumulative logits P(y > k).",
    )


class TypeCountsHeadConfig(StrictModel):
    """The ``type_counts`` head: one Poisson log-rate per event type."""

    enabled: bool = Field(True, description="Build and train this head (needs n_types > 0).")
    weight: float = Field(1.0, ge=0.0, description="Weight of this task in the total loss.")


class HeadsConfig(StrictModel):
    """Which prediction heads the model has, and how each is weighted."""

    riot: BinaryHeadConfig = Field(
        default_factory=BinaryHeadConfig, description="Binary riot / no-riot head (logit)."
    )
    event_count: CountHeadConfig = Field(
        default_factory=CountHeadConfig, description="Number of events head (log-rate)."
    )
    fatalities: CountHeadConfig = Field(
        default_factory=lambda: CountHeadConfig(family="negbin"),
        description="Number of fatalities head (log-rate; negative binomial by default because "
        "fatalities are heavy-tailed).",
    )
    crowd_size: OrdinalHeadConfig = Field(
        default_factory=OrdinalHeadConfig, description="Ordinal crowd-size head (CORAL logits)."
    )
    type_counts: TypeCountsHeadConfig = Field(
        default_factory=TypeCountsHeadConfig, description="Per-event-type counts head (log-rates)."
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> HeadsConfig:
        if not self.enabled():
            raise ValueError("every head is disabled; enable at least one of " + ", ".join(HEAD_NAMES))
        return self

    def enabled(self) -> list[str]:
        """Names of the enabled heads, in :data:`HEAD_NAMES` order."""
        return [n for n in HEAD_NAMES if getattr(self, n).enabled]


class ModelConfig(StrictModel):
    """The network: a timm backbone, metadata fusion and prediction heads."""

    backbone: str = Field(
        "vit_small_patch16_224",
        description="timm model name (any model with forward_features; film/token fusion, "
        "patch_stride and freeze_blocks need a timm VisionTransformer).",
    )
    img_size: int = Field(224, ge=8, description="Input crop size in pixels (the tile set's crop_px).")
    patch_size: int | None = Field(
        None, ge=1, description="ViT patch size in pixels; None keeps the backbone's own."
    )
    patch_stride: int | None = Field(
        None, ge=1, description="ViT patch stride; smaller than patch_size gives overlapping "
        "patches ((img - patch) / stride + 1 per side); None = non-overlapping.",
    )
    embed_dim: int | None = Field(None, ge=1, description="ViT width override (tiny test models).")
    depth: int | None = Field(None, ge=1, description="ViT number of blocks override.")
    num_heads: int | None = Field(None, ge=1, description="ViT attention heads override.")
    global_pool: Literal["token", "avg"] = Field(
        "token", description="ViT pooling: 'token' (class token) or 'avg' (mean of patch tokens, "
        "no class token).",
    )
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on pooled features.")
    attn_drop_rate: float = Field(0.0, ge=0.0, lt=1.0, description="Attention dropout.")
    drop_path_rate: float = Field(0.1, ge=0.0, lt=1.0, description="Stochastic depth rate.")
    freeze_blocks: int = Field(
        0, ge=0, description="Freeze the patch embedding, position embedding and the first N "
        "transformer blocks (0 = train everything).",
    )
    pretrained_path: str | None = Field(
        None, description="Local timm state dict (.safetensors, or a torch file read with "
        "weights_only=True) to initialise the backbone; None = random init. Never downloaded.",
    )
    pretrained_bands: list[str] | None = Field(
        None,
        description="Bands of the pretrained first layer's input channels, in order, by common name "
        "(red, nir, swir16 ...) or Sentinel-2/Landsat id (B04, B8A ...); matched to the tile set's "
        "bands through the sensor table (riotvit.sensors); bands the weights lack get the mean "
        "kernel. Unset: the sidecar JSON next to the weights (ssl4eo.safetensors -> ssl4eo.json, holding "
        '{"bands": [...], "sensor": "sentinel2"}), else red, green, blue for 3-channel weights.',
    )
    pretrained_sensor: str | None = Field(
        None, description="Sensor of pretrained_bands ids where they are ambiguous: sentinel2, "
        "landsat8 (8/9) or landsat7 (5/7); e.g. B4 is red on sentinel2 but nir on landsat7.",
    )
    fusion: Literal["late", "film", "token", "none"] = Field(
        "late", description="Metadata fusion: 'late' (concat pooled image features with a "
        "metadata MLP embedding), 'film' (metadata scales/shifts the tokens), 'token' (metadata "
        "as extra tokens in the transformer), 'none' (image only).",
    )
    temporal: Literal["none", "stack", "tokens"] = Field(
        "none", description="Show the model the same crop at the previous image date too: 'none' "
        "(one date), 'stack' (the previous date's bands as extra input channels), 'tokens' (a second "
        "set of patch tokens from the previous date, each set with a learned time embedding, "
        "ViT backbones only). The first date of a tile set is paired with itself (no change visible).",
    )
    meta_hidden: int = Field(128, ge=1, description="Width of the metadata MLP.")
    meta_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout inside the metadata MLP.")
    meta_missing_rate: float = Field(
        0.0, ge=0.0, lt=1.0, description="Training only: mark each metadata value missing with "
        "this probability, so the learned missing values/indicators are trained.",
    )
    meta_tokens: int = Field(
        0, ge=0, description="Token fusion: 0 = one token per metadata feature; k > 0 = k tokens "
        "embedded from the whole metadata vector.",
    )
    film_after_embed: bool = Field(True, description="FiLM fusion: modulate the patch tokens right after the patch embedding.")
    film_after_blocks: list[int] = Field(
        default_factory=lambda: [-1],
        description="FiLM fusion: modulate all tokens after these transformer blocks (0-based; "
        "negative counts from the end).",
    )
    heads: HeadsConfig = Field(default_factory=HeadsConfig, description="Prediction heads.")
    uncertainty_weighting: bool = Field(
        False, description="Learn one log-variance per task and weight the losses by it "
        "(Kendall et al. 2018) on top of the fixed head weights.",
    )

    @field_validator("pretrained_sensor")
    @classmethod
    def _known_sensor(cls, v: str | None) -> str | None:

        try:
            return check_sensor(v)
        except ConfigError as e:
            raise ValueError(str(e).replace("--sensor ", "", 1)) from None

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.patch_stride is not None and self.patch_size is not None and self.patch_stride > self.patch_size:
            raise ValueError(
                f"patch_stride {self.patch_stride} is larger than patch_size {self.patch_size}; "
                "pixels would be skipped; use patch_stride <= patch_size"
            )
        if self.patch_size is not None and self.patch_stride is None and self.img_size % self.patch_size:
            raise ValueError(
                f"patch_size {self.patch_size} does not divide img_size {self.img_size}: the last "
                f"{self.img_size % self.patch_size} px of every crop would be dropped; choose an img_size that is a "
                "multiple of patch_size (or a patch_stride that covers it)"
            )
        if self.embed_dim is not None and self.num_heads is not None and self.embed_dim % self.num_heads:
            raise ValueError(
                f"num_heads {self.num_heads} does not divide embed_dim {self.embed_dim}; each attention head "
                "gets embed_dim / num_heads channels, so choose e.g. num_heads "
                + " or ".join(str(h) for h in _divisors_near(self.embed_dim, self.num_heads))
            )
        return self


def _divisors_near(n: int, k: int) -> list[int]:
    """The divisors of ``n`` just below and just above ``k`` (for a suggestion)."""
    below = [d for d in range(k - 1, 0, -1) if n % d == 0][:1]
    above = [d for d in range(k + 1, n + 1) if n % d == 0][:1]
    return below + above


class LossConfig(StrictModel):
    """How the multi-task loss treats class imbalance and label noise."""

    class_weights: Literal["none", "inverse", "effective"] | list[float] = Field(
        "none", description="Riot class weights: 'none', 'inverse' (N / (2 n_c), sklearn "
        "'balanced'), 'effective' (Cui et al. 2019 effective number, normalised to sum 2), or "
        "an explicit [w_neg, w_pos].",
    )
    effective_beta: float = Field(
        0.999, gt=0.0, lt=1.0, description="beta of the effective-number class weights."
    )
    focal_gamma: float = Field(0.0, ge=0.0, description="Focal loss gamma for riot (0 = plain BCE).")
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="Riot label smoothing: targets become y(1-e) + e/2."
    )

    @field_validator("class_weights")
    @classmethod
    def _two_weights(cls, v: object) -> object:
        if isinstance(v, list) and (len(v) != 2 or min(v) < 0):
            raise ValueError("explicit class_weights must be two non-negative numbers [w_neg, w_pos]")
        return v
