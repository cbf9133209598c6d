"""``riotvit train`` / ``evaluate``: the bundle, honest metrics, determinism, resumption, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from pipeline_fixtures import make_world, tiny_config
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.errors import ConfigError, ModelError, OutputExistsError, SamplesError
from riotvit.train.bundle import Bundle
from riotvit.train.evaluate import evaluate_bundle
from riotvit.train.trainer import train


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    res = train(world.tiles, world.samples, out, tiny_config(epochs=3))
    return res


def test_bundle_holds_everything_to_use_and_audit_the_model(run, world):
    p = run.path
    for f in ("model.safetensors", "bundle.json", "background.safetensors", "history.csv", "history.png",
              "metrics.json", "metrics.md", "reliability.png", "model_card.md"):
        assert (p / f).is_file(), f
    assert not list(p.glob("checkpoint.*")) and not (p.parent / "run.partial").exists()
    b = Bundle.open(p)
    m = b.meta
    assert m["bands"] == ["blue", "green", "red", "nir"] and m["input_px"] == 32
    assert len(m["features"]["names"]) == 42 and m["features"]["names"][0].startswith("census_")
    assert "census_coverage" not in m["features"]["names"]  # a data-quality column, not a driver
    assert m["targets"]["heads"] == ["riot", "event_count", "fatalities", "crowd_size", "type_counts"]
    cal = m["calibration"]  # calibration: auto picks by cross-fitted validation log-loss, or says why it could not
    assert cal["method"] in ("temperature", "platt", "isotonic") and cal["chosen_by"].startswith("validation log-loss") \
        or cal["method"] == "none" and cal["note"]
    assert 0 < m["threshold"] < 1
    assert m["grid"]["crop_m"] == 672 and m["provenance"]["tileset"]["signature"]
    model = b.load_model()
    assert sum(p.numel() for p in model.parameters()) == m["model"]["params_total"]
    bg = b.background()
    assert bg["image"].shape == (16, 4, 32, 32) and bg["meta"].shape == (16, 42)
    hist = pd.read_csv(p / "history.csv")
    assert len(hist) == run.epochs_run == 3 and {"train_loss", "val_aupr", "images_per_s"} <= set(hist.columns)
    for png in ("history.png", "reliability.png"):
        assert np.asarray(Image.open(p / png)).std() > 0
    card = (p / "model_card.md").read_text()
    assert "never individuals" in card and "Not for" in card and "ACLED reporting bias" in card


def test_metrics_compare_with_both_baselines_on_the_same_rows(run):
    m = json.loads((run.path / "metrics.json").read_text())
    assert set(m["models"]) == {"riotvit", "prevalence", "persistence", "history_census"}
    split = next(iter(m["splits"]))
    rows = {model: m["splits"][split]["models"][model]["riot"] for model in m["models"]}
    assert len({r["n"] for r in rows.values()}) == 1 and len({r["n_pos"] for r in rows.values()}) == 1
    for r in rows.values():
        assert 0 <= r["aupr"] <= 1 and 0 <= r["brier"] <= 1 and 0 <= r["ece"] <= 1
    assert rows["prevalence"]["auroc"] == 0.5
    md = (run.path / "metrics.md").read_text()
    thin = json.loads((run.path / "metrics.json").read_text())["thin_data"]
    # lifts over a handful of held-out positives would be noise: the table says so instead
    assert "riotvit" in md and "history_census" in md
    assert ("Data too thin for a meaningful AUPR" in md) if thin["thin"] else ("AUPR lift" in md)


def test_evaluate_reproduces_the_training_metrics(run):
    table, _ = evaluate_bundle(str(run.path))
    again = table.to_dict()
    m = json.loads((run.path / "metrics.json").read_text())
    split = next(iter(m["splits"]))
    for model in ("riotvit", "history_census"):
        assert again["splits"][split]["models"][model]["riot"]["aupr"] == pytest.approx(m["splits"][split]["models"][model]["riot"]["aupr"], abs=1e-9)
    r = CliRunner().invoke(app, ["evaluate", str(run.path), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["primary"] == "riotvit"


def test_cpu_training_is_deterministic_and_resumes_to_the_same_model(world, tmp_path):
    cfg = tiny_config(epochs=2)
    a = train(world.tiles, world.samples, tmp_path / "a", cfg)
    b = train(world.tiles, world.samples, tmp_path / "b", cfg)
    assert (a.path / "model.safetensors").read_bytes() == (b.path / "model.safetensors").read_bytes()

    class Interrupt:  # stops the run right after epoch 1's checkpoint
        def start(self, *a, **k): ...
        def advance(self, n=1): ...
        def stop(self): ...
        def log(self, msg):
            if msg.startswith("epoch 1:"):
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(world.tiles, world.samples, tmp_path / "c", cfg, reporter=Interrupt())
    assert (tmp_path / "c.partial" / "checkpoint.safetensors").is_file() and not (tmp_path / "c").exists()
    assert not (tmp_path / "c.partial" / "checkpoint.json").exists()  # one file: state in its metadata
    c = train(world.tiles, world.samples, tmp_path / "c", cfg)
    assert c.resumed_from == 1
    assert (a.path / "model.safetensors").read_bytes() == (c.path / "model.safetensors").read_bytes()


def test_a_kill_while_writing_a_checkpoint_resumes_from_the_previous_one(world, tmp_path, monkeypatch):
    """Killed after epoch 2's checkpoint is written but before it is renamed: the rerun resumes from epoch 1's."""
    from safetensors.torch import save_file

    import riotvit.train.loop as loop
    from riotvit.io import atomic_file

    cfg = tiny_config(epochs=2)
    a = train(world.tiles, world.samples, tmp_path / "a", cfg)
    real, calls = loop.save_tensors, []

    def killed_on_second(path, tensors, metadata=None):
        calls.append(path)
        if len(calls) < 2:
            return real(path, tensors, metadata)
        with atomic_file(path) as tmp:  # the new checkpoint is complete under its temporary name...
            save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
            raise KeyboardInterrupt  # ...and the process dies before the rename

    monkeypatch.setattr(loop, "save_tensors", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        train(world.tiles, world.samples, tmp_path / "c", cfg)
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "c.partial").glob("checkpoint*")] == ["checkpoint.safetensors"]
    c = train(world.tiles, world.samples, tmp_path / "c", cfg)
    assert c.resumed_from == 1
    assert (a.path / "model.safetensors").read_bytes() == (c.path / "model.safetensors").read_bytes()


def test_a_failed_train_leaves_no_empty_partial_folder(world, tmp_path, monkeypatch):
    import riotvit.train.forecast as forecast  # train_on_split, used by both protocols, calls fit there

    def boom(*a, **k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(forecast, "fit", boom)
    with pytest.raises(RuntimeError):
        train(world.tiles, world.samples, tmp_path / "r", tiny_config(epochs=1))
    assert not (tmp_path / "r.partial").exists() and not (tmp_path / "r").exists()


def test_augmentation_and_balanced_batches():
    from riotvit.train.augment import dihedral
    from riotvit.train.data import epoch_batches

    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(8, 1, 1, 1)
    y = dihedral(x, torch.arange(8))
    assert len({tuple(v.flatten().tolist()) for v in y}) == 8  # the 8 symmetries of the square
    assert torch.equal(y[1], torch.rot90(x[0], 1, (-2, -1))) and torch.equal(y[4], x[0].flip(-1))
    labels = np.r_[np.ones(10), np.zeros(190)]
    b = epoch_batches(np.arange(200), labels, 20, np.random.default_rng(0), balance_ratio=0.25)
    assert len(b) == 10 and all((labels[bb] > 0).sum() == 5 for bb in b)


# --- bad input ------------------------------------------------------------------------------------


def test_tileset_and_samples_must_match(world, tmp_path):
    from riotvit.tile.plan import TileConfig
    from riotvit.tile.tiler import tile

    other = tile([world.sample / "city.tif"], tmp_path / "other", TileConfig(crop_px=16)).path
    with pytest.raises(SamplesError, match="made from tile set .* not from .*rerun riotvit join on this tile set"):
        train(other, world.samples, tmp_path / "x", tiny_config())
    assert not (tmp_path / "x").exists()


def test_unknown_backbone_suggests_close_names(world, tmp_path):
    cfg = tiny_config(model={"backbone": "vit_tiny_patch16_22"})
    with pytest.raises(ModelError, match="vit_tiny_patch16_224"):
        train(world.tiles, world.samples, tmp_path / "x", cfg)


def test_pretrained_bands_that_cannot_be_mapped(world, tmp_path):
    import timm
    from safetensors.torch import save_file

    rgb = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                            depth=2, num_heads=2, global_pool="avg")
    save_file(rgb.state_dict(), str(tmp_path / "rgb.safetensors"))
    cfg = tiny_config(model={"pretrained_path": str(tmp_path / "rgb.safetensors"), "pretrained_bands": ["swir1", "swir2", "tir"]})
    with pytest.raises(ModelError, match="cannot be mapped"):
        train(world.tiles, world.samples, tmp_path / "x", cfg)


def test_config_with_unknown_keys(world, tmp_path):
    bad = tmp_path / "train.yaml"
    bad.write_text("model:\n  backbon: vit_tiny_patch16_224\n")
    r = CliRunner().invoke(app, ["train", str(world.tiles), str(world.samples), "--out", str(tmp_path / "x"), "--config", str(bad)])
    assert r.exit_code == 2 and "unknown key 'model.backbon'" in r.output and "backbone" in r.output
    from riotvit.config import build_config
    from riotvit.train.config import TrainConfig

    with pytest.raises(ConfigError):
        build_config(TrainConfig, bad)


def test_no_riot_in_the_training_folds(world, tmp_path):
    from riotvit.join.stage import META_KEY, read_samples

    df, meta = read_samples(world.samples)
    df.loc[df["split"] == "train", "riot"] = 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    pq.write_table(t, tmp_path / "noriot.parquet")
    with pytest.raises(SamplesError, match="no riot crop in the training folds"):
        train(world.tiles, tmp_path / "noriot.parquet", tmp_path / "x", tiny_config())


def test_existing_run_needs_overwrite(run, world):
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train(world.tiles, world.samples, run.path, tiny_config())


def _flip_byte(path, at=-100):
    b = bytearray(path.read_bytes())
    b[at] ^= 0x01
    path.write_bytes(bytes(b))


def test_bundle_files_and_model_fields_are_checked_on_load(run, tmp_path):
    import shutil

    from riotvit.errors import BundleError

    meta = json.loads((run.path / "bundle.json").read_text())
    assert set(meta["checksums"]) == {"model.safetensors", "background.safetensors"} and meta["signature"]
    bad = tmp_path / "weights"
    shutil.copytree(run.path, bad)
    _flip_byte(bad / "model.safetensors")
    with pytest.raises(BundleError, match=r"model\.safetensors: its SHA-256 differs.*retrain or restore it"):
        Bundle.open(bad).load_model()
    _flip_byte(bad / "background.safetensors")
    with pytest.raises(BundleError, match=r"background\.safetensors: its SHA-256 differs.*retrain or restore it"):
        Bundle.open(bad).background()
    grid = tmp_path / "grid"
    shutil.copytree(run.path, grid)
    edited = dict(meta, grid=dict(meta["grid"], crop_m=meta["grid"]["crop_m"] * 2))
    (grid / "bundle.json").write_text(json.dumps(edited))
    with pytest.raises(BundleError, match="bundle.json: the fields that define the model .* changed"):
        Bundle.open(grid)
    shapes = tmp_path / "shapes"  # an edit without the signature: the weights' shapes are checked first
    shutil.copytree(run.path, shapes)
    cfg = dict(meta["config"], model=dict(meta["config"]["model"], embed_dim=64))
    (shapes / "bundle.json").write_text(json.dumps({k: v for k, v in dict(meta, config=cfg).items() if k != "signature"}))
    with pytest.raises(BundleError, match=r"weights do not fit the model described by bundle.json .*retrain"):
        Bundle.open(shapes).load_model()


def test_a_damaged_chip_file_is_refused_on_open(world, tmp_path):
    import shutil

    from riotvit.errors import TileSetError
    from riotvit.tile.tileset import TileSet

    ts = tmp_path / "tiles"
    shutil.copytree(world.tiles, ts)
    assert TileSet.open(ts).info.chips.sha256
    _flip_byte(ts / "chips.npy")
    with pytest.raises(TileSetError, match=r"chips\.npy: does not match the SHA-256 .*rerun riotvit tile"):
        train(ts, world.samples, tmp_path / "r", tiny_config(epochs=1))
    assert not (tmp_path / "r.partial").exists()
