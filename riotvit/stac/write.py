"""STAC out: describe a prediction folder as a self-contained STAC Catalog with one Item.

The Item's ``start_datetime``/``end_datetime`` are the forecast window (the days the risk is
about), its ``datetime`` is null, and the forecast origin is ``riotvit:as_of``. Its footprint is
the risk raster's, in lon/lat. Each output present in the folder is an asset with roles and a
media type; rasters carry the ``proj:`` and ``raster:bands`` extensions. Every href is relative,
so the folder can be moved or published as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from riotvit.io import atomic_file
from riotvit.stac.errors import StacError
from riotvit.stac.validate import validate_stac
from riotvit.window import run_window

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
ASSETS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    # (file pattern, key, roles, media type, title)
    ("risk.tif", "risk", ("data",), COG, "Riot risk: probability, expected events, uncertainty"),
    ("drivers.tif", "drivers", ("data",), COG, "Drivers of the risk per cell"),
    ("*.tif", "", ("data",), COG, ""),
    ("cells.gpkg", "cells", ("data",), "application/geopackage+sqlite3", "Cells: risk, interval and top drivers"),
    ("cells.geojson", "cells_geojson", ("data",), "application/geo+json", "Cells (GeoJSON)"),
    ("admin.gpkg", "admin", ("data",), "application/geopackage+sqlite3", "Risk summary per admin unit"),
    ("admin*.csv", "", ("data",), "text/csv", "Risk summary per admin unit (table)"),
    ("*.gpkg", "", ("data",), "application/geopackage+sqlite3", ""),
    ("map.png", "map", ("overview", "visual"), "image/png", "Map"),
    ("map.pdf", "map_pdf", ("overview",), "application/pdf", "Map (print layout)"),
    ("*.png", "", ("overview",), "image/png", ""),
    ("model_card.md", "model_card", ("metadata",), "text/markdown", "Model card"),
    ("riotvit.qgs", "qgis_project", ("metadata",), "application/x-qgis", "QGIS project with styles and print layout"),
    ("run.json", "run", ("metadata",), "application/json", "How the prediction was made (riotvit run.json)"),
    ("*.qml", "", ("metadata", "style"), "application/xml", ""),
)
"""What each output is, first match wins; other files are not listed."""

BAND_UNITS = {"riot_probability": "1", "uncertainty": "1", "expected_events": "{events}"}
"""UCUM units of the risk bands: probabilities are dimensionless, counts are annotated."""
CATALOG_ID = "riotvit-prediction"
"""The id of the catalog riotvit writes (how a rewrite knows the catalog and its items are its own)."""
STATS_MAX_PX = 1024
"""Statistics are computed on a read decimated to at most this many pixels a side."""


def prediction_window(pred_dir: Path) -> dict[str, Any]:
    """The forecast window of a prediction folder: ``run.json["window"]`` when present, else
    derived from ``run.json["date"]`` and the bundle's ``bundle.json`` (lead and horizon days).

    Raises:
        StacError: no run.json, or no way to know the window.
    """
    run_path = pred_dir / "run.json"
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StacError(f"{run_path}: missing or unreadable; is {pred_dir} a prediction folder (riotvit predict)?") from None
    bundle = pred_dir / str((run.get("model") or {}).get("path", "")) / "bundle.json"
    try:
        meta = json.loads(bundle.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    w = run_window(run, meta)
    if w is None:
        raise StacError(f"{run_path}: no 'window', and the date or the model's bundle.json ({bundle}) is missing; "
                        "pass window= or rerun riotvit predict")
    return w.to_dict()


def _window_dict(window: Any) -> dict[str, Any]:
    if window is None or isinstance(window, dict):
        return window
    if hasattr(window, "to_dict"):
        d = dict(window.to_dict())
        if getattr(window, "label", None):
            d.setdefault("label", window.label)
        return d
    raise StacError(f"window={window!r}: give a ForecastWindow or its dict")


def _raster_info(path: Path) -> dict[str, Any]:
    """proj: fields and raster:bands of a GeoTIFF, statistics from a decimated read."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        f = max(1, math.ceil(max(src.width, src.height) / STATS_MAX_PX))
        shape = (max(1, src.height // f), max(1, src.width // f))
        bands = []
        for i in range(1, src.count + 1):
            a = src.read(i, masked=True, out_shape=shape).astype("float64")
            v = a.compressed()
            v = v[np.isfinite(v)]
            desc = src.descriptions[i - 1] or f"band_{i}"
            b: dict[str, Any] = {"data_type": src.dtypes[i - 1]}
            if src.nodata is not None:
                b["nodata"] = "nan" if math.isnan(src.nodata) else src.nodata
            if desc in BAND_UNITS:
                b["unit"] = BAND_UNITS[desc]
            if v.size:
                b["statistics"] = {"minimum": float(v.min()), "maximum": float(v.max()), "mean": float(v.mean()),
                                   "stddev": float(v.std()), "valid_percent": round(100.0 * v.size / a.size, 3)}
            bands.append((desc, b))
        t = src.transform
        lonlat = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        return {"epsg": src.crs.to_epsg(), "wkt": src.crs.to_wkt(), "shape": [src.height, src.width],
                "transform": [t.a, t.b, t.c, t.d, t.e, t.f], "bands": bands, "lonlat": lonlat}


def _classify(name: str) -> tuple[str, tuple[str, ...], str, str] | None:
    from fnmatch import fnmatch

    for pat, key, roles, media, title in ASSETS:
        if fnmatch(name, pat):
            return key or name.replace(".", "_"), roles, media, title or name
    return None


def _cell(pred_dir: Path) -> str:
    """``672 m cell`` from run.json's grid (``cell`` when it does not say)."""
    try:
        grid = json.loads((pred_dir / "run.json").read_text(encoding="utf-8")).get("grid") or {}
        return f"{float(grid['crop_m']):g} m cell"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "cell"


def _window_datetime(day: str, end: bool) -> dt.datetime:
    d = dt.date.fromisoformat(str(day)[:10])
    t = dt.time(23, 59, 59) if end else dt.time(0, 0, 0)
    return dt.datetime.combine(d, t, tzinfo=dt.timezone.utc)


def build_prediction_item(pred_dir: Path, window: dict[str, Any], item_id: str):
    """The pystac Item of a prediction folder (absolute asset hrefs; the writer makes them relative)."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterBand, RasterExtension

    risk = pred_dir / "risk.tif"
    if not risk.is_file():
        raise StacError(f"{pred_dir}: no risk.tif; give a prediction folder written by riotvit predict")
    info = _raster_info(risk)
    w, s, e, n = info["lonlat"]
    geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    types = list(window.get("event_types") or ["Riots"])
    label = window.get("label") or f"P(≥ 1 riot), {window['start']} → {window['end']}"
    props = {
        "start_datetime": pystac.utils.datetime_to_str(_window_datetime(window["start"], end=False)),
        "end_datetime": pystac.utils.datetime_to_str(_window_datetime(window["end"], end=True)),
        "title": f"riotvit riot risk: {label}",
        "description": (f"Probability of at least one ACLED event of type {', '.join(types)} per {_cell(pred_dir)} from "
                        f"{window['start']} to {window['end']} (inclusive), forecast as of {window.get('as_of')}."),
        "riotvit:as_of": window.get("as_of"),
        "riotvit:lead_days": window.get("lead_days"),
        "riotvit:horizon_days": window.get("horizon_days"),
        "riotvit:event_types": types,
    }
    item = pystac.Item(item_id, geom, [w, s, e, n], None, props)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    if info["epsg"]:
        proj.epsg = info["epsg"]
    else:
        proj.wkt2 = info["wkt"]
    proj.shape, proj.transform = info["shape"], info["transform"]
    RasterExtension.add_to(item)
    for p in sorted(pred_dir.iterdir()):
        kind = _classify(p.name) if p.is_file() and not p.name.startswith(".") else None
        if kind is None:
            continue
        key, roles, media, title = kind
        asset = pystac.Asset(str(p.resolve()), title=title, media_type=media, roles=list(roles))
        item.add_asset(key, asset)
        if p.suffix == ".tif":
            ri = info if p == risk else _raster_info(p)
            ap = ProjectionExtension.ext(asset)
            ap.shape, ap.transform = ri["shape"], ri["transform"]
            if ri["epsg"]:
                ap.epsg = ri["epsg"]
            RasterExtension.ext(asset).bands = [RasterBand.create(**_band_kwargs(b)) for _, b in ri["bands"]]
            asset.description = "Bands: " + ", ".join(d for d, _ in ri["bands"])
    return item


def _band_kwargs(b: dict[str, Any]) -> dict[str, Any]:
    from pystac.extensions.raster import DataType, Statistics

    kw: dict[str, Any] = {"data_type": DataType(b["data_type"])}
    if "nodata" in b:
        kw["nodata"] = b["nodata"]  # "nan" as a string: what the raster extension allows, and valid JSON
    if "unit" in b:
        kw["unit"] = b["unit"]
    if "statistics" in b:
        kw["statistics"] = Statistics.create(**b["statistics"])
    return kw


def _previous_items(catalog: Path) -> set[Path]:
    """Item files linked by an earlier riotvit catalog of this folder (replaced when rewritten)."""
    try:
        d = json.loads(catalog.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(d, dict) or d.get("id") != CATALOG_ID:
        return set()
    root = catalog.parent.resolve()
    found = set()
    for link in d.get("links", []):
        p = (root / str(link.get("href", ""))).resolve()
        if link.get("rel") == "item" and p.suffix == ".json" and root in p.parents:
            found.add(p)
    return found


def write_prediction_stac(pred_dir: str | Path, *, window: Any = None, item_id: str | None = None,
                          validate: bool = True) -> Path:
    """Write ``catalog.json`` and ``<item>/<item>.json`` into a prediction folder.

    Args:
        pred_dir: the prediction folder (``risk.tif``, ``run.json``, ...); may be the temporary
            folder a prediction is being written in: every href is relative.
        window: the forecast window (a ``ForecastWindow`` or its dict); default: ``run.json``'s.
        item_id: default: ``riot-risk-<as_of>``.
        validate: check the written catalog with the shipped schemas (offline).

    Returns:
        The path of ``catalog.json``.

    Raises:
        StacError: not a prediction folder, no window, or a catalog that does not validate.
    """
    import pystac

    pred_dir = Path(pred_dir)
    win = _window_dict(window) or prediction_window(pred_dir)
    item_id = item_id or f"riot-risk-{win.get('as_of') or win['start']}"
    item = build_prediction_item(pred_dir, win, item_id)
    cat = pystac.Catalog(CATALOG_ID, f"riotvit prediction: {item.properties['title']}",
                         title="riotvit prediction", catalog_type=pystac.CatalogType.SELF_CONTAINED)
    cat.add_item(item)
    # lay out in memory with absolute hrefs, then write each file atomically with relative links
    # a trailing slash: pystac would take a folder named like a file ("pred.partial") for a file
    cat.normalize_hrefs(str(pred_dir.resolve()) + "/")
    cat.make_all_asset_hrefs_relative()
    catalog = pred_dir / "catalog.json"
    stale = _previous_items(catalog)
    # the item first, so the catalog never links a missing file
    files = {Path(item.get_self_href()): item.to_dict(include_self_link=False, transform_hrefs=True),
             Path(cat.get_self_href()): cat.to_dict(include_self_link=False, transform_hrefs=True)}
    for path, d in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(d, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    for old in stale - {p.resolve() for p in files}:
        old.unlink(missing_ok=True)
        if old.parent != pred_dir.resolve() and not any(old.parent.iterdir()):
            old.parent.rmdir()
    if validate:

        validate_stac(catalog)
    return catalog
