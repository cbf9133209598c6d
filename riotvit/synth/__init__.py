"""The embedded sample: a deterministic synthetic city every stage and the demo run on.

``generate_sample(out)`` writes, from a seed:

- ``city.tif``: 4-band (blue, green, red, nir) uint16 GeoTIFF in UTM 37S at 3 m, with an
  acquisition date tag; road network, informal settlements, formal blocks, markets,
  industrial zones, vegetation and water with realistic spectra and texture;
- ``acled.csv``: ACLED-format events (31 columns, real vocabulary) for several years before and
  after the image date, whose riots depend on what is visible and on the census;
- ``wards.gpkg``: census wards (EPSG:4326) with population, households, youth share and
  unemployment rate;
- ``truth/cells.parquet`` and ``truth/landcover.tif``: the planted drivers and rates per 672 m
  cell (see ``riotvit.synth.truth`` for the formula), so tests can check what a model learned;
- ``sample.json`` (parameters, counts, checksums) and ``SAMPLE.md`` (the planted relationships).

The city is fictional ("Synth City", country "Synthland", ISO 999) and placed in UTM zone 37S;
nothing in it is real data.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from riotvit.config import StrictModel
from riotvit.io import atomic_dir, file_sha256, refuse_existing
from riotvit.synth import truth
from riotvit.synth.city import CLASS_NAMES, build_layout, render_image
from riotvit.synth.events import draw_events
from riotvit.synth.truth import CENTRE, COEF, cell_truth
from riotvit.synth.wards import build_wards


class SampleConfig(StrictModel):
    """Options of ``riotvit sample``."""

    seed: int = Field(7, description="Random seed; the same seed gives byte-identical files.")
    size_km: float = Field(12.0, gt=1.0, le=60.0, description="Side of the square city image, km (rounded to whole 672 m cells).")
    image_date: dt.date = Field(dt.date(2022, 6, 15), description="Acquisition date of the image.")
    years_before: float = Field(3.5, gt=0, description="Years of event history before the image date.")
    years_after: float = Field(2.5, gt=0, description="Years of events after the image date (the label period).")
    epsg: int = Field(32737, description="UTM CRS of the image (default: WGS 84 / UTM 37S).")
    origin_lonlat: tuple[float, float] = Field((38.40, -2.60), description="Approximate lon/lat of the image's top-left corner.")


@dataclass
class SampleResult:
    path: Path
    n_events: int
    n_riots: int
    n_wards: int
    n_cells: int
    seconds: float


CELL_M = 672.0
GSD = 3.0


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

    layout = build_layout(rng, n_px, GSD)
    image = render_image(rng, layout)
    wards = build_wards(rng, layout, GSD, x0, y1, cfg.epsg)
    wards_px = _ward_index(wards, n_px, x0, y1)
    truth = cell_truth(layout, wards_px, wards, cell_px, GSD)
    truth["col"] = (x0 / CELL_M + truth["cell_col_img"]).astype(int)
    truth["row"] = (y1 / CELL_M - 1 - truth["cell_row_img"]).astype(int)
    start = cfg.image_date - dt.timedelta(days=round(cfg.years_before * 365.25))
    end = cfg.image_date + dt.timedelta(days=round(cfg.years_after * 365.25))
    acled = draw_events(rng, layout, truth, wards, cfg.image_date, start, end, CELL_M, x0, y1, cfg.epsg)

    with atomic_dir(out, overwrite=overwrite) as tmp:
        _write_sample(tmp, cfg, layout, image, wards, truth, acled, x0, y1, start, end)
    return SampleResult(out, len(acled), int((acled["event_type"] == "Riots").sum()), len(wards), len(truth),
                        time.perf_counter() - t0)


def _write_sample(tmp: Path, cfg: SampleConfig, layout, image: np.ndarray, wards, truth, acled, x0: float, y1: float,
                  start: dt.date, end: dt.date) -> None:
    """Write the sample's files and their ``sample.json`` into ``tmp``."""
    n_px = image.shape[-1]
    (tmp / "truth").mkdir()
    _write_image(tmp / "city.tif", image, x0, y1, cfg)
    _write_landcover(tmp / "truth" / "landcover.tif", layout.landcover, x0, y1, cfg.epsg, CLASS_NAMES)
    acled.to_csv(tmp / "acled.csv", index=False)
    wards.to_crs(4326).to_file(tmp / "wards.gpkg", layer="wards", driver="GPKG", VERSION="1.3")
    truth.to_parquet(tmp / "truth" / "cells.parquet", index=False)
    n_riots = int((acled["event_type"] == "Riots").sum())
    meta = {
        "generator": "riotvit.synth",
        "config": cfg.model_dump(mode="json"),
        "crs": f"EPSG:{cfg.epsg}",
        "image": {"width": n_px, "height": n_px, "gsd_m": GSD, "bounds": [x0, y1 - n_px * GSD, x0 + n_px * GSD, y1],
                  "bands": ["blue", "green", "red", "nir"], "date": cfg.image_date.isoformat()},
        "events": {"n": len(acled), "riots": n_riots, "start": start.isoformat(), "end": end.isoformat(),
                   "by_type": acled["event_type"].value_counts().sort_index().to_dict()},
        "wards": len(wards),
        "cells": len(truth),
        "planted": {"coefficients": COEF, "centres": CENTRE,
                    "new_markets": sum(p.new for p in layout.patches if p.kind == "market"),
                    "markets": sum(p.kind == "market" for p in layout.patches),
                    "new_settlements": sum(p.new for p in layout.patches if p.kind == "informal"),
                    "settlements": sum(p.kind == "informal" for p in layout.patches)},
        "files": {f: file_sha256(tmp / f) for f in ("city.tif", "acled.csv")},
    }
    (tmp / "sample.json").write_text(json.dumps(meta, indent=2))
    (tmp / "SAMPLE.md").write_text(_readme(meta))


def _ward_index(wards, n_px: int, x0: float, y1: float) -> np.ndarray:
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    t = Affine(GSD, 0, x0, 0, -GSD, y1)
    lab = rasterize([(g, i + 1) for i, g in enumerate(wards.geometry)], out_shape=(n_px, n_px), transform=t, dtype=np.int32)
    return np.maximum(lab - 1, 0)


def _write_image(path: Path, image: np.ndarray, x0: float, y1: float, cfg: SampleConfig) -> None:
    import rasterio
    from rasterio.transform import Affine

    profile = dict(driver="GTiff", width=image.shape[2], height=image.shape[1], count=4, dtype="uint16",
                   crs=f"EPSG:{cfg.epsg}", transform=Affine(GSD, 0, x0, 0, -GSD, y1), tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", predictor=2, zlevel=1, interleave="pixel")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
        dst.descriptions = ("blue", "green", "red", "nir")
        dst.update_tags(ACQUISITION_DATE=cfg.image_date.isoformat(), SOURCE="riotvit synthetic city",
                        SEED=str(cfg.seed))


def _write_landcover(path: Path, lc: np.ndarray, x0: float, y1: float, epsg: int, names: list[str]) -> None:
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(path, "w", driver="GTiff", width=lc.shape[1], height=lc.shape[0], count=1, dtype="uint8",
                       crs=f"EPSG:{epsg}", transform=Affine(GSD, 0, x0, 0, -GSD, y1), tiled=True,
                       compress="deflate") as dst:
        dst.write(lc, 1)
        dst.update_tags(CLASSES=",".join(f"{i}:{n}" for i, n in enumerate(names)))


def _readme(meta: dict) -> str:

    c = meta["planted"]["coefficients"]
    return f"""# riotvit synthetic city (seed {meta['config']['seed']})

Fictional data made by `riotvit sample`; nothing here is real.

- `city.tif`: {meta['image']['width']} x {meta['image']['height']} px, 3 m, {meta['crs']}, bands blue, green, red, nir (uint16 reflectance x 10000), acquired {meta['image']['date']}.
- `acled.csv`: {meta['events']['n']} events ({meta['events']['riots']} riots) from {meta['events']['start']} to {meta['events']['end']}, ACLED current export format.
- `wards.gpkg`: {meta['wards']} census wards (EPSG:4326): population, households, youth_share, unemployment_rate.
- `truth/cells.parquet`: planted drivers and rates per 672 m cell; `truth/landcover.tif`: the land-cover map.

## Planted relationships
{truth.__doc__.split('riots in the synthetic city.', 1)[-1].strip()}

Coefficients: {json.dumps(c)}. Markets: {meta['planted']['markets']} ({meta['planted']['new_markets']} new);
informal settlements: {meta['planted']['settlements']} ({meta['planted']['new_settlements']} new).
"""
