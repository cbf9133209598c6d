"""Resolve what the user means by ``--region``: a catalog name, a census polygon's name, a bbox,
or a vector file. The result is one (multi)polygon in WGS 84 plus a readable description."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from riotvit.catalog import Catalog
from riotvit.errors import RegionError, suggest

_BBOX = re.compile(r"^\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*$")


@dataclass(frozen=True)
class Region:
    """A prediction region: ``geometry`` is in EPSG:4326 (lon/lat)."""

    name: str
    geometry: BaseGeometry
    source: str

    def in_crs(self, epsg: int) -> BaseGeometry:
        tr = Transformer.from_crs(4326, epsg, always_xy=True)
        return shapely.transform(self.geometry, lambda xy: _tx(tr, xy))

    def bounds_text(self) -> str:
        b = self.geometry.bounds
        return f"lon {b[0]:.4f}..{b[2]:.4f}, lat {b[1]:.4f}..{b[3]:.4f}"


def _tx(tr: Transformer, xy):
    import numpy as np

    x, y = tr.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _to_wgs84(geom: BaseGeometry, crs) -> BaseGeometry:
    c = CRS.from_user_input(crs)
    if c.to_epsg() == 4326:
        return geom
    tr = Transformer.from_crs(c, 4326, always_xy=True)
    return shapely.transform(geom, lambda xy: _tx(tr, xy))


def _from_bbox(text: str, region_crs: str) -> Region:
    m = _BBOX.match(text)
    x0, y0, x1, y1 = (float(v) for v in m.groups())
    if x0 >= x1 or y0 >= y1:
        raise RegionError(f"--region {text}: a bbox is minx,miny,maxx,maxy with min < max")
    try:
        crs = CRS.from_user_input(region_crs)
    except Exception:
        raise RegionError(f"--region-crs {region_crs}: unknown CRS; give an EPSG code such as EPSG:4326") from None
    if crs.to_epsg() == 4326 and not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise RegionError(f"--region {text}: not a lon/lat box; pass --region-crs for projected coordinates")
    geom = _to_wgs84(shapely.box(x0, y0, x1, y1).segmentize(max(x1 - x0, y1 - y0) / 16), crs)
    return Region(f"bbox {text.strip()}", geom, "bbox")


def _from_file(p: Path, layer: str | None = None) -> Region:
    import geopandas as gpd

    try:
        gdf = gpd.read_file(p, layer=layer)
    except Exception as e:
        raise RegionError(f"{p}: cannot read the region file ({str(e).splitlines()[0]}); give GeoJSON, GeoPackage or Shapefile") from None
    if gdf.crs is None:
        raise RegionError(f"{p}: the region file has no CRS; set one (e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg {p.name})")
    if gdf.empty:
        raise RegionError(f"{p}: the region file has no features")
    geom = shapely.union_all(shapely.make_valid(gdf.to_crs(4326).geometry.values))
    if geom.is_empty or geom.area == 0:
        raise RegionError(f"{p}: the region file has no polygon area (points or lines only?); give polygons")
    return Region(p.stem, geom, str(p))


def resolve_region(spec: str, region_crs: str = "EPSG:4326", catalog_dir: str | Path | None = None) -> Region:
    """Turn ``--region`` into a :class:`Region`.

    Accepts, in this order: ``minx,miny,maxx,maxy`` (in ``region_crs``), a vector file, a
    catalog region id, or the name of a polygon in a catalog census layer (e.g. a county).
    """
    if _BBOX.match(spec):
        return _from_bbox(spec, region_crs)
    p = Path(spec)
    if p.exists():
        return _from_file(p)

    try:
        cat = Catalog.load(catalog_dir)
    except Exception:
        cat = None
    if cat is not None and cat.has(spec) and cat.entries[spec].entry.kind == "region":
        r = cat.entries[spec]
        e = r.entry
        if e.bbox:
            reg = _from_bbox(",".join(str(v) for v in e.bbox), e.bbox_crs)
            return Region(e.id, reg.geometry, f"catalog {e.id}")
        if r.path:
            if not r.path.exists():
                raise RegionError(f"catalog region '{spec}': file {r.path} not found; fix 'path' in {r.file}")
            reg = _from_file(r.path, e.layer)
            return Region(e.id, reg.geometry, f"catalog {e.id}")
        return _census_polygon(cat, e.census, e.name, label=e.id)
    names: list[str] = []
    if cat is not None:
        for cid in cat.ids("census"):
            ce = cat.entries[cid]
            if ce.entry.columns is None or ce.entry.columns.name is None or not (ce.path and ce.path.exists()):
                continue
            try:
                return _census_polygon(cat, cid, spec, label=spec)
            except RegionError as err:
                names += getattr(err, "names", [])
    known = (cat.ids("region") if cat else []) + names
    raise RegionError(
        f"--region {spec}: not a bbox, a file, a catalog region or a census polygon name{suggest(spec, known)}; "
        "give minx,miny,maxx,maxy (lon/lat), a GeoJSON/GPKG file, or a name from riotvit catalog list --kind region"
    )


def _census_polygon(cat, census_id: str | None, name: str | None, label: str) -> Region:
    import geopandas as gpd

    if not census_id or census_id not in cat.entries:
        raise RegionError(f"region '{label}': census entry '{census_id}' is not in the catalog")
    ce = cat.entries[census_id]
    col = ce.entry.columns.name if ce.entry.columns else None
    if col is None or ce.path is None or not ce.path.exists():
        raise RegionError(f"region '{label}': census layer '{census_id}' is missing or has no name column")
    gdf = gpd.read_file(ce.path, layer=ce.entry.layer)
    hit = gdf[gdf[col].astype(str).str.strip().str.casefold() == str(name).strip().casefold()]
    if hit.empty:
        err = RegionError(f"region '{label}': no polygon named '{name}' in {census_id}{suggest(str(name), gdf[col].astype(str))}")
        err.names = list(gdf[col].astype(str))
        raise err
    if gdf.crs is None:
        raise RegionError(f"{ce.path}: census layer has no CRS; fix the file or the catalog entry")
    geom = shapely.union_all(shapely.make_valid(hit.to_crs(4326).geometry.values))
    return Region(str(hit[col].iloc[0]), geom, f"catalog {census_id}:{col}={hit[col].iloc[0]}")
