"""Read a census polygon layer, check its columns and repair its geometries.

A census layer is a GeoPackage, GeoJSON, Shapefile or GeoParquet file with one polygon per
administrative unit and numeric attribute columns. Each named column has a role:

- extensive: counts that split with area (population, households);
- intensive: rates, shares and densities that are averaged (unemployment_rate, youth_share);
- population: the extensive column used for the derived population density;
- id: a name or code used in reports.

Invalid geometries are repaired with ``shapely.make_valid`` and counted in the report.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import Field, model_validator

from riotvit.config import StrictModel
from riotvit.errors import CensusError

SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet")
_N_EXAMPLES = 5


class CensusConfig(StrictModel):
    """Which census columns to interpolate onto crops, and how."""

    extensive: list[str] = Field(
        default_factory=list,
        description="Count columns split among crops by area or by a population raster, "
        "e.g. ['population', 'households'].",
    )
    intensive: list[str] = Field(
        default_factory=list,
        description="Rate, share or density columns averaged over each crop by area, "
        "e.g. ['youth_share', 'unemployment_rate'].",
    )
    population: str | None = Field(
        None,
        description="The column holding population, used for the derived density per km2. "
        "Default: the first extensive column whose name contains 'pop'. It is interpolated as "
        "an extensive column even when not listed there.",
    )
    id_column: str | None = Field(
        None, description="A polygon id or name column used in reports (e.g. repaired polygons)."
    )
    layer: str | None = Field(
        None, description="Layer to read from a multi-layer GeoPackage; default: the only layer."
    )
    crs: str | None = Field(
        None,
        description="CRS to assume when the census file has none (e.g. 'EPSG:4326'); "
        "ignored when the file declares its own.",
    )
    prefix: str = Field("census_", description="Prefix of every output column name.")

    @model_validator(mode="after")
    def _roles_disjoint(self) -> CensusConfig:
        both = sorted(set(self.extensive) & set(self.intensive))
        if both:
            raise ValueError(f"columns {both} are listed as both extensive and intensive; pick one role")
        if self.population is not None and self.population in self.intensive:
            raise ValueError(f"population column '{self.population}' must be extensive, not intensive")
        return self

    def population_column(self) -> str | None:
        """The population column: the named one, else the first extensive name with 'pop'."""
        if self.population is not None:
            return self.population
        return next((c for c in self.extensive if "pop" in c.lower()), None)

    def extensive_columns(self) -> list[str]:
        """Extensive columns to interpolate, including the population column."""
        pop = self.population_column()
        cols = list(dict.fromkeys(self.extensive))
        if pop is not None and pop not in cols:
            cols.append(pop)
        return cols

    def roles(self) -> dict[str, list[str]]:
        """Column names by role (``extensive``, ``intensive``, ``population``, ``id``)."""
        pop = self.population_column()
        return {
            "extensive": self.extensive_columns(),
            "intensive": list(dict.fromkeys(self.intensive)),
            "population": [pop] if pop else [],
            "id": [self.id_column] if self.id_column else [],
        }


@dataclass
class CensusReport:
    """What was read, repaired and assumed; filled by :func:`read_census` and the interpolation.

    Attributes:
        path: the census file.
        n_polygons: polygons kept.
        crs: the census layer's CRS as read (or as assumed from the config).
        repaired: polygons whose invalid geometry was repaired with ``make_valid``.
        repaired_examples: ids of the first repaired polygons.
        columns: column names by role.
        coverage: share of the total crop area covered by census polygons (after interpolation).
        method: ``"areal"`` or ``"dasymetric"``.
        assumptions: one line per modelling assumption or fallback.
        warnings: one line per thing the user should look at.
    """

    path: str
    n_polygons: int
    crs: str
    repaired: int = 0
    repaired_examples: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    coverage: float = float("nan")
    method: str = "areal"
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        out = [f"census: {self.path} ({self.n_polygons} polygons, {self.crs})"]
        for role, cols in self.columns.items():
            if cols:
                out.append(f"  {role}: {', '.join(cols)}")
        if self.repaired:
            ex = ", ".join(self.repaired_examples)
            out.append(f"  repaired {self.repaired} invalid polygon(s) with make_valid: {ex}")
        out.append(f"  method: {self.method}")
        if not np.isnan(self.coverage):
            out.append(f"  crop area covered by census polygons: {self.coverage:.1%}")
        out += [f"  assumption: {a}" for a in self.assumptions]
        out += [f"  warning: {w}" for w in self.warnings]
        return out


def read_census(path: str | Path, config: CensusConfig) -> tuple[gpd.GeoDataFrame, CensusReport]:
    """Read a census layer, check the named columns and repair invalid polygons.

    Args:
        path: a ``.gpkg``, ``.geojson``, ``.shp`` or ``.parquet`` file.
        config: column roles and reading options.

    Returns:
        The polygons (in their own CRS) with numeric named columns, and the report.

    Raises:
        CensusError: unreadable file, no CRS, missing or non-numeric columns, no polygons.
    """
    p = Path(path)
    if not p.exists():
        raise CensusError(f"{p}: census file not found; check the path given with --census")
    if p.suffix.lower() not in SUFFIXES:
        raise CensusError(
            f"{p}: unsupported census format '{p.suffix}'; use one of {', '.join(SUFFIXES)}"
        )
    gdf = _read_layer(p, config.layer)
    return prepare_census(gdf, config, source=str(p))


def prepare_census(
    gdf: gpd.GeoDataFrame, config: CensusConfig, source: str = "census"
) -> tuple[gpd.GeoDataFrame, CensusReport]:
    """Validate and repair an in-memory census layer (what :func:`read_census` does after I/O).

    Args:
        gdf: polygons with attribute columns.
        config: column roles.
        source: name used in messages (the file path).
    """
    if gdf.crs is None:
        if config.crs is None:
            raise CensusError(
                f"{source}: the census layer has no CRS; set it with census crs: "
                "(e.g. crs: EPSG:4326) or add a .prj / define it in QGIS"
            )
        try:
            gdf = gdf.set_crs(config.crs)
        except Exception as e:  # noqa: BLE001 - pyproj CRSError
            raise CensusError(f"{source}: census crs '{config.crs}' is not a CRS pyproj knows ({_short(e)}); use e.g. EPSG:4326") from None
    roles = config.roles()
    numeric = roles["extensive"] + roles["intensive"]
    if not numeric:
        raise CensusError(
            f"{source}: no census column to interpolate; name some with extensive: or "
            f"intensive: (columns found: {_preview(_attr_columns(gdf))})"
        )
    _check_columns(gdf, numeric + roles["id"], source)
    out = gdf[list(dict.fromkeys(roles["id"] + numeric)) + [gdf.geometry.name]].copy()
    for col in numeric:
        out[col] = _to_numeric(out[col], col, source)
    out, dropped = _drop_empty(out)
    if len(out) == 0:
        raise CensusError(f"{source}: the census layer has no polygons with a geometry")
    _check_polygonal(out, source)
    out, repaired = repair_geometries(out)
    ids = _ids(out, config.id_column)
    report = CensusReport(
        path=source,
        n_polygons=len(out),
        crs=_crs_name(out.crs),
        repaired=int(repaired.sum()),
        repaired_examples=ids[repaired][:_N_EXAMPLES].tolist(),
        columns=roles,
    )
    if dropped:
        report.warnings.append(f"dropped {dropped} census feature(s) without a geometry")
    for col in numeric:
        n_nan = int(out[col].isna().sum())
        if n_nan:
            ex = ", ".join(ids[out[col].isna().to_numpy()][:_N_EXAMPLES])
            report.warnings.append(f"column '{col}' is empty in {n_nan} polygon(s) ({ex}); they add nothing to it")
    for col in roles["extensive"]:
        neg = (out[col] < 0).to_numpy()
        if neg.any():
            report.warnings.append(f"extensive column '{col}' is negative in {int(neg.sum())} polygon(s) ({', '.join(ids[neg][:_N_EXAMPLES])})")
    return out.reset_index(drop=True), report


def repair_geometries(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Repair invalid polygons with ``make_valid``, keeping only their polygonal parts.

    Geometry collections are reduced to their polygons too (not counted as repaired).

    Returns:
        The layer (a copy when anything changed) and a boolean mask of repaired rows.
    """
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    bad = ~shapely.is_valid(geoms)
    mixed = shapely.get_type_id(geoms) == 7  # collections: keep only their polygons
    if not (bad | mixed).any():
        return gdf, bad
    geoms = geoms.copy()
    geoms[bad] = polygonal_part(shapely.make_valid(geoms[bad]))
    geoms[mixed & ~bad] = polygonal_part(geoms[mixed & ~bad])
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    return out, bad


def polygonal_part(geoms: np.ndarray) -> np.ndarray:
    """The polygons and multipolygons inside each geometry, as one MultiPolygon per input."""
    geoms = np.asarray(geoms, dtype=object)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    # a second pass splits the multipolygons that make_valid puts inside collections
    parts, idx2 = shapely.get_parts(parts, return_index=True)
    idx = idx[idx2]
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)  # non-empty Polygons
    return _group_polygons(parts[keep], idx[keep], len(geoms))


def _group_polygons(parts: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    out = np.array([shapely.MultiPolygon() for _ in range(n)], dtype=object)
    if len(parts):
        present = np.unique(idx)
        grouped = shapely.multipolygons(parts, indices=np.searchsorted(present, idx))
        out[present] = grouped
    return out


# -- helpers ---------------------------------------------------------------------------------


def _read_layer(p: Path, layer: str | None) -> gpd.GeoDataFrame:
    if p.suffix.lower() in (".parquet", ".geoparquet"):
        try:
            return gpd.read_parquet(p)
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types
            raise CensusError(f"{p}: cannot read as GeoParquet ({_short(e)}); write it with GeoDataFrame.to_parquet") from None
    import pyogrio

    try:
        layers = [str(x) for x in pyogrio.list_layers(p)[:, 0]]
    except Exception as e:  # noqa: BLE001 - GDAL errors vary by driver
        raise CensusError(f"{p}: cannot open as a vector layer ({_short(e)}); check the file is a valid {p.suffix}") from None
    if layer is None and len(layers) > 1:
        raise CensusError(f"{p}: has {len(layers)} layers ({_preview(layers)}); choose one with census layer:")
    if layer is not None and layer not in layers:
        close = difflib.get_close_matches(layer, layers, n=3, cutoff=0.3)
        hint = f"did you mean: {', '.join(close)}?" if close else f"layers: {_preview(layers)}"
        raise CensusError(f"{p}: no layer '{layer}' ({hint}); fix census layer:")
    try:
        return gpd.read_file(p, layer=layer)
    except Exception as e:  # noqa: BLE001
        raise CensusError(f"{p}: cannot read ({_short(e)}); check the file in QGIS") from None


def _attr_columns(gdf: gpd.GeoDataFrame) -> list[str]:
    return [str(c) for c in gdf.columns if c != gdf.geometry.name]


def _check_columns(gdf: gpd.GeoDataFrame, names: list[str], source: str) -> None:
    have = _attr_columns(gdf)
    missing = [n for n in dict.fromkeys(names) if n not in have]
    if not missing:
        return
    hints = []
    for n in missing:
        close = difflib.get_close_matches(n, have, n=3, cutoff=0.4)
        if not close:  # case-insensitive fallback: 'POP' vs 'pop2019_total'
            lower = {c.lower(): c for c in have}
            close = [lower[c] for c in difflib.get_close_matches(n.lower(), list(lower), n=3, cutoff=0.4)]
        hints.append(f"'{n}' (closest: {', '.join(close)})" if close else f"'{n}'")
    raise CensusError(
        f"{source}: census column(s) not found: {'; '.join(hints)}; columns in the file: "
        f"{_preview(have)}; fix the column names in the census options"
    )


def _to_numeric(s: pd.Series, col: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        raise CensusError(f"{source}: census column '{col}' holds true/false values, not numbers; name a numeric column")
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    stripped = s.astype("string").str.strip()
    blank = s.isna() | (stripped == "")
    num = pd.to_numeric(stripped.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    if bad.any():
        ex = ", ".join(repr(v) for v in pd.unique(s[bad])[:_N_EXAMPLES])
        raise CensusError(
            f"{source}: census column '{col}' has {int(bad.sum())} non-numeric value(s) (e.g. {ex}); "
            "clean them (no thousands separators or text) or remove the column from the census options"
        )
    return num.astype("float64")


def _drop_empty(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    g = gdf.geometry.values
    empty = np.asarray(g.isna() | g.is_empty)
    return (gdf.loc[~empty], int(empty.sum())) if empty.any() else (gdf, 0)


def _check_polygonal(gdf: gpd.GeoDataFrame, source: str) -> None:
    types = shapely.get_type_id(np.asarray(gdf.geometry.values, dtype=object))
    other = ~np.isin(types, (3, 6, 7))  # Polygon, MultiPolygon, GeometryCollection
    if other.any():
        kinds = sorted(set(gdf.geometry.geom_type[other]))
        raise CensusError(
            f"{source}: a census layer must hold polygons, found {', '.join(kinds)} geometries "
            f"({int(other.sum())}); use the administrative boundary polygons"
        )


def _ids(gdf: gpd.GeoDataFrame, id_column: str | None) -> np.ndarray:
    if id_column is not None:
        return gdf[id_column].astype(str).to_numpy()
    return np.array([f"#{i}" for i in gdf.index], dtype=object)


def _crs_name(crs: Any) -> str:
    epsg = crs.to_epsg() if crs is not None else None
    return f"EPSG:{epsg}" if epsg else (crs.name if crs is not None else "none")


def _preview(names: list[str], n: int = 12) -> str:
    more = f", ... (+{len(names) - n})" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:160]
