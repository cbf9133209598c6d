"""The embedded sample: a deterministic synthetic city every stage and the demo run on.

``generate_sample(out)`` writes, from a seed, a city observed at several acquisition dates:

- ``city.tif`` (the last date) and ``city_<YYYY-MM-DD>.tif`` (each earlier date): 4-band (blue,
  green, red, nir) uint16 GeoTIFFs in UTM 37S at 3 m, each with its acquisition date tag; road
  network, informal settlements, formal blocks, markets, industrial zones, vegetation and water
  with realistic spectra and texture. Markets open and close, settlements appear and grow and a
  road is built between dates (``riotvit.synth.timeline``); nothing else changes;
- ``acled.csv``: ACLED-format events (31 columns, real vocabulary) for several years before the
  first and after the last date, whose riots follow what is visible at each date and the census;
- ``wards.gpkg``: census wards (EPSG:4326) with population, households, youth share and
  unemployment rate;
- ``truth/cells.parquet`` and ``truth/landcover*.tif``: the planted drivers, rates and onsets per
  672 m cell and date (see ``riotvit.synth.truth`` for the formula), so tests can check what a
  model learned;
- ``sample.json`` (parameters, per-date counts, checksums) and ``SAMPLE.md`` (the planted
  relationships).

The city is fictional ("Synth City", country "Synthland", ISO 999) and placed in UTM zone 37S;
nothing in it is real data.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

import riotvit.synth.files as files
import riotvit.synth.timeline as timeline
from riotvit.config import StrictModel
from riotvit.io import atomic_dir, file_sha256, refuse_existing
from riotvit.synth.city import CLASS_NAMES, build_layout
from riotvit.synth.events import draw_events
from riotvit.synth.render import Renderer
from riotvit.synth.truth import CENTRE, COEF, cell_scores, cell_truth, mark_onsets
from riotvit.synth.wards import build_wards

DEFAULT_DATES = [dt.date(2019, 6, 15), dt.date(2020, 6, 15), dt.date(2021, 6, 15), dt.date(2022, 6, 15)]


class SampleConfig(StrictModel):
    """Options of ``riotvit sample``."""

    seed: int = Field(7, description="Random seed; the same seed gives byte-identical files.")
    size_km: float = Field(12.0, gt=1.0, le=60.0, description="Side of the square city image, km (rounded to whole 672 m cells).")
    dates: list[dt.date] = Field(default_factory=lambda: list(DEFAULT_DATES),
                                 description="Acquisition dates of the images, strictly increasing; the last date's image is city.tif.")
    years_before: float = Field(3.5, gt=0, description="Years of event history before the first date.")
    years_after: float = Field(2.5, gt=0, description="Years of events after the last date (the label period).")
    epsg: int = Field(32737, description="UTM CRS of the image (default: WGS 84 / UTM 37S).")
    origin_lonlat: tuple[float, float] = Field((38.40, -2.60), description="Approximate lon/lat of the image's top-left corner.")

    @field_validator("dates", mode="before")
    @classmethod
    def _split(cls, v):
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("dates")
    @classmethod
    def _increasing(cls, v: list[dt.date]) -> list[dt.date]:
        if not v:
            raise ValueError("give at least one date (YYYY-MM-DD)")
        bad = [f"{a} >= {b}" for a, b in zip(v, v[1:]) if a >= b]
        if bad:
            raise ValueError(f"dates must be strictly increasing ({', '.join(bad)})")
        return v

    @property
    def image_date(self) -> dt.date:
        """The last acquisition date (the date of ``city.tif``)."""
        return self.dates[-1]


@dataclass
class SampleResult:
    path: Path
    n_events: int
    n_riots: int
    n_wards: int
    n_cells: int
    seconds: float
    images: list[str] = field(default_factory=list)
    onsets: dict[str, int] = field(default_factory=dict)


CELL_M = 672.0
GSD = files.GSD


def generate_sample(out: str | Path, config: SampleConfig | None = None, overwrite: bool = False) -> SampleResult:
    """Generate the synthetic city into ``out`` (written to ``out.partial`` then renamed)."""
    from pyproj import Transformer

    cfg = config or SampleConfig()
    out = Path(out)
    refuse_existing(out, overwrite, "sample folder")
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    n_cells = max(2, int(round(cfg.size_km * 1000 / CELL_M)))
    cell_px = int(CELL_M / GSD)
    n_px = n_cells * cell_px
    # snap the top-left corner to the 672 m grid so the image is aligned with the crop grid
    ox, oy = Transformer.from_crs(4326, cfg.epsg, always_xy=True).transform(*cfg.origin_lonlat)
    x0 = np.floor(ox / CELL_M) * CELL_M
    y1 = np.floor(oy / CELL_M) * CELL_M

    layout = build_layout(rng, n_px, GSD, len(cfg.dates))
    renderer = Renderer(rng, n_px, n_px)
    lcs = [timeline.landcover_at(layout, k) for k in range(len(cfg.dates))]
    wards = build_wards(rng, lcs[-1], GSD, x0, y1, cfg.epsg)
    wards_px = _ward_index(wards, n_px, x0, y1)
    scores = [cell_scores(lc, timeline.junctions_at(layout, k), cell_px, GSD) for k, lc in enumerate(lcs)]
    truth = cell_truth(scores, cfg.dates, wards_px, wards, cell_px)
    truth["col"] = (x0 / CELL_M + truth["cell_col_img"]).astype(int)
    truth["row"] = (y1 / CELL_M - 1 - truth["cell_row_img"]).astype(int)
    start = cfg.dates[0] - dt.timedelta(days=round(cfg.years_before * 365.25))
    end = cfg.dates[-1] + dt.timedelta(days=round(cfg.years_after * 365.25))
    acled = draw_events(rng, layout, truth, wards, cfg.dates, start, end, CELL_M, x0, y1, cfg.epsg)
    truth = mark_onsets(truth, acled, CELL_M, cfg.epsg)

    with atomic_dir(out, overwrite=overwrite) as tmp:
        meta = _write_sample(tmp, cfg, layout, renderer, lcs, wards, truth, acled, x0, y1, start, end)
    return SampleResult(out, len(acled), int((acled["event_type"] == "Riots").sum()), len(wards), n_cells * n_cells,
                        time.perf_counter() - t0, [im["file"] for im in meta["images"]],
                        {d["date"]: d["onsets"] for d in meta["dates"]})


def _write_sample(tmp: Path, cfg: SampleConfig, layout, renderer: Renderer, lcs: list[np.ndarray], wards, truth, acled,
                  x0: float, y1: float, start: dt.date, end: dt.date) -> dict:
    """Write the sample's files (one image at a time) and their ``sample.json`` into ``tmp``."""
    n_px = lcs[0].shape[-1]
    (tmp / "truth").mkdir()
    images, per_date, image = [], [], None
    for k, (d, lc) in enumerate(zip(cfg.dates, lcs)):
        last = k == len(cfg.dates) - 1
        image = renderer.render(lc, image, lcs[k - 1] if k else None)
        name = files.image_name(d, last)
        files.write_image(tmp / name, image, x0, y1, cfg.epsg, d, cfg.seed)
        files.write_landcover(tmp / "truth" / files.landcover_name(d, last), lc, x0, y1, cfg.epsg, CLASS_NAMES, d)
        images.append({"date": d.isoformat(), "file": name})
        rows = truth[truth["date_index"] == k]
        per_date.append({"date": d.isoformat(), "file": name, **timeline.counts_at(layout, k),
                         "cells_rate_rose": int((rows["log_rate"] > rows["log_rate_pre"]).sum()),
                         "onsets": int(rows["onset"].sum())})
    del image
    acled.to_csv(tmp / "acled.csv", index=False)
    files.write_wards(tmp / "wards.gpkg", wards)
    truth.to_parquet(tmp / "truth" / "cells.parquet", index=False)
    n_riots = int((acled["event_type"] == "Riots").sum())
    meta = {
        "generator": "riotvit.synth",
        "config": cfg.model_dump(mode="json"),
        "crs": f"EPSG:{cfg.epsg}",
        "image": {"width": n_px, "height": n_px, "gsd_m": GSD, "bounds": [x0, y1 - n_px * GSD, x0 + n_px * GSD, y1],
                  "bands": ["blue", "green", "red", "nir"], "date": cfg.image_date.isoformat()},
        "images": images,
        "dates": per_date,
        "events": {"n": len(acled), "riots": n_riots, "start": start.isoformat(), "end": end.isoformat(),
                   "by_type": acled["event_type"].value_counts().sort_index().to_dict()},
        "wards": len(wards),
        "cells": int((truth["date_index"] == 0).sum()),
        "planted": {"coefficients": COEF, "centres": CENTRE,
                    "markets": sum(p.kind == "market" for p in layout.patches),
                    "settlements": sum(p.kind == "informal" for p in layout.patches),
                    "new_road_date": None if layout.road_index is None else cfg.dates[layout.road_index].isoformat()},
        "files": {f: file_sha256(tmp / f) for f in [*(im["file"] for im in images), "acled.csv", "wards.gpkg"]},
    }
    (tmp / "sample.json").write_text(json.dumps(meta, indent=2))
    (tmp / "SAMPLE.md").write_text(files.readme(meta))
    return meta


def _ward_index(wards, n_px: int, x0: float, y1: float) -> np.ndarray:
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    t = Affine(GSD, 0, x0, 0, -GSD, y1)
    lab = rasterize([(g, i + 1) for i, g in enumerate(wards.geometry)], out_shape=(n_px, n_px), transform=t, dtype=np.int32)
    return np.maximum(lab - 1, 0)
