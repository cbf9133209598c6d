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
