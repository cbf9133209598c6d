"""Geo-foundation weights from a local file: 13 Sentinel-2 kernels mapped onto a tile set's bands."""

from __future__ import annotations

import json

import pytest
import torch

from riotvit.errors import ModelError
from riotvit.train.models import ModelConfig, create_model, load_pretrained

S2_13 = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
TINY = dict(backbone="vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
            drop_path_rate=0.0, meta_dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _save_13band(path, sidecar: dict | None = None) -> dict[str, torch.Tensor]:
    """A tiny 13-band ViT state dict whose patch kernel for band k (0-based) is filled with k + 1."""
    import timm
    from safetensors.torch import save_file

    src = timm.create_model("vit_tiny_patch16_224", pretrained=False, in_chans=13, num_classes=0, img_size=32,
                            patch_size=8, embed_dim=32, depth=2, num_heads=2)
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    w = torch.empty_like(sd["patch_embed.proj.weight"])
    for k in range(13):
        w[:, k] = k + 1
    sd["patch_embed.proj.weight"] = w
    save_file(sd, str(path))
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return sd


def _band_values(model) -> list[float]:
    """The (constant) value of each input channel's kernel, undoing the n_src / n_bands rescale."""
    w = model.backbone.patch_embed.proj.weight.detach()
    scale = 13 / w.shape[1]
    return [round(float(w[:, c].mean()) / scale, 4) for c in range(w.shape[1])]


def test_13_sentinel2_kernels_land_on_red_green_blue_nir_from_a_sidecar(tmp_path):
    _save_13band(tmp_path / "ssl4eo.safetensors", {"bands": S2_13, "sensor": "sentinel2"})
    cfg = ModelConfig(**TINY, pretrained_path=str(tmp_path / "ssl4eo.safetensors"))
    model = create_model(cfg, ["red", "green", "blue", "nir", "population"], 3, 2)
    # B4 is channel 3 (value 4), B3 -> 3, B2 -> 2, B8 -> 8; population is missing: mean of 1..13 = 7
    assert _band_values(model) == [4.0, 3.0, 2.0, 8.0, 7.0]
    w = model.backbone.patch_embed.proj.weight.detach()
    assert torch.all(w[:, 3] == 8 * 13 / 5)  # every element, not just the mean
    rep = model.pretrained_report
    assert rep.band_map == {"red": "B4", "green": "B3", "blue": "B2", "nir": "B8", "population": "mean"}
    assert rep.bands_from == f"sidecar {tmp_path / 'ssl4eo.json'}"
    assert rep.adapted["patch_embed.proj.weight"].startswith("bands B1,B2,B3")


def test_band_list_from_the_config_wins_and_ids_or_names_give_the_same_mapping(tmp_path):
    _save_13band(tmp_path / "w.safetensors", {"bands": ["x"] * 13})  # a wrong sidecar, overridden
    cfg = ModelConfig(**TINY, pretrained_path=str(tmp_path / "w.safetensors"), pretrained_bands=S2_13)
    by_id = create_model(cfg, ["B08", "B04"], 3, 2)
    by_name = create_model(cfg, ["nir", "red"], 3, 2)
    assert _band_values(by_id) == _band_values(by_name) == [8.0, 4.0]
    assert by_name.pretrained_report.bands_from == "model.pretrained_bands"
    # narrow NIR (B8A, value 9) stands in for NIR when B8 is absent
    cfg2 = cfg.model_copy(update={"pretrained_bands": [b if b != "B8" else "yellow" for b in S2_13]})
    assert _band_values(create_model(cfg2, ["nir"], 3, 2))[0] == 9.0


def test_landsat_ids_need_the_sensor_when_ambiguous(tmp_path):
    l7 = ["B1", "B2", "B3", "B4", "B5", "B7", "B8"]
    sd = {"patch_embed.proj.weight": torch.arange(1.0, 8.0).view(1, 7, 1, 1).expand(32, 7, 8, 8).contiguous()}
    from safetensors.torch import save_file

    save_file(sd, str(tmp_path / "l7.safetensors"))
    model = create_model(ModelConfig(**TINY), ["red", "nir"], 3, 2, pretrained=False)
    with pytest.raises(ModelError, match=r"B1 is ambiguous \(coastal on sentinel2; coastal on landsat8; blue on landsat7\); pass --sensor"):
        load_pretrained(model, tmp_path / "l7.safetensors", l7)
    rep = load_pretrained(model, tmp_path / "l7.safetensors", l7, sensor="landsat7")
    assert rep.band_map == {"red": "B3", "nir": "B4"}  # Landsat 5/7: B3 red, B4 NIR
    w = model.backbone.patch_embed.proj.weight.detach()
    assert float(w[0, 0, 0, 0]) == pytest.approx(3 * 7 / 2) and float(w[0, 1, 0, 0]) == pytest.approx(4 * 7 / 2)


def test_bad_band_lists_are_one_line_errors(tmp_path):
    _save_13band(tmp_path / "w.safetensors", {"bands": S2_13[:12], "sensor": "sentinel2"})
    cfg = ModelConfig(**TINY, pretrained_path=str(tmp_path / "w.safetensors"))
    with pytest.raises(ModelError) as e:
        create_model(cfg, ["red", "nir"], 3, 2)
    side = tmp_path / "w.json"
    assert str(e.value) == (
        f"sidecar {side} {','.join(S2_13[:12])} name 12 channels but the pretrained first layer has 13 input "
        f"channels; list one band per pretrained channel in sidecar {side}"
    )
    with pytest.raises(ModelError, match=r"pretrained_bands: unknown band name 'ultraviolet'; use a Sentinel-2"):
        create_model(cfg.model_copy(update={"pretrained_bands": S2_13[:12] + ["ultraviolet"]}), ["red"], 3, 2)
    side.write_text("{not json")
    with pytest.raises(ModelError, match=r"w.json: not a readable JSON band sidecar"):
        create_model(cfg, ["red"], 3, 2)
    side.unlink()
    with pytest.raises(ModelError, match=r"13 input channels; set model.pretrained_bands"):
        create_model(cfg, ["red"], 3, 2)


def test_check_model_config_finds_a_band_list_that_does_not_fit_before_any_work(tmp_path):
    from riotvit.train.models.backbone import check_model_config

    _save_13band(tmp_path / "w.safetensors", {"bands": S2_13, "sensor": "sentinel2"})
    cfg = ModelConfig(**TINY, pretrained_path=str(tmp_path / "w.safetensors"))
    check_model_config(cfg)  # the sidecar fits: 13 names, 13 channels
    with pytest.raises(ModelError, match=r"^model.pretrained_bands B2,B3,B4 name 3 channels but the pretrained first "
                                         r"layer has 13 input channels; list one band per pretrained channel in "
                                         r"model.pretrained_bands$"):
        check_model_config(cfg.model_copy(update={"pretrained_bands": ["B2", "B3", "B4"]}))
    model = create_model(cfg, ["nir", "red"], 3, 2)
    assert model.pretrained_report.band_summary() == {
        "path": str(tmp_path / "w.safetensors"), "bands_from": f"sidecar {tmp_path / 'w.json'}",
        "band_map": {"nir": "B8", "red": "B4"}}


def test_train_cli_options_for_pretrained_bands(tmp_path):
    from typer.testing import CliRunner

    from riotvit.cli import app

    _save_13band(tmp_path / "w.safetensors")
    base = ["train", str(tmp_path / "tiles"), str(tmp_path / "samples.parquet"), "--out", str(tmp_path / "run"),
            "--backbone", "vit_tiny_patch16_224", "--pretrained", str(tmp_path / "w.safetensors")]
    r = CliRunner().invoke(app, [*base, "--pretrained-bands", "B2,B3,B4"])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "model.pretrained_bands B2,B3,B4 name 3 channels but the pretrained first layer has 13" in " ".join(r.output.split())
    r = CliRunner().invoke(app, [*base, "--pretrained-bands", ",".join(S2_13), "--pretrained-sensor", "modis"])
    assert r.exit_code != 0 and "modis: unknown sensor; use one of sentinel2, landsat8, landsat7" in " ".join(r.output.split())
    assert not (tmp_path / "run").exists()
