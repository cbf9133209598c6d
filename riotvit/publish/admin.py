"""Admin-unit summaries of a prediction: ``admin.gpkg``, ``admin.csv`` and ``admin.qml``.

Humanitarian teams plan by wards, districts and P-codes, not by 672 m cells. Per admin unit
:func:`summarise_admin` gives:

- ``expected_riots``: the expected number of riots in the forecast window, the sum over the
  unit's cells of their expected events, each cell weighted by the share of its area inside the
  unit (a cell split by a boundary counts in both units, in proportion); with
  ``expected_riots_p10``/``_p90``, the 10-90 % interval of that count. The interval treats the
  cells' counts as independent negative binomials (NB2, the bundle's dispersion ``alpha``;
  Poisson when it has none), thinned by the area share, and moment-matches their sum to one
  negative binomial: mean ``M = Σ w μ``, variance ``V = Σ (w μ + α (w μ)²)``, dispersion
  ``(V - M) / M²``. Cells' counts that move together would widen it: read it as a lower bound of
  the uncertainty.
- ``mean_probability`` (area-weighted over the covered part) and ``max_probability`` of the cells'
  ``riot_probability``.
- ``pop_weighted_probability`` and ``population_covered`` (the people in the covered part) when a
  population raster or a cells column of population is given.
- ``coverage``: the share of the unit's area covered by predicted cells.
- ``top_drivers``: the three ``shap_*`` columns with the largest area-weighted mean |value|,
  with sign, e.g. ``riots within 2 km in the past year (+0.121); youth share (+0.040)``.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riotvit.errors import InputError, clip, suggest
from riotvit.io import atomic_file, resolve_recorded
from riotvit.publish.maptexts import read_run, read_window
from riotvit.publish.qgis_project import LayerSpec
from riotvit.publish.styles import RAMPS, vector_graduated_qml, write_style
from riotvit.train.forecast_metrics import count_interval

PROB = "riot_probability"
MEAN = "expected_events"
SLIVER_M2 = 1.0  # pieces of a cell smaller than this (touching boundaries) are ignored
N_DRIVERS = 3
SUMMARY_COLUMNS = ("cells", "coverage", "expected_riots", "expected_riots_p10", "expected_riots_p90",
                   "mean_probability", "max_probability", "pop_weighted_probability", "population_covered", "top_drivers")
_ID_HINTS = re.compile(r"pcode|(^|_)id$|^id|code|name|county|ward|district", re.IGNORECASE)


class AdminError(InputError):
    """Admin units cannot be read or summarised against a prediction."""


def _where(admin: gpd.GeoDataFrame) -> str:
    return str(admin.attrs.get("source", "the admin layer"))


def guess_id_column(admin: gpd.GeoDataFrame) -> str:
    """The first attribute that looks like a unit id or name and is unique per unit.

    Raises:
        AdminError: no such column (the message lists the columns).
    """
    cols = [c for c in admin.columns if c != admin.geometry.name]
    for c in sorted(cols, key=lambda c: (not _ID_HINTS.search(str(c)), cols.index(c))):
        v = admin[c]
        if v.notna().all() and v.is_unique and (v.dtype == object or _ID_HINTS.search(str(c))):
            return str(c)
    raise AdminError(f"{_where(admin)}: no column identifies the units uniquely; pass --admin-id, one of "
                     f"{clip(cols, 200)}")


def read_admin(path: str | Path, id_col: str | None = None) -> tuple[gpd.GeoDataFrame, str]:
    """Read admin units (any vector file GDAL reads; the first layer) and pick their id column.

    Raises:
        AdminError: unreadable file, no CRS, or the id column is missing.
    """
    path = Path(path)
    if not path.exists():
        raise AdminError(f"{path}: admin units file not found; pass an existing GeoPackage, GeoJSON or shapefile")
    try:
        admin = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - GDAL raises many kinds; the user needs one line
        raise AdminError(f"{path}: not a readable vector file ({clip(str(exc), 120)}); "
                         "pass a GeoPackage, GeoJSON or shapefile of polygons") from None
    if not isinstance(admin, gpd.GeoDataFrame) or admin.geometry is None or admin.geometry.isna().all():
        raise AdminError(f"{path}: holds no geometries (a table, not admin units); pass a GeoPackage, GeoJSON or "
                         "shapefile of polygons")
    admin.attrs["source"] = str(path)
    if id_col is None:
        id_col = guess_id_column(admin)
    _check_admin(admin, id_col)
    return admin, id_col


def _check(cells: gpd.GeoDataFrame, admin: gpd.GeoDataFrame, id_col: str) -> None:
    _check_admin(admin, id_col)
    if cells.crs is None:
        raise AdminError("the cells have no CRS; rerun `riotvit predict` to rewrite cells.gpkg")
    if PROB not in cells.columns:
        raise AdminError(f"the cells have no {PROB!r} column; pass the cells layer of a riotvit prediction")


def _check_admin(admin: gpd.GeoDataFrame, id_col: str) -> None:
    """What can be wrong with admin units alone: no CRS, no such id column, no polygons."""
    where = _where(admin)
    if admin.crs is None:
        raise AdminError(f"{where}: the admin units have no CRS; set it (e.g. `ogr2ogr -a_srs EPSG:4326 out.gpkg "
                         "in.shp`) and try again")
    if id_col not in admin.columns:
        cols = [c for c in admin.columns if c != admin.geometry.name]
        same = [str(c) for c in cols if str(c).lower() == str(id_col).lower()]
        hint = f" (did you mean: {same[0]}?)" if same else suggest(id_col, cols)
        raise AdminError(f"{where}: no column {id_col!r}{hint}; pass --admin-id, one of "
                         f"{clip(cols, 200)}")
    if not admin.geom_type.isin(["Polygon", "MultiPolygon"]).any():
        raise AdminError(f"{where}: no polygons ({sorted(set(admin.geom_type))}); pass admin unit polygons")


def _check_no_overlap(cells: gpd.GeoDataFrame, sample: int = 2000) -> None:
    """Summing cells is only right when they tile the ground: refuse overlapping crops (checked on a
    sample of cells, so it stays cheap on large regions)."""
    cg = cells.geometry.to_numpy()
    if cg.size < 2:
        return
    pick = cg if cg.size <= sample else cg[np.random.default_rng(0).choice(cg.size, sample, replace=False)]
    hits = shapely.STRtree(cg).query(pick, predicate="overlaps")
    if hits.shape[1]:
        raise AdminError(f"the cells overlap ({hits.shape[1]} overlapping pairs among {pick.size} sampled cells): "
                         "summing them would count riots more than once; pass the non-overlapping cells layer "
                         "(one polygon per stride cell) of a riotvit prediction")


def _lonlat_bounds(g: gpd.GeoDataFrame) -> str:
    b = g.to_crs(4326).total_bounds
    return "(" + ", ".join(f"{v:.3f}" for v in b) + ")"


def _population(pieces: gpd.GeoDataFrame, population: Path | str | None, cells: gpd.GeoDataFrame) -> np.ndarray | None:
    """People in each piece: from a population raster (pixel centres in the piece) or a cells column
    (the cell's population, shared by area)."""
    if population is None:
        return None
    if isinstance(population, str) and not Path(population).suffix:
        if population not in cells.columns:
            raise AdminError(f"population column {population!r} is not in the cells{suggest(population, cells.columns)}; "
                             "pass a population raster or a cells column")
        return pieces["_w"].to_numpy() * pieces[population].to_numpy(dtype=np.float64)
    return _raster_population(pieces, Path(population))


def _raster_population(pieces: gpd.GeoDataFrame, path: Path) -> np.ndarray:
    import rasterio
    from rasterio.windows import from_bounds

    try:
        ds = rasterio.open(path)
    except Exception as exc:  # noqa: BLE001
        raise AdminError(f"{path}: not a readable population raster ({clip(str(exc), 120)}); pass a GeoTIFF of "
                         "people per pixel (e.g. WorldPop)") from None
    with ds:
        if ds.crs is None:
            raise AdminError(f"{path}: the population raster has no CRS; set one with gdal_edit.py -a_srs")
        local = pieces.to_crs(ds.crs)
        win = from_bounds(*local.total_bounds, transform=ds.transform).round_offsets().round_lengths()
        try:
            win = win.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))
        except rasterio.errors.WindowError:
            return np.zeros(len(pieces))  # the raster does not reach the prediction
        data = ds.read(1, window=win, masked=True, boundless=False)
        tr = ds.window_transform(win)
    r, c = np.nonzero(~np.ma.getmaskarray(data) & (np.ma.getdata(data) > 0))
    out = np.zeros(len(pieces))
    if r.size == 0:
        return out
    xs = tr.c + (c + 0.5) * tr.a + (r + 0.5) * tr.b
    ys = tr.f + (c + 0.5) * tr.d + (r + 0.5) * tr.e
    pts = gpd.GeoDataFrame({"pop": np.ma.getdata(data)[r, c].astype(np.float64)},
                           geometry=gpd.points_from_xy(xs, ys), crs=local.crs)
    hit = gpd.sjoin(pts, local[[local.geometry.name]].reset_index(drop=True), predicate="within", how="inner")
    sums = hit.groupby("index_right")["pop"].sum()
    out[sums.index.to_numpy()] = sums.to_numpy()
    return out


def _pieces(cells: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The cells cut by the units: one row per (cell, unit) that overlap by more than a sliver, with
    the cell's attributes, ``_unit`` (row of ``units``), ``_a`` (area) and ``_w`` (share of the cell).

    Cells wholly inside a unit are kept whole; only those on a boundary are intersected.
    """
    cg, ug = cells.geometry.to_numpy(), units.geometry.to_numpy()
    shapely.prepare(ug)
    ui, ci = shapely.STRtree(cg).query(ug, predicate="intersects")
    inside = shapely.contains_properly(ug[ui], cg[ci])
    geom = cg[ci].copy()
    edge = ~inside
    geom[edge] = shapely.intersection(cg[ci][edge], ug[ui][edge])
    area = shapely.area(geom)
    ok = area > SLIVER_M2
    cell_area = shapely.area(cg[ci])
    out = cells.drop(columns=cells.geometry.name).iloc[ci[ok]].reset_index(drop=True)
    out["_unit"], out["_a"], out["_w"] = ui[ok], area[ok], area[ok] / cell_area[ok]
    return gpd.GeoDataFrame(out, geometry=geom[ok], crs=cells.crs)


def _drivers(pieces: pd.DataFrame, unit: pd.Series, label: Callable[[str], str]) -> pd.Series:
    shap = [c for c in pieces.columns if c.startswith("shap_")]
    if not shap:
        return pd.Series("", index=unit.unique())
    a = pieces["_a"].to_numpy()[:, None]
    num = pd.DataFrame(pieces[shap].to_numpy(dtype=np.float64) * a, columns=shap).groupby(unit.to_numpy()).sum()
    den = pd.Series(pieces["_a"].to_numpy()).groupby(unit.to_numpy()).sum()
    mean = num.div(den, axis=0)

    def text(row: pd.Series) -> str:
        top = row.dropna().abs().sort_values(ascending=False).index[:N_DRIVERS]
        return "; ".join(f"{label(c[len('shap_'):])} ({row[c]:+.3f})" for c in top)

    return mean.apply(text, axis=1)


def summarise_admin(cells: gpd.GeoDataFrame, admin: gpd.GeoDataFrame, id_col: str, *,
                    population: Path | str | None = None, label: Callable[[str], str] = lambda name: name,
                    alpha: float | None = None, cell_share: float = 1.0) -> gpd.GeoDataFrame:
    """Summarise a prediction's cells per admin unit (see the module docstring for each column).

    Args:
        cells: one polygon per cell with ``riot_probability`` and, for count bundles,
            ``expected_events``; ``shap_*`` drivers when explained.
        admin: the admin unit polygons (any CRS); units sharing an id are merged.
        id_col: the column that identifies a unit.
        population: a population raster (people per pixel) or a cells column of people per cell.
        label: a feature name -> human label (for ``top_drivers``).
        alpha: the count dispersion of the bundle (NB2); None or 0 for Poisson.
        cell_share: the share of each row's expected riots that falls in its polygon. 1 for the
            cells ``riotvit predict`` writes (their counts are per cell already); ``(stride / crop)²``
            for per-crop counts on stride cells (summing whole crop counts of overlapping crops
            would count each riot about four times at overlap 0.5).

    Returns:
        One row per unit that the prediction covers: the unit's attributes, then the summary
        columns, in the cells' CRS, sorted by expected riots (then probability), highest first.

    Raises:
        AdminError: no CRS, missing id column, overlapping cells, or no overlap with the prediction.
    """
    _check(cells, admin, id_col)
    _check_no_overlap(cells)
    crs = cells.crs if not cells.crs.is_geographic else cells.estimate_utm_crs()
    cells = cells.to_crs(crs).reset_index(drop=True)
    units = admin[admin.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs(crs)
    units = units.dissolve(by=id_col, as_index=False, aggfunc="first") if not units[id_col].is_unique else units
    units = units.reset_index(drop=True)
    units[units.geometry.name] = units.geometry.make_valid()

    keep = [c for c in cells.columns if c in (PROB, MEAN) or c.startswith("shap_")
            or (isinstance(population, str) and c == population)]
    pieces = _pieces(cells, units)[keep + ["_unit", "_a", "_w", "geometry"]] if len(cells) else cells
    if pieces.empty:
        raise AdminError(f"{_where(admin)}: no admin unit overlaps the prediction; the units cover "
                         f"{_lonlat_bounds(units)} and the cells {_lonlat_bounds(cells)} (lon/lat); "
                         "pass the admin units of the predicted region")
    u = pieces["_unit"]
    g = pieces.groupby(u)
    area = g["_a"].sum()
    out = pd.DataFrame(index=area.index)
    out["cells"] = g.size()
    out["coverage"] = (area / units.geometry.area.to_numpy()[area.index]).clip(upper=1.0).round(4)
    p = pieces[PROB].to_numpy(dtype=np.float64)
    out["mean_probability"] = (pd.Series(p * pieces["_a"]).groupby(u).sum() / area).round(4)
    out["max_probability"] = g[PROB].max().round(4)
    if MEAN in pieces.columns:
        wm = pieces["_w"] * pieces[MEAN].astype(np.float64) * float(cell_share)
        m = wm.groupby(u).sum()
        a = float(alpha or 0.0)
        v = (wm + a * wm**2).groupby(u).sum()
        unit_alpha = np.where(m > 0, np.clip(v - m, 0, None) / np.where(m > 0, m, 1.0) ** 2, 0.0)
        lo, hi = count_interval(m.to_numpy(), 0.1, 0.9, alpha=unit_alpha)
        out["expected_riots"] = m.round(4)
        out["expected_riots_p10"], out["expected_riots_p90"] = lo, hi
    else:
        out["expected_riots"] = out["expected_riots_p10"] = out["expected_riots_p90"] = np.nan
    pop = _population(pieces, population, cells)
    if pop is not None:
        ps = pd.Series(pop).groupby(u).sum()
        out["population_covered"] = ps.round(0)
        out["pop_weighted_probability"] = (pd.Series(pop * p).groupby(u).sum() / ps.where(ps > 0)).round(4)
    else:
        out["population_covered"] = out["pop_weighted_probability"] = np.nan
    out["top_drivers"] = _drivers(pieces, u, label).reindex(out.index).fillna("")

    attrs = units.drop(columns=[c for c in SUMMARY_COLUMNS if c in units.columns]).iloc[out.index]
    res = gpd.GeoDataFrame(pd.concat([attrs.drop(columns=attrs.geometry.name).reset_index(drop=True),
                                      out[list(SUMMARY_COLUMNS)].reset_index(drop=True)], axis=1),
                           geometry=attrs.geometry.to_numpy(), crs=crs)
    order = res.sort_values(["expected_riots", "mean_probability"], ascending=False, na_position="last").index
    return res.loc[order].reset_index(drop=True)


def admin_classes(values: np.ndarray, n: int = 5) -> list[tuple[float, float, str, str]]:
    """Quantile classes of expected riots for a graduated style: ``(lower, upper, colour, label)``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [(0.0, 1.0, RAMPS["risk"][0], "no count forecast")]
    edges = np.unique(np.round(np.quantile(v, np.linspace(0, 1, n + 1)), 2))
    if edges.size < 2:
        edges = np.array([edges[0], edges[0] + 0.01])
    edges[0], edges[-1] = min(edges[0], v.min()), max(edges[-1], v.max())
    colours = RAMPS["risk"]
    k = edges.size - 1
    pick = [colours[round(i * (len(colours) - 1) / max(k - 1, 1))] for i in range(k)]
    return [(float(edges[i]), float(edges[i + 1]), pick[i], f"{edges[i]:.2f}–{edges[i + 1]:.2f} expected riots")
            for i in range(k)]


def admin_qml(summary: gpd.GeoDataFrame, opacity: float = 0.4) -> str:
    """The style of ``admin.gpkg``: graduated on ``expected_riots`` (quantile classes)."""
    field = "expected_riots" if summary["expected_riots"].notna().any() else "mean_probability"
    return vector_graduated_qml(field, admin_classes(summary[field].to_numpy()), "polygon", outline="#222222",
                                opacity=opacity, outline_width=0.5)


def admin_layer(pred_dir: str | Path, window_label: str | None = None, visible: bool = True) -> LayerSpec:
    """The project layer of the ``admin.gpkg`` written by :func:`write_admin_summary`, styled by its
    ``admin.qml``, for :func:`~riotvit.publish.qgis_project.write_qgis_project`."""
    name = "admin units: expected riots" + (f", {window_label}" if window_label else "")
    qml = (Path(pred_dir) / "admin.qml").read_text(encoding="utf-8")
    return LayerSpec(name, "admin.gpkg", "vector", "ogr", qml, layer_name="admin", visible=visible)


def _bundle_alpha(pred_dir: Path) -> float | None:
    """The ensemble's mean count dispersion from the bundle behind ``run.json`` (None when unknown)."""
    rec = (read_run(pred_dir).get("model") or {}).get("path")
    if not rec:
        return None
    try:
        meta = json.loads((resolve_recorded(rec, pred_dir) / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    members = (meta.get("forecast") or {}).get("members") or []
    vals = [float(m["dispersion"]) for m in members if m.get("dispersion") is not None]
    return float(np.mean(vals)) if vals else None


def write_admin_summary(pred_dir: str | Path, admin_path: str | Path, id_col: str | None = None,
                        population: Path | str | None = None, *, label: Callable[[str], str] = lambda n: n,
                        alpha: float | None = None) -> tuple[Path, Path]:
    """Write ``admin.gpkg`` (layer ``admin``), ``admin.csv`` and ``admin.qml`` into a prediction folder.

    Args:
        pred_dir: the prediction folder (reads ``cells.gpkg`` and ``run.json``).
        admin_path: the admin units (GeoPackage, GeoJSON, shapefile...).
        id_col: the unit id column; default the first unique id- or name-like column.
        population: a population raster, or a cells column of people per cell.
        label: a feature name -> human label, for the drivers.
        alpha: count dispersion; default the bundle's (``bundle.json`` forecast members), else Poisson.

    Returns:
        ``(admin.gpkg, admin.csv)``.
    """
    pred_dir = Path(pred_dir)
    cells_path = pred_dir / "cells.gpkg"
    if not cells_path.exists():
        raise AdminError(f"{cells_path}: no cells layer; run `riotvit predict` first")
    import pyogrio

    layers = [n for n, _ in pyogrio.list_layers(cells_path)]
    cells = gpd.read_file(cells_path, layer="cells" if "cells" in layers else layers[0])
    admin, id_col = read_admin(admin_path, id_col)
    # the cells' expected riots are per cell already (riotvit.publish.layers.cell_share): they add up
    summary = summarise_admin(cells, admin, id_col, population=population, label=label,
                              alpha=_bundle_alpha(pred_dir) if alpha is None else alpha)
    window = read_window(pred_dir)
    if window:
        if "window" in summary.columns:  # the units' own column of that name keeps its values, renamed
            summary = summary.rename(columns={"window": "window_admin"})
        summary.insert(summary.columns.get_loc("cells"), "window", window["label"])
    gpkg, csv = pred_dir / "admin.gpkg", pred_dir / "admin.csv"
    with atomic_file(gpkg) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The filename extension should be")  # the temporary name
        summary.to_file(tmp, layer="admin", driver="GPKG")
    with atomic_file(csv) as tmp:
        summary.drop(columns=summary.geometry.name).to_csv(tmp, index=False, float_format="%.6g")
    write_style(gpkg, admin_qml(summary))
    return gpkg, csv
