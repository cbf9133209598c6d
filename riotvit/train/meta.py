"""``bundle.json``: the typed description of a model bundle."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_serializer, field_validator

from riotvit.artifact import ArtifactMeta, MetaModel
from riotvit.errors import BundleError
from riotvit.io import json_sha256
from riotvit.join.samples import AcledProvenance, CensusProvenance, FoldsMeta
from riotvit.tile.meta import TileSourceMeta

BUNDLE_FORMAT = "riotvit-bundle"
BUNDLE_FORMAT_VERSION = 1


class NormMeta(MetaModel):
    """Per-band normalisation of the chips (from the tile set's statistics)."""

    bands: list[str] = Field(description="Band names, in model input order.")
    mean: list[float] = Field(description="Mean subtracted per band.")
    std: list[float] = Field(description="Standard deviation divided by per band.")


class ScalerMeta(MetaModel):
    """The metadata feature scaler, fitted on the training rows."""

    names: list[str] = Field(description="Metadata features the model reads, in order.")
    log1p: list[bool] = Field(description="Per feature: log1p applied before scaling (skewed counts).")
    mean: list[float] = Field(description="Per feature: mean subtracted.")
    std: list[float] = Field(description="Per feature: standard deviation divided by.")


class TargetsMeta(MetaModel):
    """What the model predicts and how the labels were defined."""

    heads: list[str] = Field(description="Enabled task heads.")
    type_counts: list[str] = Field(description="Columns of the per-event-type count head.")
    label_windows: list[list[str]] | None = Field(description="Label windows (start, end) of the training data.")
    riot_event_types: list[str] = Field(description="ACLED event types counted as riots.")
    lead_days: int = Field(description="Days between image date and label window start.")
    horizon_days: int = Field(description="Length of the label window, days.")


class SplitMeta(MetaModel):
    """The held-out split of the final model."""

    name: str = Field(description="Split name (e.g. `fold0`).")
    test_fold: int | None = Field(description="Held-out test fold.")
    val_fold: int | None = Field(description="Validation fold (calibration, threshold, early stopping).")
    n_train: int = Field(description="Training rows.")
    n_val: int = Field(description="Validation rows.")
    n_test: int = Field(description="Test rows.")


class TrainingMeta(MetaModel):
    """How training went."""

    best_epoch: int = Field(description="Epoch of the kept weights (best validation AUPR).")
    epochs_run: int = Field(description="Epochs run.")
    best_val_aupr: float | None = Field(description="Validation AUPR of the kept weights.")
    stopped_early: bool = Field(description="Training stopped before the last epoch.")
    seconds: float = Field(description="Training time, seconds.")
    images_per_s: float = Field(description="Training throughput, images per second.")
    device: str = Field(description="Device trained on: cpu or cuda.")
    bf16: bool = Field(description="bfloat16 autocast was used.")
    compile: bool = Field(description="torch.compile was used.")


class TileSetProvenance(MetaModel):
    """The tile set the model was trained on."""

    path: str = Field(description="The tile set folder, relative to the bundle folder.")
    signature: str = Field(description="Its signature.")
    sources: list[TileSourceMeta] = Field(description="Its source rasters.")


class SamplesRef(MetaModel):
    """The samples table the model was trained on."""

    path: str = Field(description="The samples table, relative to the bundle folder.")
    sha256: str = Field(description="SHA-256 of the table file.")


class JoinProvenance(MetaModel):
    """The join that made the samples table (copied from its metadata, paths made relative to the bundle folder)."""

    acled: AcledProvenance = Field(description="The ACLED export.")
    census: CensusProvenance | None = Field(description="The census layer (`{}` when none).")
    config: dict[str, Any] = Field(description="The join options.")
    folds: FoldsMeta = Field(description="The spatial folds.")

    @field_validator("census", mode="before")
    @classmethod
    def _census_in(cls, v: Any) -> Any:
        return None if v == {} else v

    @field_serializer("census")
    def _census_out(self, v: CensusProvenance | None) -> dict:
        return {} if v is None else v.model_dump()


class BundleProvenance(MetaModel):
    """Where the model came from."""

    tileset: TileSetProvenance = Field(description="The tile set.")
    samples: SamplesRef = Field(description="The samples table.")
    join: JoinProvenance = Field(description="The join behind the samples table.")


class BundleMeta(ArtifactMeta):
    """``bundle.json``: everything needed to use the model on new data, and where it came from."""

    FORMAT: ClassVar[str] = BUNDLE_FORMAT
    FORMAT_VERSION: ClassVar[int] = BUNDLE_FORMAT_VERSION
    ERROR: ClassVar[type] = BundleError
    MAKER: ClassVar[str] = "riotvit train"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"checksums", "signature", "forecast"})
    SIGNED: ClassVar[tuple[str, ...]] = ("bands", "normalisation", "input_px", "tile_px", "grid", "dtype", "features",
                                         "targets", "calibration", "threshold", "config", "model", "checksums")

    bands: list[str] = Field(description="Input bands, in order; predict needs imagery with these bands.")
    normalisation: NormMeta = Field(description="Per-band normalisation.")
    input_px: int = Field(description="Model input size, pixels (chips are resized to it).")
    tile_px: int = Field(description="Chip size of the training tile set, pixels.")
    grid: dict[str, Any] = Field(description="The crop grid of the training tile set; predict tiles on it.")
    dtype: str = Field(description="Chip data type of the training tile set.")
    features: ScalerMeta = Field(description="The metadata features and their scaler.")
    targets: TargetsMeta = Field(description="Heads and label definition.")
    calibration: dict[str, Any] = Field(description="Probability calibration chosen on validation data (`method` and its parameters).")
    threshold: float = Field(description="Decision threshold on the calibrated riot probability, chosen on validation data.")
    metrics: dict[str, Any] = Field(description="Summary of the held-out metrics per model (riotvit and baselines).")
    split: SplitMeta = Field(description="The held-out split.")
    config: dict[str, Any] = Field(description="The training options (`TrainConfig`), including `model`.")
    model: dict[str, Any] = Field(description="Model summary: backbone, parameter counts, patch grid, heads.")
    training: TrainingMeta = Field(description="How training went.")
    provenance: BundleProvenance = Field(description="The tile set, samples table and join behind the model.")
    checksums: dict[str, str] | None = Field(
        None, description="SHA-256 per file of the bundle (`model.safetensors`, `background.safetensors`), checked "
                          "when they are loaded (absent in bundles of riotvit before checksums: not checked).")
    forecast: dict[str, Any] | None = Field(
        None, description="Rolling-origin bundles: the protocol, the forecast window (`lead_days`, `horizon_days`), "
                          "the test origin, which model was `selected` on validation and why, and the ensemble "
                          "`members` (weights file, held-out fold, stacker on the history + census log-odds, "
                          "calibration, threshold, baseline coefficients, count dispersion, metadata scaler).")
    signature: str | None = Field(
        None, description="SHA-256 of the fields that define the model's predictions (bands, normalisation, grid, "
                          "features, targets, calibration, threshold, config, model, checksums); checked on open, so a "
                          "hand-edited `bundle.json` is refused.")

    @property
    def temporal(self) -> str:
        """``model.temporal`` of the trained model: ``none`` (one image date), ``stack`` or ``tokens``."""
        return str(self.config.get("model", {}).get("temporal", "none"))

    def compute_signature(self) -> str:
        """The SHA-256 of the fields in ``SIGNED``, as written."""
        d = self.to_dict()
        keys = (*self.SIGNED, "forecast") if d.get("forecast") is not None else self.SIGNED
        return json_sha256({k: d.get(k) for k in keys})
