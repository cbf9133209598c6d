"""The CLI is thin: it merges config files and options, prints results, and turns errors into one line."""

from __future__ import annotations

import json

import pytest
from raster_fixtures import aligned_transform, random_image, write_raster
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.tile.tileset import TileSet

runner = CliRunner()


@pytest.fixture
def raster(tmp_path):
    return write_raster(tmp_path / "img.tif", random_image((4, 64, 96)), aligned_transform(10, 20, stride_m=96.0),
                        descriptions=["blue", "green", "red", "nir"])


def test_help_lists_commands_and_examples():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and all(c in r.output for c in ("sample", "tile", "catalog"))
    r = runner.invoke(app, ["tile", "--help"])
    assert r.exit_code == 0 and "Examples" in r.output and "--overlap" in r.output


def test_tile_writes_a_tile_set(tmp_path, raster):
    r = runner.invoke(app, ["tile", str(raster), "--out", str(tmp_path / "ts"), "--crop-m", "96", "--crop-px", "32",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["crops"] == 6 and out["candidates"] == 6
    assert len(TileSet.open(tmp_path / "ts")) == 6


def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path, raster):
    r = runner.invoke(app, ["tile", str(raster), "--out", str(tmp_path / "ts"), "--crop-m", "96", "--crop-px", "32",
                            "--overlap", "0.5", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["candidate_crops"], s["grid_crs"], s["gsd_m"], s["stride_m"]) == (5 * 7, "EPSG:32637", 3.0, 48.0)
    assert s["extent"] == [960.0, 1728.0, 1248.0, 1920.0]
    assert not (tmp_path / "ts").exists() and not (tmp_path / "ts.partial").exists()


def test_config_file_with_options_winning(tmp_path, raster):
    cfg = tmp_path / "tile.yaml"
    cfg.write_text("crop_m: 96\ncrop_px: 32\noverlap: 0.5\n")
    r = runner.invoke(app, ["tile", str(raster), "--out", str(tmp_path / "ts"), "--config", str(cfg), "--dry-run",
                            "--json", "--crop-px", "16"])
    s = json.loads(r.stdout)
    assert (s["crop_m"], s["crop_px"], s["gsd_m"], s["overlap"]) == (96.0, 16, 6.0, 0.5)


def test_unknown_config_key_is_one_clear_line(tmp_path, raster):
    cfg = tmp_path / "tile.yaml"
    cfg.write_text("crop_mm: 96\n")
    r = runner.invoke(app, ["tile", str(raster), "--out", str(tmp_path / "ts"), "--config", str(cfg)])
    assert r.exit_code == 2
    assert "unknown key 'crop_mm' (did you mean: crop_m" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("args,expected", [
    (["tile", "missing.tif"], "missing.tif: neither a file nor a raster id"),
    (["tile", "{raster}", "--date", "2023-13-45"], "not a valid date"),
    (["tile", "{raster}", "--overlap", "0.5", "--stride-m", "336"], "either stride_m or overlap"),
])
def test_bad_input_exits_non_zero_with_one_line(tmp_path, raster, args, expected):
    args = [a.format(raster=raster) for a in args] + ["--out", str(tmp_path / "ts")]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert expected in " ".join(lines) and lines[0].startswith("error:") and "Traceback" not in r.output
    assert not (tmp_path / "ts").exists()


def test_existing_different_tile_set_needs_overwrite(tmp_path, raster):
    base = ["tile", str(raster), "--out", str(tmp_path / "ts"), "--crop-m", "96", "--crop-px", "32", "-q"]
    assert runner.invoke(app, base).exit_code == 0
    r = runner.invoke(app, [*base, "--overlap", "0.5"])
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert runner.invoke(app, [*base, "--overlap", "0.5", "--overwrite"]).exit_code == 0


def test_catalog_list_and_validate(tmp_path):
    r = runner.invoke(app, ["catalog", "list", "--json"])
    assert r.exit_code == 0
    ids = {row["id"] for row in json.loads(r.stdout)}
    assert {"sample_city", "kenya_counties"} <= ids
    d = tmp_path / "cat"
    d.mkdir()
    (d / "x.yaml").write_text("id: x\nkind: raster\npath: nothere.tif\nlicence: l\ncitation: c\n")
    r = runner.invoke(app, ["catalog", "validate", "--catalog", str(d), "--strict"])
    assert r.exit_code == 1 and "missing file" in r.output
