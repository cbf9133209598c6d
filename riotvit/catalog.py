"""The data catalog: one YAML file per source in ``data_catalog/``.

An entry names a raster, an ACLED export, a census layer or a region, with its path (relative
to the entry's file), CRS, band names, nodata, acquisition date, licence and citation. Stages
accept catalog ids wherever they accept paths, and ``riotvit catalog validate`` reports broken
entries (missing file, CRS or band count that disagree with the file) before a run fails on them.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, ValidationError, model_validator

from riotvit.config import StrictModel, format_validation_error, project_file, read_yaml
from riotvit.errors import CatalogError, ConfigError, InputError, RasterError, clip, suggest
from riotvit.sensors import resolve_bands
from riotvit.tile.plan import SourceSpec

Kind = Literal["raster", "acled", "census", "region"]


class CensusColumns(StrictModel):
    """Roles of a census layer's columns."""

    extensive: list[str] = Field(default_factory=list, description="Counts that split by area (population, households).")
    intensive: list[str] = Field(default_factory=list, description="Rates, shares and densities, averaged by area.")
    population: str | None = Field(None, description="The extensive column that holds the population (for densities).")
    name: str | None = Field(None, description="Column with each polygon's name, used to resolve named regions.")


class CatalogEntry(StrictModel):
    """One source in the catalog."""

    id: str = Field(description="Unique id used on the command line and in pipelines.")
    kind: Kind = Field(description="raster, acled, census or region.")
    path: str | None = Field(None, description="File path, relative to this entry's YAML file (or absolute).")
    crs: str | None = Field(None, description="CRS of the file, e.g. EPSG:32737 (checked by validate).")
    bands: list[str] | None = Field(None, description="Raster band names or Sentinel-2/Landsat band ids, one per data band.")
    sensor: str | None = Field(None, description="Raster: sensor of band ids in bands (sentinel2, landsat8, landsat7).")
    scale: float | None = Field(None, gt=0, description="Raster: reflectance = raw * scale + offset, when the file has no GDAL scale.")
    offset: float | None = Field(None, description="Raster: reflectance offset added after scale.")
    nodata: float | None = Field(None, description="Raster nodata value, if the file does not declare it.")
    acquisition_date: dt.date | None = Field(None, description="Raster acquisition date (YYYY-MM-DD).")
    categorical: bool = Field(False, description="Raster holds classes: resample with nearest neighbour.")
    layer: str | None = Field(None, description="Layer name inside a GeoPackage.")
    columns: CensusColumns | None = Field(None, description="Census column roles.")
    bbox: list[float] | None = Field(None, description="Region: minx, miny, maxx, maxy (in bbox_crs).")
    bbox_crs: str = Field("EPSG:4326", description="CRS of bbox.")
    census: str | None = Field(None, description="Region: id of the census entry whose polygon defines it.")
    name: str | None = Field(None, description="Region: polygon name in that census layer's name column.")
    licence: str = Field(description="Licence or terms of use of the data.")
    citation: str = Field(description="How to cite the data.")
    description: str = Field("", description="What this source is.")
    note: str = Field("", description="Caveats (e.g. an approximate date).")

    @model_validator(mode="after")
    def _check(self) -> CatalogEntry:
        if self.kind != "region" and not self.path:
            raise ValueError(f"a {self.kind} entry needs a path")
        if self.kind == "region" and not (self.path or self.bbox or (self.census and self.name)):
            raise ValueError("a region needs a path, a bbox, or census + name")
        if self.bbox is not None and len(self.bbox) != 4:
            raise ValueError("bbox needs 4 numbers: minx, miny, maxx, maxy")
        if self.bands:

            try:
                resolve_bands(self.bands, self.sensor, where="bands")
            except ConfigError as e:
                raise ValueError(str(e).replace("--sensor", "sensor:")) from None
        return self


@dataclass(frozen=True)
class Resolved:
    """An entry with its path resolved against its YAML file."""

    entry: CatalogEntry
    file: Path
    path: Path | None

    @property
    def id(self) -> str:
        return self.entry.id


def default_catalog_dir() -> Path:
    """``$RIOTVIT_CATALOG``, else ``./data_catalog``, else the one shipped beside the package."""
    env = os.environ.get("RIOTVIT_CATALOG")
    if env:
        return Path(env)

    return project_file("data_catalog")


class Catalog:
    """All entries of a catalog folder."""

    def __init__(self, entries: dict[str, Resolved], root: Path, errors: dict[str, str]):
        self.entries = entries
        self.root = root
        self.load_errors = errors

    @classmethod
    def load(cls, root: str | Path | None = None) -> Catalog:
        """Read every ``*.yaml`` in ``root``; unparseable files are kept as load errors."""
        r = Path(root) if root else default_catalog_dir()
        if not r.is_dir():
            raise CatalogError(f"{r}: catalog folder not found; pass --catalog DIR or set RIOTVIT_CATALOG")
        entries: dict[str, Resolved] = {}
        errors: dict[str, str] = {}
        for f in sorted(r.glob("*.y*ml")):
            try:
                e = CatalogEntry.model_validate(read_yaml(f))
            except ValidationError as err:
                errors[f.name] = format_validation_error(CatalogEntry, err, str(f))
                continue
            except Exception as err:  # a RiotvitError from read_yaml
                errors[f.name] = str(err)
                continue
            if e.id in entries:
                errors[f.name] = f"{f}: duplicate id '{e.id}' (also in {entries[e.id].file.name}); ids must be unique"
                continue
            p = None
            if e.path:
                p = Path(e.path) if Path(e.path).is_absolute() else (f.parent / e.path)
                p = Path(os.path.normpath(p))
            entries[e.id] = Resolved(e, f, p)
        return cls(entries, r, errors)

    def ids(self, kind: str | None = None) -> list[str]:
        """Entry ids, all or of one ``kind``.

        Raises:
            CatalogError: ``kind`` is not a kind of entry.
        """
        kinds = get_args(Kind)
        if kind is not None and kind not in kinds:
            raise CatalogError(f"--kind {clip(kind)}: not a kind of entry; choose one of {', '.join(kinds)}"
                               f"{suggest(kind, kinds)}")
        return [k for k, v in self.entries.items() if kind is None or v.entry.kind == kind]

    def get(self, entry_id: str, kind: str | None = None) -> Resolved:
        """The entry with this id (of this kind)."""
        r = self.entries.get(entry_id)
        if r is None or (kind and r.entry.kind != kind):
            raise CatalogError(
                f"'{entry_id}' is not a {kind or ''} entry in the catalog {self.root}{suggest(entry_id, self.ids(kind))}; "
                "run riotvit catalog list"
            )
        return r

    def has(self, entry_id: str) -> bool:
        return entry_id in self.entries


def validate_entry(r: Resolved, catalog: Catalog | None = None) -> list[str]:
    """Problems with an entry, each one line naming the file and the fix ([] when fine).

    With ``catalog``, a region's ``census`` must name a census entry of that catalog.
    """
    e, problems = r.entry, []
    if catalog is not None and e.kind == "region" and e.census is not None:
        c = catalog.entries.get(e.census)
        if c is None or c.entry.kind != "census":
            problems.append(f"{r.file.name}: census '{clip(e.census)}' is not a census entry of the catalog"
                            f"{suggest(e.census, catalog.ids('census'))}; fix 'census'")
    if r.path is not None and not r.path.exists():
        hint = " (run riotvit sample --out data/sample)" if "sample" in str(r.path) else ""
        return [f"missing file {r.path}{hint}; fix 'path' in {r.file.name} or put the file there"]
    try:
        if e.kind == "raster":
            problems += _validate_raster(r)
        elif e.kind == "census":
            problems += _validate_vector(r)
        elif e.kind == "acled":
            problems += _validate_acled(r)
        elif e.kind == "region" and e.path:
            problems += _validate_vector(r)
    except Exception as err:  # report, never crash validation
        problems.append(f"{r.path}: cannot be read ({str(err).splitlines()[0]})")
    return problems


def _crs_matches(declared: str, actual) -> bool:
    from pyproj import CRS

    try:
        return CRS.from_user_input(declared) == CRS.from_user_input(actual)
    except Exception:
        return False


def _validate_raster(r: Resolved) -> list[str]:
    import rasterio
    from rasterio.enums import ColorInterp

    e, out = r.entry, []
    with rasterio.open(r.path) as src:
        if src.crs is None:
            out.append(f"{r.path}: raster has no CRS; assign one (gdal_edit.py -a_srs {e.crs or 'EPSG:xxxx'})")
        elif e.crs and not _crs_matches(e.crs, src.crs):
            out.append(f"{r.file.name}: crs {e.crs} but the raster is {src.crs.to_string()}; fix 'crs'")
        n = sum(1 for ci in src.colorinterp if ci != ColorInterp.alpha)
        if e.bands is not None and len(e.bands) != n:
            out.append(f"{r.file.name}: {len(e.bands)} band names ({', '.join(e.bands)}) but the raster has {n} data bands; fix 'bands'")
        if e.nodata is not None and src.nodata is not None and float(src.nodata) != float(e.nodata):
            out.append(f"{r.file.name}: nodata {e.nodata} but the raster declares {src.nodata}; fix 'nodata'")
    return out


def _validate_vector(r: Resolved) -> list[str]:
    import pyogrio

    e, out = r.entry, []
    info = pyogrio.read_info(r.path, layer=e.layer)
    if info.get("crs") is None:
        out.append(f"{r.path}: layer has no CRS; set one (ogr2ogr -a_srs EPSG:4326)")
    elif e.crs and not _crs_matches(e.crs, info["crs"]):
        out.append(f"{r.file.name}: crs {e.crs} but the layer is {info['crs']}; fix 'crs'")
    fields = list(info.get("fields", []))
    if e.columns:
        c = e.columns
        for col in [*c.extensive, *c.intensive, *([c.population] if c.population else []), *([c.name] if c.name else [])]:
            if col not in fields:
                out.append(f"{r.file.name}: column '{col}' not in {r.path.name}{suggest(col, fields)}; fix 'columns'")
    return out


def _validate_acled(r: Resolved) -> list[str]:
    import pandas as pd

    if r.path.suffix.lower() in (".xlsx", ".xls"):
        return []
    head = pd.read_csv(r.path, nrows=0, encoding="utf-8-sig")
    cols = {c.strip().lower() for c in head.columns}
    need = ["event_date", "event_type", "latitude", "longitude"]
    miss = [c for c in need if c not in cols]
    return [f"{r.path}: missing ACLED columns {', '.join(miss)}; is this an ACLED export?"] if miss else []


def raster_specs(items: list[str], catalog_dir: str | Path | None = None) -> list:
    """Turn CLI raster arguments (paths, folders of GeoTIFFs or catalog ids) into ``SourceSpec`` objects."""

    specs, cat = [], None
    for item in items:
        p = Path(item)
        if p.is_dir():  # a folder: its GeoTIFFs, in name order
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff") and f.is_file())
            if not found:
                raise RasterError(f"{p}: folder holds no .tif/.tiff files; pass the raster files or another folder")
            specs += [SourceSpec(f) for f in found]
            continue
        if p.exists():
            specs.append(SourceSpec(p))
            continue
        if cat is None:
            try:
                cat = Catalog.load(catalog_dir)
            except CatalogError:
                cat = Catalog({}, Path(catalog_dir or default_catalog_dir()), {})
        if cat.has(item) and cat.entries[item].entry.kind == "raster":
            r = cat.entries[item]
            if r.path is None or not r.path.exists():
                raise CatalogError(f"catalog raster '{item}': file {r.path} not found; fix 'path' in {r.file}")
            e = r.entry
            specs.append(SourceSpec(r.path, id=e.id, bands=e.bands, date=e.acquisition_date, categorical=e.categorical,
                                    sensor=e.sensor, scale=e.scale, offset=e.offset))
            continue

        raise RasterError(
            f"{item}: neither a file nor a raster id in the catalog {cat.root}{suggest(item, cat.ids('raster'))}; "
            "check the path or run riotvit catalog list"
        )
    return specs


def resolve_source(item: str | Path, kind: str, catalog_dir: str | Path | None = None) -> tuple[Path, CatalogEntry | None]:
    """A file path, or a catalog id of ``kind`` resolved to its path (and entry)."""
    p = Path(item)
    if p.exists():
        return p, None
    try:
        cat = Catalog.load(catalog_dir)
    except CatalogError:
        cat = None
    if cat is not None and cat.has(str(item)) and cat.entries[str(item)].entry.kind == kind:
        r = cat.entries[str(item)]
        if r.path is None or not r.path.exists():
            raise CatalogError(f"catalog {kind} '{item}': file {r.path} not found; fix 'path' in {r.file}")
        return r.path, r.entry

    known = cat.ids(kind) if cat else []
    raise InputError(
        f"{item}: neither a file nor a {kind} id in the catalog{suggest(str(item), known)}; check the path or run riotvit catalog list"
    )
