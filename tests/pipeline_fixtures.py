"""Small end-to-end worlds for training and prediction tests: sample -> tiles -> samples (by code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riotvit.join.census import CensusConfig
from riotvit.join.events.acled import AcledConfig
from riotvit.join.stage import JoinConfig, join
from riotvit.synth import SampleConfig, generate_sample
from riotvit.tile.plan import TileConfig
from riotvit.tile.tiler import tile
from riotvit.train.config import TrainConfig

CENSUS = CensusConfig(extensive=["population", "households"], intensive=["youth_share", "unemployment_rate"],
                      id_column="ward_name")


@dataclass
class World:
    sample: Path
    tiles: Path
    samples: Path


def make_world(tmp: Path, size_km: float = 4.0, crop_px: int = 32, overlap: float | None = 0.5,
               block_m: float = 1344.0, buffer_m: float = 0.0, seed: int = 7,
               history_event_types: list[str] | None = None, horizon_days: int = 365, all_dates: bool = False,
               exclude_geo_precision: tuple[int, ...] = (3,)) -> World:
    """The synthetic city tiled (its latest image, or with ``all_dates`` every date) and joined."""
    sample = generate_sample(tmp / "sample", SampleConfig(size_km=size_km, seed=seed)).path
    rasters = sorted(sample.glob("city_*.tif")) + [sample / "city.tif"] if all_dates else [sample / "city.tif"]
    tiles = tile(rasters, tmp / "tiles", TileConfig(crop_px=crop_px, overlap=overlap)).path
    samples = join(tiles, sample / "acled.csv", sample / "wards.gpkg", tmp / "samples.parquet",
                   JoinConfig(block_m=block_m, buffer_m=buffer_m, census=CENSUS,
                              history_event_types=history_event_types, horizon_days=horizon_days,
                              acled=AcledConfig(exclude_geo_precision=list(exclude_geo_precision)))).path
    return World(sample, tiles, samples)


def tiny_config(epochs: int = 2, img: int = 32, **overrides) -> TrainConfig:
    """A 2-block, 32-wide ViT that trains in seconds on a CPU."""
    d = {
        "model": {"backbone": "vit_tiny_patch16_224", "img_size": img, "patch_size": 8, "embed_dim": 32, "depth": 2,
                  "num_heads": 2, "global_pool": "avg", "drop_path_rate": 0.0, "meta_hidden": 32},
        "data": {"batch_size": 32},
        "optim": {"epochs": epochs, "lr": 1e-3, "warmup_epochs": 0.5},
        "eval": {"background_samples": 16},
        "threads": 1,
    }
    for k, v in overrides.items():
        d.setdefault(k, {}).update(v) if isinstance(v, dict) else d.__setitem__(k, v)
    return TrainConfig.model_validate(d)
