"""``samples.parquet``: the samples table and its typed metadata (Parquet metadata key ``riotvit``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_serializer, field_validator

from riotvit.artifact import ArtifactMeta, MetaModel
from riotvit.errors import SamplesError
from riotvit.io import atomic_file, to_jsonable

SAMPLES_FORMAT = "riotvit-samples"
SAMPLES_FORMAT_VERSION = 1
META_KEY = b"riotvit"


class TileSetRef(MetaModel):
    """The tile set a samples table was joined onto."""

    path: str = Field(description="The tile set folder, relative to the folder of the samples table.")
    signature: str = Field(description="Its signature (`tileset.json`); train refuses a table of another tile set.")
    n_crops: int = Field(description="Its number of crops.")
    grid: dict[str, Any] = Field(description="Its crop grid.")
    bands: list[str] = Field(description="Its band names.")


class AcledProvenance(MetaModel):
    """The ACLED export the labels and history features came from."""

    path: str = Field(description="The export file, relative to the folder of the samples table (in a bundle: to the bundle folder).")
    sha256: str = Field(description="SHA-256 of the export file.")
    variant: str = Field(description="Which ACLED export layout was recognised.")
    date_range: list[str] = Field(description="First and last event date, ISO 8601.")
    assumptions: list[str] = Field(description="Every interpretation made while reading, one sentence each.")
    events: dict[str, int] = Field(description="Event counts: read, skipped (per reason), excluded, outside area/time, used.")


class CensusProvenance(MetaModel):
    """The census layer the ``census_*`` features came from."""

    path: str = Field(description="The census file, relative to the folder of the samples table (in a bundle: to the bundle folder).")
    sha256: str = Field(description="SHA-256 of the census file.")
    method: str = Field(description="Interpolation onto crops: areal or dasymetric.")
    columns: dict[str, list[str]] = Field(description="Census column names by role (extensive, intensive, population, id).")
    coverage: float = Field(description="Share of the crop area covered by census polygons.")
    population_raster: str | None = Field(description="The population raster of dasymetric interpolation, if any (relative like `path`).")


class FoldsMeta(MetaModel):
    """How the spatial cross-validation folds were dealt."""

    n: int = Field(description="Number of folds.")
    block_m: float = Field(description="Side of the spatial blocks, metres.")
    buffer_m: float = Field(description="Buffer ring excluded from training around a test fold, metres.")
    seed: int = Field(description="Seed for dealing blocks to folds.")
    test_fold: int = Field(description="The test fold of the `split` column.")
    val_fold: int | None = Field(description="The validation fold of the `split` column.")


def _census_in(v: Any) -> Any:
    return None if v == {} else v


class SamplesMeta(ArtifactMeta):
    """The samples table's metadata: inputs, label definition, features and folds."""

    FORMAT: ClassVar[str] = SAMPLES_FORMAT
    FORMAT_VERSION: ClassVar[int] = SAMPLES_FORMAT_VERSION
    ERROR: ClassVar[type] = SamplesError
    MAKER: ClassVar[str] = "riotvit join"

    tileset: TileSetRef = Field(description="The tile set the rows belong to.")
    acled: AcledProvenance = Field(description="The ACLED export.")
    census: CensusProvenance | None = Field(description="The census layer (`{}` when none was given).")
    config: dict[str, Any] = Field(description="The join options (`JoinConfig`).")
    features: list[str] = Field(description="Metadata feature columns (`census_*`, `hist_*`), the model's default inputs.")
    targets: list[str] = Field(description="Target columns, `riot` first.")
    type_counts: list[str] = Field(description="The per-event-type count targets (`count_*`).")
    label_windows: list[list[str]] = Field(description="Label window (start, end) per acquisition date, ISO 8601.")
    folds: FoldsMeta = Field(description="The spatial folds.")
    warnings: list[str] = Field(description="What the join warned about.")

    _census = field_validator("census", mode="before")(_census_in)

    @field_serializer("census")
    def _census_out(self, v: CensusProvenance | None) -> dict:
        return {} if v is None else v.model_dump()


def write_samples(samples: pd.DataFrame, meta: SamplesMeta, out: Path) -> None:
    """Write the table with its metadata, atomically."""
    table = pa.Table.from_pandas(samples, preserve_index=False)
    raw = json.dumps(meta.to_dict(), default=to_jsonable).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: raw})
    with atomic_file(out, overwrite=True) as tmp:
        pq.write_table(table, tmp)


def open_samples(path: str | Path) -> tuple[pd.DataFrame, SamplesMeta]:
    """Read ``samples.parquet`` and its typed metadata.

    Raises:
        SamplesError: missing, unreadable, not a riotvit table, or of a newer format.
    """
    p = Path(path)
    if not p.is_file():
        raise SamplesError(f"{p}: samples table not found; make it with riotvit join")
    try:
        pf = pq.read_table(p)
    except Exception as e:  # not Parquet, truncated
        raise SamplesError(f"{p}: not a readable Parquet file ({str(e).splitlines()[0]}); rerun riotvit join") from None
    raw = (pf.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise SamplesError(f"{p}: not a riotvit samples table (no riotvit metadata); make it with riotvit join")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SamplesError(f"{p}: riotvit metadata is not valid JSON ({e}); rerun riotvit join") from None
    return pf.to_pandas(), SamplesMeta.from_dict(data, p)


def read_samples(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read ``samples.parquet`` and its metadata as a plain JSON dict (see :func:`open_samples` for the typed one)."""
    df, meta = open_samples(path)
    return df, meta.to_dict()
