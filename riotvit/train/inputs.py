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
        SamplesError: the table was joined onto another tile set, or its rows do not match the chips.
    """
    sig = smeta.tileset.signature
    if sig != ts.info.signature:
        raise SamplesError(
            f"{samples_path}: made from tile set {smeta.tileset.path} (signature {sig}), not from "
            f"{ts.path} (signature {ts.info.signature}); rerun riotvit join on this tile set"
        )
    ci = df["chip_index"].to_numpy()
    if ci.min() < 0 or ci.max() >= len(ts):
        raise SamplesError(f"{samples_path}: chip_index outside the tile set's {len(ts)} crops; rerun riotvit join")
    ids = ts.tiles["crop_id"].to_numpy()[ci]
    if not (ids == df["crop_id"].to_numpy()).all():
        raise SamplesError(f"{samples_path}: crop ids do not match the tile set's chips; rerun riotvit join")
