"""``run.json``: the typed record of a prediction folder (what the maps were made from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_serializer

from riotvit.artifact import ArtifactMeta, MetaModel
from riotvit.errors import InputError

PREDICTION_FORMAT = "riotvit-prediction"
PREDICTION_FORMAT_VERSION = 1


class ModelRef(MetaModel):
    """The model bundle the maps were predicted with."""

    path: str = Field(description="The bundle folder, relative to the prediction folder (like every path in run.json).")
    sha256: str = Field(description="SHA-256 of its `model.safetensors`.")
    format_version: int = Field(description="Its bundle format version.")
    backbone: str = Field(description="Its backbone.")
    threshold: float = Field(description="Its decision threshold on the riot probability.")


class RegionRef(MetaModel):
    """The region predicted."""

    name: str = Field(description="Region name (catalog id, file name or bbox).")
    source: str = Field(description="Where the region came from (catalog, file, bbox, imagery).")
    bbox_lonlat: list[float] = Field(description="Bounds in WGS 84 (lon0, lat0, lon1, lat1) of the predicted grid cells.")
    area_km2: float = Field(description="Area of the predicted grid cells, km².")


class ImageryRef(MetaModel):
    """One raster the crops were cut from."""

    id: str = Field(description="Source id.")
    path: str = Field(description="The raster file, relative to the prediction folder.")
    sha256: str | None = Field(description="SHA-256 of the file (null when not computed).")
    date: str = Field(description="Acquisition date, ISO 8601.")
    bands: list[str] = Field(description="Band names.")
    role: str | None = Field(None, description="`previous`: the earlier date a two-date model (model.temporal) compared "
                             "the mapped imagery with; absent: the imagery mapped.")

    @model_serializer(mode="wrap")
    def _omit_absent_role(self, handler):  # run.json files of one-date models stay as they were
        return {k: v for k, v in handler(self).items() if v is not None or k != "role"}


class CountsMeta(MetaModel):
    """How many crops were predicted."""

    candidate_crops: int = Field(description="Grid crops inside the region.")
    predicted_crops: int = Field(description="Crops with enough valid imagery, predicted.")
    skipped_crops: int = Field(description="Crops skipped for too little valid imagery.")
    cells: int | None = Field(None, description="Stride cells in `cells.gpkg` (the pixels of `risk.tif`).")
    edge_cells: int | None = Field(None, description="Cells flagged `edge` (partial imagery), hatched in the style.")


class PredictionMeta(ArtifactMeta):
    """``run.json``: the model, region, date, imagery and metadata behind the maps."""

    FORMAT: ClassVar[str] = PREDICTION_FORMAT
    FORMAT_VERSION: ClassVar[int] = PREDICTION_FORMAT_VERSION
    ERROR: ClassVar[type] = InputError
    MAKER: ClassVar[str] = "riotvit predict"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"explain", "window"})

    model: ModelRef = Field(description="The model bundle.")
    region: RegionRef = Field(description="The region.")
    date: str = Field(description="The date predicted for (imagery date), ISO 8601.")
    crs: str = Field(description="CRS of the maps (the model's grid).")
    grid: dict[str, Any] = Field(description="The crop grid (the model's).")
    imagery: list[ImageryRef] = Field(description="The rasters read.")
    metadata: dict[str, Any] = Field(description="How the metadata features were made: `mode` (auto or none) and, "
                                                 "when computed, the `acled` export and `census` layer used "
                                                 "(paths relative to the prediction folder).")
    counts: CountsMeta = Field(description="Crop counts.")
    tta_views: int = Field(description="Test-time augmentation views per crop.")
    outputs: list[str] = Field(description="Files of the prediction folder (besides run.json).")
    warnings: list[str] = Field(description="What the prediction warned about.")
    explain: dict[str, Any] | None = Field(None, description="With --explain: the method, the completeness check and "
                                                             "the mean |SHAP| per feature.")
    window: dict[str, Any] | None = Field(None, description="The forecast window the probabilities are about "
                                                            "(`riotvit.window.ForecastWindow`): `as_of`, `start`, `end` "
                                                            "(inclusive, ISO dates), `lead_days`, `horizon_days`, "
                                                            "`event_types`, `label`.")

    @classmethod
    def from_dict(cls, data: Any, source: str | Path) -> PredictionMeta:
        """Validate a parsed ``run.json``; files written before ``format`` was recorded are version 1."""
        if isinstance(data, dict) and "format" not in data and "riotvit_version" in data:
            data = {"format": PREDICTION_FORMAT, "format_version": 1, **data}
        return super().from_dict(data, source)
