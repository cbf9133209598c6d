"""The inputs of train and evaluate: a tile set and a samples table that belong together."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from riotvit.errors import SamplesError
from riotvit.join.samples import SamplesMeta
from riotvit.tile.tileset import TileSet


def check_inputs(ts: TileSet, df: pd.DataFrame, smeta: SamplesMeta, samples_path: Path) -> None:
    """A tile set and a samples table that belong together, with usable labels.

    Raises:
        SamplesError: the table was joined onto another tile set, its rows do not match the chips, or
            it lacks the riot label (or has labels that are not 0/1).
    """
    sig = smeta.tileset.signature
    if sig != ts.info.signature:
        raise SamplesError(
            f"{samples_path}: made from tile set {smeta.tileset.path} (signature {sig}), not from "
            f"{ts.path} (signature {ts.info.signature}); rerun riotvit join on this tile set"
        )
    missing = [c for c in ("chip_index", "crop_id", "riot") if c not in df.columns]
    if missing:
        raise SamplesError(f"{samples_path}: no {', '.join(missing)} column; is it a samples table written by "
                           "riotvit join? rerun riotvit join")
    bad = df["riot"].isna() | ~df["riot"].isin([0, 1, True, False])
    if bad.any():
        raise SamplesError(f"{samples_path}: {int(bad.sum())} rows have a riot label that is not 0/1 (NaN or other); "
                           "rerun riotvit join, or drop those rows")
    if df["chip_index"].isna().any():
        raise SamplesError(f"{samples_path}: chip_index has missing values; rerun riotvit join")
    ci = df["chip_index"].to_numpy()
    if ci.min() < 0 or ci.max() >= len(ts):
        raise SamplesError(f"{samples_path}: chip_index outside the tile set's {len(ts)} crops; rerun riotvit join")
    ids = ts.tiles["crop_id"].to_numpy()[ci]
    if not (ids == df["crop_id"].to_numpy()).all():
        raise SamplesError(f"{samples_path}: crop ids do not match the tile set's chips; rerun riotvit join")
