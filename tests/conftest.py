"""Shared fixtures. Real public files are used when ../shared/data/real exists, else skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DIR = Path(os.environ.get("RIOTVIT_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


def real_path(*parts: str) -> Path:
    """Path to a real public file, skipping the test when it is absent."""
    p = REAL_DIR.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.fixture
def real():
    """Callable fixture: ``real("landsat7_olinda", "L7_ETMs.tif")``."""
    return real_path


@pytest.fixture(scope="session")
def city_run(tmp_path_factory):
    """The synthetic city at full size (12 km), its latest date tiled at 64 px with half overlap,
    joined with 2.7 km CV blocks (precision-2 events, which would mark ~40 cells each, out of labels), and a tiny ViT trained with 5-fold spatial cross-validation: what
    ``riotvit demo`` runs. Shared by the tests that check what the model learned and the maps."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from pipeline_fixtures import make_world

    from riotvit.config import build_config
    from riotvit.train.config import TrainConfig
    from riotvit.train.trainer import train

    root = tmp_path_factory.mktemp("city")
    seed = int(os.environ.get("RIOTVIT_CITY_SEED", "7"))  # other seeds: a robustness check by hand
    world = make_world(root, size_km=12.0, crop_px=64, overlap=0.5, block_m=2688.0, buffer_m=0.0, seed=seed,
                       history_event_types=["Riots"], horizon_days=730, exclude_geo_precision=(2, 3))
    cfg = build_config(TrainConfig, REPO / "configs" / "train_tiny.yaml")
    cfg = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"cv_folds": "all"})})
    res = train(world.tiles, world.samples, root / "model", cfg)
    return world, res
