"""``model.temporal``: the model also sees the same cell at the previous image date.

The previous chip is found by grid cell, the two dates travel through augmentation together,
and both the ``stack`` (extra channels) and the ``tokens`` (second token set with a time
embedding) models see a change in the previous image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pipeline_fixtures import make_world, tiny_config

from riotvit.errors import ModelError
from riotvit.join.features import BandNorm
from riotvit.tile.tileset import TileSet
from riotvit.train.data import ChipBatcher, normalise, previous_chip_index
from riotvit.train.models.config import ModelConfig
from riotvit.train.models.model import create_model


def test_previous_chip_is_the_same_cell_at_the_date_before():
    tiles = pd.DataFrame({
        "col": [0, 1, 0, 1, 0, 2], "row": [0, 0, 0, 0, 0, 5],
        "date": ["2021-06-15", "2021-06-15", "2020-06-15", "2020-06-15", "2019-06-15", "2021-06-15"],
        "chip_index": [0, 1, 2, 3, 4, 5],
    })
    prev = previous_chip_index(tiles)
    # cell (0,0): 2019 -> itself, 2020 -> 2019, 2021 -> 2020; cell (1,0): 2020 -> itself, 2021 -> 2020;
    # cell (2,5) has one date -> itself
    assert prev.tolist() == [2, 3, 4, 3, 4, 5]


@pytest.mark.parametrize("temporal", ["stack", "tokens"])
def test_temporal_models_see_the_previous_date(temporal):
    torch.manual_seed(0)
    cfg = tiny_config(model={"temporal": temporal})
    model = create_model(cfg.model, ["red", "green", "blue"], n_meta=3, n_types=2, pretrained=False).eval()
    assert model.in_chans == 6
    x = torch.randn(2, 6, 32, 32)
    meta = torch.randn(2, 3)
    with torch.no_grad():
        a = model(x, meta)["riot"]
        x2 = x.clone()
        x2[:, 3:] = torch.randn(2, 3, 32, 32)  # only the previous date changes
        b = model(x2, meta)["riot"]
        tokens = model.forward_features(x, meta)
    assert a.shape == b.shape == (2,)
    assert (a - b).abs().max() > 1e-4
    grid = model.patch_grid[0] * model.patch_grid[1]
    # the heads always pool the current date's tokens only
    assert tokens.shape[1] == grid + model.backbone.num_prefix_tokens
    extra = grid if temporal == "tokens" else 0
    assert model.num_tokens == grid + extra + model.backbone.num_prefix_tokens


def test_tokens_need_a_vit():
    cfg = ModelConfig(backbone="resnet18", img_size=32, temporal="tokens", meta_hidden=8)
    with pytest.raises(ModelError, match="temporal='tokens' needs a VisionTransformer"):
        create_model(cfg, ["red", "green", "blue"], n_meta=3, n_types=2, pretrained=False)


def test_batcher_pairs_each_crop_with_its_previous_date(tmp_path):
    world = make_world(tmp_path, size_km=2.7, crop_px=32, overlap=0.0, all_dates=True)
    ts = TileSet.open(world.tiles)
    tiles = ts.tiles
    dates = sorted(tiles["date"].astype(str).unique())
    assert len(dates) == 4
    norm = BandNorm(list(ts.bands), [100.0] * len(ts.bands), [50.0] * len(ts.bands))
    rows = np.arange(len(tiles))
    batcher = ChipBatcher(ts, tiles["chip_index"].to_numpy(), None, {}, norm, torch.device("cpu"), cache="none",
                          temporal=True)
    batch = next(batcher.iterate([rows[:64]]))
    c = len(ts.bands)
    assert batch.image.shape == (64, 2 * c, 32, 32)
    prev = previous_chip_index(tiles)
    for i in (0, 17, 63):
        ci = int(tiles["chip_index"].iloc[i])
        chips, masks = ts.read([prev[ci]])
        want = normalise(torch.from_numpy(chips.astype(np.float32)), torch.from_numpy(masks),
                         batcher.mean, batcher.std, 32)[0]
        assert torch.allclose(batch.image[i, c:], want, atol=1e-5)
        d = str(tiles["date"].iloc[i])
        same_cell = tiles[(tiles["col"] == tiles["col"].iloc[i]) & (tiles["row"] == tiles["row"].iloc[i])]
        earlier = same_cell[same_cell["date"].astype(str) < d]
        expect = ci if earlier.empty else int(earlier.sort_values("date")["chip_index"].iloc[-1])
        assert prev[ci] == expect
    # flips and rotations move both dates together: the halves stay aligned pixel for pixel
    # at the first date a crop is paired with itself: both halves identical after augmenting; a later
    # crop's halves differ (the city changed) yet were flipped and rotated together
    first = int(np.flatnonzero((tiles["date"].astype(str) == dates[0]).to_numpy())[0])
    gen = torch.Generator().manual_seed(3)
    aug = next(batcher.iterate([np.array([first])], train=True, gen=gen, brightness=0.0))
    assert torch.allclose(aug.image[0, :c], aug.image[0, c:], atol=1e-5)
    batcher.close()
