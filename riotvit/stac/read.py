"""STAC in: turn STAC Items, ItemCollections and Catalogs into rasters the tiler takes.

``riotvit tile`` takes GeoTIFF paths; a STAC input (a local JSON file or an http(s) URL) is
resolved here into one :class:`~riotvit.tile.plan.SourceSpec` per item: a small VRT (written to
``workdir``) stacking the item's assets for the requested bands, in order, with its cloud /
scene-classification asset as the mask, and the item's date. Items of the same date are
mosaicked by the tiler, which fills each crop from the sources of its date.

Assets are read by GDAL where they are (COG range reads; URLs through ``/vsicurl/``); nothing
is downloaded or copied.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from riotvit.errors import clip
from riotvit.sensors import canonical_band
from riotvit.stac.errors import StacError
from riotvit.stac.vrt import AssetRaster, MaskRule, vrt_xml, write_vrt
from riotvit.tile.plan import SourceSpec

STAC_TYPES = ("Feature", "FeatureCollection", "Catalog", "Collection")
SCL_INVALID = (0, 1, 3, 8, 9, 10)
"""Sentinel-2 scene classes that are not clear ground: no data, saturated, cloud shadow,
cloud (medium, high probability), thin cirrus."""
_MASK_KEYS = {"scl": "scl", "cloud": "cloud", "cloud_mask": "cloud", "cloudmask": "cloud", "clouds": "cloud"}
_RASTER_TYPES = ("tiff", "geotiff", "vrt", "jp2", "x-hdf", "netcdf")
_NOT_DATA_ROLES = {"thumbnail", "overview", "visual", "metadata", "browse"}


@dataclass(frozen=True)
class AssetBand:
    """One band an item offers: its asset, the band within the asset file, and its names."""

    key: str
    href: str
    band: int
    name: str | None
    common_name: str | None
    media_type: str | None

    @property
    def label(self) -> str:
        names = [n for n in (self.name, self.common_name) if n and n != self.key]
        return f"{self.key} ({'/'.join(names)})" if names else self.key


def band_matches(wanted: str, band: AssetBand) -> bool:
    """Whether the requested band name ``wanted`` names ``band``: its common name, its band id
    (``B4`` and ``B04`` alike) or, for a single-band asset without band metadata, the asset key.

    The one place that decides band names: spellings and ids are compared as written (``B4`` =
    ``B04``) and through the sensor band table (:func:`riotvit.sensors.canonical_band`: ``nir`` =
    ``B08`` of Sentinel-2).
    """

    names = [n for n in (band.name, band.common_name, band.key) if n]
    w = _norm(wanted)
    if w in {_norm(n) for n in names}:
        return True
    cw = canonical_band(wanted)
    return any(canonical_band(n) == cw for n in names)


def _norm(name: str) -> str:
    s = name.strip().lower().replace("-", "_")
    m = re.fullmatch(r"b0*(\d+)([a-z]?)", s)
    return f"b{int(m[1])}{m[2]}" if m else s


def is_stac_input(item: str | Path) -> bool:
    """Whether a ``riotvit tile`` argument is a STAC document: an http(s) URL that is not a
    GeoTIFF, or an existing ``.json`` / ``.geojson`` file."""
    s = str(item)
    if s.startswith(("http://", "https://")):
        return not s.lower().split("?")[0].endswith((".tif", ".tiff", ".vrt"))
    return s.lower().endswith((".json", ".geojson")) and Path(s).is_file()


def _reader(date: dt.date | None):
    """A pystac StacIO that checks each item's date as it is read: pystac refuses an item without
    ``datetime`` and ``start_datetime`` with a message about the spec; riotvit asks for ``--date``,
    and with one gives such items that date."""
    from pystac.stac_io import DefaultStacIO

    class _DatedReader(DefaultStacIO):
        def read_json(self, source, *args, **kwargs):
            data = super().read_json(source, *args, **kwargs)
            kind = data.get("type") if isinstance(data, dict) else None
            feats = data.get("features") or [] if kind == "FeatureCollection" else [data] if kind == "Feature" else []
            for f in feats:
                props = f.setdefault("properties", {}) if isinstance(f, dict) else {}
                if props.get("datetime") is None and not props.get("start_datetime"):
                    if date is None:
                        raise StacError(f"{source}: item {f.get('id')} has no datetime or start_datetime; "
                                        "pass --date YYYY-MM-DD")
                    props["datetime"] = f"{date.isoformat()}T00:00:00Z"
            return data

    return _DatedReader()


def load_items(href: str, date: dt.date | None = None) -> list:
    """The pystac Items of a STAC Item, ItemCollection, Catalog or Collection (recursively).

    Args:
        href: local JSON file or http(s) URL.
        date: the date for items that have none (else they are refused).

    Raises:
        StacError: unreadable, not JSON, JSON that is not STAC, an item without a date.
    """
    import pystac

    local = not href.startswith(("http://", "https://"))
    try:
        text = Path(href).read_text(encoding="utf-8") if local else pystac.StacIO.default().read_text(href)
        data = json.loads(text)
    except (OSError, ValueError) as e:
        raise StacError(f"{href}: cannot read STAC JSON ({clip(str(e), 120)}); check the path or URL") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in STAC_TYPES or (kind != "FeatureCollection" and "stac_version" not in data):
        raise StacError(
            f"{href}: JSON but not a STAC Item, ItemCollection or Catalog (type {kind!r}, "
            f"{'no' if not isinstance(data, dict) or 'stac_version' not in data else 'a'} stac_version); "
            "give a STAC document or a GeoTIFF"
        )
    try:
        io = _reader(date)
        if kind == "Feature":
            return [pystac.Item.from_file(href, stac_io=io)]
        if kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_file(href, stac_io=io))
        else:
            items = list(pystac.read_file(href, stac_io=io).get_items(recursive=True))
    except StacError:
        raise
    except Exception as e:  # pystac raises many kinds on a malformed document
        raise StacError(f"{href}: not a valid STAC document ({clip(str(e), 160)}); fix or regenerate it") from None
    if not items:
        raise StacError(f"{href}: the STAC {kind} holds no items; point at a catalog with items")
    return items


def item_bands(item, base: str) -> list[AssetBand]:
    """Every band of the item's data assets, with ``eo:bands`` (STAC 1.0) or ``bands`` (1.1) names."""
    out = []
    for key, asset in item.assets.items():
        d = asset.to_dict()
        roles = set(d.get("roles") or [])
        mt = (d.get("type") or "").lower()
        if roles & _NOT_DATA_ROLES and "data" not in roles:
            continue
        if mt and not any(t in mt for t in _RASTER_TYPES):
            continue
        href = _absolute(asset.get_absolute_href() or d["href"], base)
        eo = d.get("eo:bands") or []
        b11 = d.get("bands") or []
        if eo:
            names = [(b.get("name"), b.get("common_name")) for b in eo]
        elif b11:
            names = [(b.get("name"), b.get("eo:common_name") or b.get("common_name")) for b in b11]
        else:
            names = [(None, None)]
        for i, (name, common) in enumerate(names, start=1):
            out.append(AssetBand(key, href, i, name, common, mt or None))
    return out


def _absolute(href: str, base: str) -> str:
    if href.startswith(("http://", "https://", "s3://", "/vsi")) or Path(href).is_absolute():
        return href
    if href.startswith("file://"):
        return href[len("file://"):]
    if base.startswith(("http://", "https://")):
        return base.rsplit("/", 1)[0] + "/" + href
    return str((Path(base).parent / href).resolve())


def gdal_path(href: str) -> str:
    """The path GDAL opens for an asset href: URLs through ``/vsicurl/``, ``s3://`` through ``/vsis3/``."""
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[len("s3://"):]
    return href


def pick_bands(item, bands: list[str] | None, base: str, where: str) -> tuple[list[AssetBand], list[str]]:
    """The item's bands for ``bands`` (in that order) and the names they get in the tile set.

    Without ``bands``: every band with band metadata, in asset order, named by common name
    (else band id). Among several assets offering a band, a GeoTIFF/COG is preferred.

    Raises:
        StacError: a requested band the item lacks (the message lists what it has).
    """
    offered = [b for b in item_bands(item, base) if _mask_kind(b) is None]
    if bands is None:
        chosen, names = [], []
        for b in offered:
            name = (b.common_name or b.name or "").lower()
            if (b.name or b.common_name) and name not in names:
                chosen.append(b)
                names.append(name)
        if not chosen:
            raise StacError(f"{where}: item {item.id} has no asset with eo:bands; pass --bands naming its assets "
                            f"({', '.join(sorted({b.key for b in offered})) or 'none'})")
        return chosen, names
    chosen, missing = [], []
    for w in bands:
        hits = sorted((b for b in offered if band_matches(w, b)), key=lambda b: "tif" not in (b.media_type or "tif"))
        if hits:
            chosen.append(hits[0])
        else:
            missing.append(w)
    if missing:
        have = ", ".join(dict.fromkeys(b.label for b in offered)) or "no raster assets"
        raise StacError(
            f"{where}: item {item.id} has no asset for band(s) {', '.join(missing)}; it has: {have}; "
            "pass --bands with names from this list"
        )
    return chosen, [w.strip().lower() for w in bands]


def _mask_kind(b: AssetBand) -> str | None:
    for n in (b.key, b.name, b.common_name):
        if n and n.lower() in _MASK_KEYS:
            return _MASK_KEYS[n.lower()]
    return None


def item_date(item, date: dt.date | None, where: str) -> dt.date:
    """``date`` when given (``--date`` applies to every source), else the item's ``datetime``, else
    its ``start_datetime``.

    Raises:
        StacError: neither is set.
    """
    if date is not None:
        return date
    d = item.datetime or item.common_metadata.start_datetime
    if d is None:
        raise StacError(f"{where}: item {item.id} has no datetime or start_datetime; pass --date YYYY-MM-DD")
    return d.date()


def open_asset(b: AssetBand, name: str, where: str, item_id: str, raster_bands: dict | None = None) -> AssetRaster:
    """Open one asset band with rasterio to learn its grid, type and nodata.

    Raises:
        StacError: the href cannot be read, has no CRS, or lacks the band.
    """
    import rasterio
    from rasterio.errors import RasterioError

    path = gdal_path(b.href)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise StacError(f"{where}: item {item_id} asset '{b.key}' ({b.href}) has no CRS; fix the asset")
            if b.band > src.count:
                raise StacError(f"{where}: item {item_id} asset '{b.key}' ({b.href}) has {src.count} bands, "
                                f"its eo:bands list {b.band}; fix the item")
            rb = raster_bands or {}
            return AssetRaster(
                gdal_path=path, band=b.band, name=name, crs_wkt=src.crs.to_wkt(), transform=src.transform,
                width=src.width, height=src.height, dtype=src.dtypes[b.band - 1],
                nodata=rb.get("nodata", src.nodata), scale=float(rb.get("scale", src.scales[b.band - 1])),
                offset=float(rb.get("offset", src.offsets[b.band - 1])),
            )
    except RasterioError as e:
        raise StacError(
            f"{where}: item {item_id} asset '{b.key}' cannot be read from {b.href} "
            f"({clip(str(e).splitlines()[0], 120)}); check that the file or URL exists and is a raster"
        ) from None


def _raster_bands(item, b: AssetBand) -> dict | None:
    rb = item.assets[b.key].to_dict().get("raster:bands") or []
    return rb[b.band - 1] if len(rb) >= b.band else None


def _mask_rule(item, base: str, where: str) -> MaskRule | None:
    masks = [b for b in item_bands(item, base) if _mask_kind(b)]
    data_masks = [k for k, a in item.assets.items() if "data-mask" in (a.roles or [])]
    if masks:
        b = masks[0]
        a = open_asset(b, b.key, where, item.id)
        if _mask_kind(b) == "scl":
            return MaskRule(a, valid_values=None, invalid_values=SCL_INVALID)
        return MaskRule(a, valid_values=(0,))
    if data_masks:
        key = data_masks[0]
        asset = item.assets[key]
        b = AssetBand(key, _absolute(asset.get_absolute_href() or asset.href, base), 1, None, None, asset.media_type)
        return MaskRule(open_asset(b, key, where, item.id), valid_values=None, invalid_values=(0,))
    return None


def item_vrt(item, *, bands: list[str] | None, date: dt.date | None, workdir: Path, base: str,
             mask: bool = True, resampling: str = "bilinear", name: str | None = None) -> tuple[Path, list[str], dt.date]:
    """Write the VRT of one item; return its path, its band names and its date."""
    where = base
    d = item_date(item, date, where)
    chosen, names = pick_bands(item, bands, base, where)
    rasters = [open_asset(b, n, where, item.id, _raster_bands(item, b)) for b, n in zip(chosen, names, strict=True)]
    crs = {r.crs_wkt for r in rasters}
    if len(crs) > 1:
        raise StacError(f"{where}: item {item.id} has its band assets in different CRSs; "
                        "reproject them to one CRS (gdalwarp) or pick bands that share one")
    rule = _mask_rule(item, base, where) if mask else None
    if rule is not None and rule.asset.crs_wkt != rasters[0].crs_wkt:
        raise StacError(f"{where}: item {item.id} mask asset is in another CRS than its bands; pass mask=False")
    xml = vrt_xml(rasters, date=d, item_id=item.id, mask=rule, resampling=resampling)
    path = write_vrt(Path(workdir) / f"{name or safe_name(item.id)}.vrt", xml)
    return path, names, d


def safe_name(text: str) -> str:
    """``text`` as a file name: letters, digits, ``-``, ``_`` and ``.`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "item"


def resolve_stac_inputs(
    inputs: list[str], *, bands: list[str] | None = None, date: dt.date | None = None,
    workdir: str | Path, mask: bool = True, resampling: str = "bilinear",
) -> list:
    """``SourceSpec`` objects for STAC inputs: one VRT per item, named after the item.

    Args:
        inputs: STAC Item / ItemCollection / Catalog / Collection JSON files or http(s) URLs.
        bands: band names or ids (``red,nir`` or ``B4,B8``) in the order wanted; default: every
            band the first item describes.
        date: acquisition date for every item (``--date``); default: each item's datetime.
        workdir: folder for the VRTs (created; only riotvit's ``<item>.vrt`` files are written).
        mask: use a cloud / SCL / data-mask asset as the nodata mask when an item has one.
        resampling: for band assets coarser than the finest chosen band.

    Raises:
        StacError: not STAC, unreadable assets, missing bands or dates.
    """

    workdir = Path(workdir)
    made = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _resolve(inputs, bands, date, workdir, mask, resampling)
    except BaseException:
        if made and not any(workdir.iterdir()):  # leave no empty folder behind a failed run
            workdir.rmdir()
        raise


def _resolve(inputs, bands, date, workdir: Path, mask: bool, resampling: str) -> list[SourceSpec]:
    specs, used, first_names = [], set(), None
    for href in inputs:
        for item in load_items(str(href), date):
            stem = safe_name(item.id)
            name, k = stem, 1
            while name in used:
                name, k = f"{stem}_{k}", k + 1
            used.add(name)
            path, names, d = item_vrt(item, bands=bands or first_names, date=date, workdir=workdir, base=str(href),
                                      mask=mask, resampling=resampling, name=name)
            first_names = first_names or names
            specs.append(SourceSpec(path, id=item.id, bands=names, date=d))
    return specs
