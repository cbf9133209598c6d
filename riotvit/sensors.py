"""The one table of sensor bands: Sentinel-2, Landsat 8/9 and Landsat 5/7 band ids, STAC ``eo``
common names and centre wavelengths, and the rules that turn a user's band name into one of them.

A band can be named by its STAC ``eo`` common name (``red``, ``nir``, ``swir16`` ...; spellings
such as ``R``, ``Near-Infrared`` or ``SWIR 1`` are accepted, see :data:`COMMON_NAME_SPELLINGS`) or
by its sensor band id (``B4``, ``B04``, ``B8A``, ``SR_B4``). Ids are resolved as follows:

- with a sensor stated (``--sensor sentinel2|landsat8|landsat7``), in that sensor's table;
- zero-padded ids (``B01`` .. ``B09``) and ``B8A`` exist only on Sentinel-2, so they name
  Sentinel-2 bands without a sensor;
- otherwise the sensor is inferred from the whole list: the sensors that have every id given are
  kept, and the list is accepted when they all agree on the common names (``B2,B3`` is blue,
  green everywhere). Where they disagree the list is ambiguous and the error asks for a sensor:
  ``B4`` is red on Sentinel-2 and Landsat 8/9 but near-infrared on Landsat 5/7.

Names that are neither (``band_1``, ``population``, ``ndvi``) are kept as they are, normalised.
Pure Python; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from riotvit.errors import ConfigError

SENSORS: dict[str, str] = {
    "sentinel2": "Sentinel-2 MSI (A/B/C)",
    "landsat8": "Landsat 8/9 OLI/TIRS",
    "landsat7": "Landsat 5 TM / Landsat 7 ETM+",
}
"""Sensor key -> description. ``landsat7`` covers Landsat 4/5 TM as well (same band numbers)."""


@dataclass(frozen=True)
class SensorBand:
    """One band of one sensor."""

    sensor: str
    id: str
    common_name: str
    center_um: float

    @property
    def key(self) -> str:
        """``sensor:id``, e.g. ``sentinel2:B04``."""
        return f"{self.sensor}:{self.id}"


def _table(sensor: str, rows: str) -> tuple[SensorBand, ...]:
    out = []
    for line in rows.strip().splitlines():
        bid, name, um = line.split()
        out.append(SensorBand(sensor, bid, name, float(um)))
    return tuple(out)


SENSOR_BANDS: tuple[SensorBand, ...] = (
    _table("sentinel2", """
        B01 coastal    0.443
        B02 blue       0.490
        B03 green      0.560
        B04 red        0.665
        B05 rededge071 0.705
        B06 rededge075 0.740
        B07 rededge078 0.783
        B08 nir        0.842
        B8A nir08      0.865
        B09 nir09      0.945
        B10 cirrus     1.375
        B11 swir16     1.610
        B12 swir22     2.190
    """)
    + _table("landsat8", """
        B1  coastal 0.443
        B2  blue    0.482
        B3  green   0.561
        B4  red     0.655
        B5  nir08   0.865
        B6  swir16  1.609
        B7  swir22  2.201
        B8  pan     0.590
        B9  cirrus  1.373
        B10 lwir11  10.895
        B11 lwir12  12.005
    """)
    + _table("landsat7", """
        B1 blue   0.485
        B2 green  0.560
        B3 red    0.660
        B4 nir08  0.835
        B5 swir16 1.650
        B6 lwir   11.450
        B7 swir22 2.220
        B8 pan    0.710
    """)
)
"""Every band of every sensor in :data:`SENSORS`: id, STAC eo common name, centre wavelength (µm)."""

COMMON_NAME_SPELLINGS: dict[str, tuple[str, ...]] = {
    "coastal": ("coastal_aerosol", "aerosol", "ultrablue"),
    "blue": ("b", "blu"),
    "green": ("g", "grn"),
    "red": ("r",),
    "yellow": ("y",),
    "pan": ("panchromatic",),
    "rededge": ("red_edge", "re"),
    "rededge071": (), "rededge075": (), "rededge078": (),
    "nir": ("near_infrared", "near_ir", "nearinfrared", "infrared", "ir"),
    "nir08": ("nir_08",), "nir09": ("nir_09",),
    "cirrus": (),
    "swir16": ("swir1", "swir_1", "swir_16"),
    "swir22": ("swir2", "swir_2", "swir_22"),
    "lwir": ("thermal", "tir", "tirs"),
    "lwir11": ("tirs1", "lwir_11"), "lwir12": ("tirs2", "lwir_12"),
}
"""STAC eo common name -> other accepted spellings (compared after :func:`normalise_band`)."""

COMMON_NAME_FAMILY: dict[str, str] = {
    "nir08": "nir", "nir09": "nir", "rededge071": "rededge", "rededge075": "rededge",
    "rededge078": "rededge", "lwir11": "lwir", "lwir12": "lwir",
}
"""Narrow common names -> the broad one they belong to (a fallback when matching by name)."""

_ID_RE = re.compile(r"^(?:sr_|st_)?b(\d{1,2}a?)$")


def normalise_band(name: str) -> str:
    """Lower-case ``name`` and turn spaces, dashes and dots into underscores."""
    return re.sub(r"[\s\-.]+", "_", str(name).strip().lower()).strip("_")


def _spelling_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for canon, names in COMMON_NAME_SPELLINGS.items():
        for n in (canon, *names):
            index[normalise_band(n)] = canon
            index[normalise_band(n).replace("_", "")] = canon
    return index


_SPELLINGS = _spelling_index()


def common_name(name: str) -> str | None:
    """The STAC eo common name a spelling stands for (``"Near-Infrared"`` -> ``"nir"``), else None."""
    norm = normalise_band(name)
    return _SPELLINGS.get(norm) or _SPELLINGS.get(norm.replace("_", ""))


def _id_parts(name: str) -> tuple[str, bool] | None:
    """``(number, zero_padded)`` of a band id (``B04`` -> ``("4", True)``), else None."""
    m = _ID_RE.match(normalise_band(name))
    if not m:
        return None
    num = m[1]
    return num.lstrip("0") or "0", num.startswith("0") or num == "8a"


def id_candidates(name: str, sensor: str | None = None) -> list[SensorBand]:
    """Sensor bands a band id can name (all sensors, or ``sensor`` only); [] for a non-id."""
    parts = _id_parts(name)
    if parts is None:
        return []
    num, s2_only = parts
    out = []
    for b in SENSOR_BANDS:
        if sensor is not None and b.sensor != sensor:
            continue
        if s2_only and sensor is None and b.sensor != "sentinel2":
            continue
        if b.id[1:].lstrip("0").lower() == num:
            out.append(b)
    return out


def check_sensor(sensor: str | None) -> str | None:
    """``sensor`` normalised (``Sentinel-2`` -> ``sentinel2``), or a one-line error naming the valid ones."""
    if sensor is None:
        return None
    s = normalise_band(sensor).replace("_", "")
    s = {"s2": "sentinel2", "landsat9": "landsat8", "landsat5": "landsat7", "l8": "landsat8", "l9": "landsat8",
         "l7": "landsat7", "l5": "landsat7"}.get(s, s)
    if s not in SENSORS:
        raise ConfigError(f"--sensor {sensor}: unknown sensor; use one of {', '.join(SENSORS)}")
    return s


@dataclass(frozen=True)
class ResolvedBand:
    """A band name as given, and what it resolved to."""

    given: str
    name: str  # the STAC common name, or the normalised name when not in the table
    band: SensorBand | None = None  # the sensor band when an id (or a sensor) pins it

    def to_dict(self) -> dict[str, str | float | None]:
        b = self.band
        return {"given": self.given, "name": self.name, "sensor": b.sensor if b else None,
                "id": b.id if b else None, "center_um": b.center_um if b else None}


def resolve_bands(names: Sequence[str], sensor: str | None = None, where: str = "--bands") -> list[ResolvedBand]:
    """Resolve band names and ids (see the module docstring) to common names.

    Args:
        names: band names or ids, in channel order.
        sensor: a key of :data:`SENSORS` (or a spelling accepted by :func:`check_sensor`), or None.
        where: what to name in errors (an option, a file).

    Raises:
        ConfigError: an id the sensor lacks, ids that are ambiguous without a sensor, or two names
            that resolve to the same band.
    """
    sensor = check_sensor(sensor)
    ids = [n for n in names if _id_parts(n) is not None and common_name(n) is None]
    pinned: dict[str, SensorBand] = {}
    if ids:
        pinned = _resolve_ids(ids, sensor, where)
    out = []
    for n in names:
        if n in pinned:
            out.append(ResolvedBand(n, pinned[n].common_name, pinned[n]))
            continue
        cn = common_name(n)
        if cn is None:
            out.append(ResolvedBand(n, normalise_band(n)))
            continue
        band = next((b for b in SENSOR_BANDS if b.sensor == sensor and b.common_name == cn), None) if sensor else None
        out.append(ResolvedBand(n, cn, band))
    seen: dict[str, str] = {}
    for r in out:
        if r.name in seen:
            raise ConfigError(f"{where}: {seen[r.name]} and {r.given} are the same band ({r.name}); name each band once")
        seen[r.name] = r.given
    return out


def _resolve_ids(ids: list[str], sensor: str | None, where: str) -> dict[str, SensorBand]:
    if sensor is not None:
        out = {}
        for n in ids:
            c = id_candidates(n, sensor)
            if not c:
                valid = ", ".join(b.id for b in SENSOR_BANDS if b.sensor == sensor)
                raise ConfigError(f"{where}: {n} is not a {SENSORS[sensor]} band; use one of {valid} or a common name")
            out[n] = c[0]
        return out
    cands = {n: id_candidates(n) for n in ids}
    for n, c in cands.items():
        if not c:
            raise ConfigError(f"{where}: {n} is not a band id of {', '.join(SENSORS)}; use a common name such as "
                              f"{', '.join(list(COMMON_NAME_SPELLINGS)[:6])} ...")
    sensors = [s for s in SENSORS if all(any(b.sensor == s for b in c) for c in cands.values())]
    if not sensors:
        raise ConfigError(f"{where}: no one sensor has all of {', '.join(ids)}; pass --sensor or use common names")
    picks = {s: {n: next(b for b in c if b.sensor == s) for n, c in cands.items()} for s in sensors}
    for n in ids:  # the first id (in the order given) whose meaning depends on the sensor
        if len({picks[x][n].common_name for x in sensors}) > 1:
            meanings = "; ".join(f"{picks[x][n].common_name} on {x}" for x in sensors)
            raise ConfigError(
                f"{where}: {n} is ambiguous ({meanings}); pass --sensor {'|'.join(sensors)} or use common names"
            )
    return picks[sensors[0]]


def canonical_band(name: str) -> str:
    """The common name of a single band name or unambiguous id (``B04`` -> ``red``); anything else
    (including ambiguous ids such as ``B4``) is returned normalised, so equal names still match."""
    cn = common_name(name)
    if cn is not None:
        return cn
    c = id_candidates(name)
    if c and len({b.common_name for b in c}) == 1:
        return c[0].common_name
    return normalise_band(name)
