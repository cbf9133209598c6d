"""The one sensor band table: ids and common names resolve to the same bands."""

from __future__ import annotations

import pytest

from riotvit.errors import ConfigError
from riotvit.sensors import SENSOR_BANDS, canonical_band, check_sensor, resolve_bands
from riotvit.train.models.bands import BAND_ALIASES


def _names(bands, sensor=None):
    return [r.name for r in resolve_bands(bands, sensor)]


def test_the_table_holds_the_sensors_bands():
    by = {(b.sensor, b.id): b for b in SENSOR_BANDS}
    assert len([b for b in SENSOR_BANDS if b.sensor == "sentinel2"]) == 13
    assert by["sentinel2", "B8A"].common_name == "nir08" and by["sentinel2", "B08"].center_um == 0.842
    assert by["landsat8", "B5"].common_name == "nir08" and by["landsat7", "B4"].common_name == "nir08"
    assert by["landsat8", "B10"].center_um > 10  # thermal, micrometres
    assert len(by) == len(SENSOR_BANDS)  # one row per sensor band


def test_ids_and_common_names_mean_the_same_thing():
    s2 = resolve_bands(["B4", "B3", "B2", "B8"], "sentinel2")
    assert [r.name for r in s2] == _names(["red", "green", "blue", "nir"]) == ["red", "green", "blue", "nir"]
    assert [r.band.id for r in s2] == ["B04", "B03", "B02", "B08"]
    assert _names(["B04", "B03", "B02", "B08"]) == ["red", "green", "blue", "nir"]  # zero-padded: Sentinel-2
    assert _names(["B4", "B3", "B2", "B8"], "landsat7") == ["nir08", "red", "green", "pan"]
    assert _names(["SR_B4", "SR_B5"], "landsat8") == ["red", "nir08"]
    assert _names(["B8A", "B11"]) == ["nir08", "swir16"]  # only Sentinel-2 has B8A
    assert _names(["band_1", "Population"]) == ["band_1", "population"]  # not in the table: kept
    assert check_sensor("Sentinel-2") == "sentinel2" and check_sensor("landsat9") == "landsat8"
    assert BAND_ALIASES["swir16"] == ("swir1", "swir_1", "swir_16")  # the model's table is this one
    assert canonical_band("Near-Infrared") == "nir"


def test_ambiguous_ids_ask_for_a_sensor():
    with pytest.raises(ConfigError) as e:
        resolve_bands(["B4", "B3", "B2"])
    assert str(e.value) == (
        "--bands: B4 is ambiguous (red on sentinel2; red on landsat8; nir08 on landsat7); "
        "pass --sensor sentinel2|landsat8|landsat7 or use common names"
    )


def test_bad_names_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"--bands: B13 is not a Sentinel-2 MSI \(A/B/C\) band; use one of B01, B02"):
        resolve_bands(["B13"], "sentinel2")
    with pytest.raises(ConfigError, match=r"--sensor modis: unknown sensor; use one of sentinel2, landsat8, landsat7"):
        resolve_bands(["red"], "modis")
    with pytest.raises(ConfigError, match=r"--bands: B04 and red are the same band \(red\); name each band once"):
        resolve_bands(["B04", "red"])
