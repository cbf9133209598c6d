"""``docs/formats.md``: the artifacts' files and fields, generated from the metadata models.

Regenerate with ``python -m riotvit.formats > docs/formats.md`` after changing a model;
``tests/meta/test_formats.py`` fails while the document and the models disagree.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from riotvit.artifact import ArtifactMeta
from riotvit.join.samples import META_KEY, SamplesMeta
from riotvit.predict.meta import PredictionMeta
from riotvit.tile.meta import TileSetMeta
from riotvit.train.meta import BundleMeta

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}

HEADER = """# riotvit artifact formats

Generated from the metadata models by `python -m riotvit.formats > docs/formats.md`; do not edit by
hand. Every metadata document has `format`, `format_version` and `riotvit_version`; a reader
refuses a document of another format or of a newer version, with a one-line error that names the
file and the command that re-makes it. Unknown keys are errors too: the documents hold exactly the
fields below.
"""

TILESET = """## Tile set folder (`riotvit tile`)

| file | what |
|---|---|
| `tileset.json` | the description below |
| `tiles.parquet` | GeoParquet, one row per crop: `crop_id`, `col`, `row` (grid cell), `source` (source id), `date` (acquisition date), `valid_fraction` (share of valid pixels), `chip_index` (row in `chips.npy`), `mask_index` (row in `masks.npy`, -1 when every pixel is valid), `geometry` (crop footprint in the grid CRS) |
| `chips.npy` | the (N, C, H, W) chips, a NumPy `.npy` array (memory-mapped when read) |
| `masks.npy` | the (M, H, W) uint8 valid-pixel masks of the partially valid crops |
| `geotiffs/` | with `write_geotiffs`: one GeoTIFF per crop, `CROPID_DATE.tif` |

While running, the folder is `NAME.partial` with `parts/` (one Parquet file per finished block) and
`state.json` (the signature): a rerun with the same inputs resumes at the next block.
"""

SAMPLES = f"""## Samples table (`riotvit join`)

`samples.parquet`: one row per crop and acquisition date. Columns: `crop_id`, `date`, `col`, `row`,
`x`, `y` (crop centre in the grid CRS), `chip_index` (row in the tile set's chips), `source`,
`valid_fraction`; the metadata features `census_*` (census values interpolated onto the crop;
`census_coverage` is the share of the crop covered by census polygons, a data-quality column) and
`hist_*` (event history before the date); the targets (`riot`, `event_count`, `fatalities`,
`crowd_size`, `count_*` per event type); `fold` (spatial block fold),
`near_folds` (bit per fold whose buffer ring the crop lies in), `split` (train, val, test or
buffer) and, with `temporal_split`, `time_split` (past or future).

The table's metadata is JSON under the Parquet schema metadata key `{META_KEY.decode()}`:
"""

BUNDLE = """## Model bundle folder (`riotvit train`)

| file | what |
|---|---|
| `bundle.json` | the description below |
| `model.safetensors` | the trained weights (safetensors; loading never unpickles) |
| `background.safetensors` | training crops for explanations: `image`, `meta`, `rows` (with `eval.background_samples` > 0) |
| `metrics.json`, `metrics.md` | held-out metrics of riotvit and the baselines, per split |
| `reliability.png` | reliability diagram of the calibrated probabilities |
| `history.csv`, `history.png` | per-epoch training loss, validation metrics and throughput |
| `model_card.md` | intended use, data, evaluation and limitations |

While training, the folder is `NAME.partial` with checkpoints: a rerun resumes from the last epoch.
"""

PREDICTION = """## Prediction folder (`riotvit predict`, `riotvit explain`)

Every output states the forecast window (as-of date, lead, horizon, start and end dates, event
types): `run.json["window"]`, the raster tags and band descriptions, the layer names, the cells'
`window_start`/`window_end`, the layout title and the STAC item's `start_datetime`/`end_datetime`.

| file | what |
|---|---|
| `run.json` | the description below |
| `risk.tif` | Cloud-optimised GeoTIFF on the grid's stride cells: bands `riot_probability`, `expected_events`, `uncertainty` (units and the window in the tags) |
| `risk.qml` | QGIS style of `risk.tif` |
| `cells.gpkg` | layer `cells`: one polygon per stride cell (the pixels of `risk.tif`, with its values), risk class, count interval, `edge` (partial cell), window dates, `summary` (the Identify sentence) and, with `--explain`, drivers; with overlap, layer `crops`: one polygon per crop. Styled (aliases, map tip) in its `layer_styles` table |
| `cells.geojson` | the cells in WGS 84 |
| `cells.qml` | QGIS style of the cells |
| `riotvit.qgs` | QGIS project: the maps over the imagery, and a print layout (map, legend, scale bar, north arrow, window, data sources, disclaimer, skill) |
| `map.png`, `map.pdf` | the same page rendered without QGIS |
| `admin.gpkg`, `admin.csv`, `admin.qml` | with `--admin`: per admin unit, expected riots in the window (10-90% interval), mean and max cell probability, population-weighted risk, coverage, top drivers |
| `catalog.json`, `<item>/<item>.json` | STAC catalog with one item: the window as `start_datetime`/`end_datetime`, `proj:` and `raster:bands`, one asset per output |
| `drivers.tif`, `drivers.qml` | with `--explain`: image attribution per ViT patch |
| `attention.tif`, `attention.qml` | with `--explain --attention`: attention rollout per ViT patch |
| `shap_summary.png`, `shap_bar.png` | with `--explain`: SHAP beeswarm and mean \\|SHAP\\| per feature |
| `score.json` | after `riotvit score`: the map scored against a later ACLED export |

`run.json` files written before `format` was recorded are read as version 1.
"""


def type_name(annotation: Any) -> str:
    """A readable name of a field's type."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        if "integer" in named and "number" in named:  # int | float: any JSON number
            named.remove("integer")
        return " or ".join(dict.fromkeys(named)) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"object of {type_name(args[1])}" if args and args[1] is not Any else "object"
    return getattr(annotation, "__name__", str(annotation))


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model inside ``annotation`` (``M``, ``M | None``, ``list[M]``) and the key suffix."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if origin in (typing.Union, types.UnionType):
        for a in args:
            m, suffix = _submodel(a)
            if m is not None:
                return m, suffix
    if origin is list and args:
        m, _ = _submodel(args[0])
        return m, "[]"
    return None, ""


def field_rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Markdown table rows ``| key | type | description |`` of a model and its sub-models."""
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        desc = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {type_name(info.annotation)} | {desc} |")
        sub, suffix = _submodel(info.annotation)
        if sub is not None:
            rows += field_rows(sub, f"{key}{suffix}.")
    return rows


def model_table(model: type[ArtifactMeta]) -> str:
    """The field table of a metadata document."""
    head = [f"`format` = `{model.FORMAT}`, current `format_version` = {model.FORMAT_VERSION}.", "",
            "| key | type | description |", "|---|---|---|"]
    return "\n".join(head + field_rows(model)) + "\n"


def render_formats_md() -> str:
    """The whole of ``docs/formats.md``."""
    parts = [HEADER, TILESET, "### `tileset.json`\n", model_table(TileSetMeta), SAMPLES, model_table(SamplesMeta),
             BUNDLE, "### `bundle.json`\n", model_table(BundleMeta), PREDICTION, "### `run.json`\n",
             model_table(PredictionMeta)]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render_formats_md(), end="")
