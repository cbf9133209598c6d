"""Enumerated options and inconsistent configs fail with one line that names the option or key."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.config import build_config, validate
from riotvit.errors import ConfigError
from riotvit.predict.plan import PredictConfig
from riotvit.train.config import TrainConfig
from riotvit.train.models.config import ModelConfig

runner = CliRunner()


def _one_error_line(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.mark.parametrize("option,value,expected", [
    ("--tta", "3", "--tta: must be one of 1, 2, 4, 8 (got 3)"),
    ("--device", "gpu", "--device: must be one of auto, cpu, cuda (got 'gpu')"),
    ("--metadata", "some", "--metadata: must be one of auto, none (got 'some')"),
])
def test_predict_enumerated_options(tmp_path, option, value, expected):
    line = _one_error_line(["predict", "--model", str(tmp_path / "m"), "--region", "0,0,1,1",
                            "--out", str(tmp_path / "p"), option, value])
    assert line == f"error: {expected}"


def test_explain_backend(tmp_path):
    line = _one_error_line(["explain", "--model", str(tmp_path / "m"), "--region", "0,0,1,1",
                            "--out", str(tmp_path / "p"), "--backend", "lime"])
    assert line == "error: --backend: must be one of riotvit, shap (got 'lime')"


@pytest.mark.parametrize("option,value,expected", [
    ("--fusion", "concat", "--fusion: must be one of late, film, token, none (got 'concat')"),
    ("--device", "tpu", "--device: must be one of auto, cpu, cuda (got 'tpu')"),
    ("--epochs", "0", "--epochs: Input should be greater than or equal to 1 (got 0)"),
])
def test_train_options(tmp_path, option, value, expected):
    line = _one_error_line(["train", str(tmp_path / "tiles"), str(tmp_path / "s.parquet"),
                            "--out", str(tmp_path / "m"), option, value])
    assert line == f"error: {expected}"


def test_tile_resampling(tmp_path):
    line = _one_error_line(["tile", str(tmp_path / "x.tif"), "--out", str(tmp_path / "t"), "--resampling", "spline"])
    assert line.startswith("error: --resampling: must be one of nearest, bilinear, cubic") and "(got 'spline')" in line


def test_a_bad_value_in_a_file_names_the_file_and_key(tmp_path):
    f = tmp_path / "predict.yaml"
    f.write_text("predict:\n  tta: 6\n")
    with pytest.raises(ConfigError) as e:
        build_config(PredictConfig, f, section="predict")
    assert str(e.value) == f"{f}: 'tta': must be one of 1, 2, 4, 8 (got 6)"


def test_predict_config_types():
    cfg = PredictConfig(tta=2, device="cpu", precision="fp32", metadata="none")
    assert (cfg.tta, cfg.device, cfg.precision, cfg.metadata) == (2, "cpu", "fp32", "none")
    with pytest.raises(ConfigError, match="'precision': must be one of auto, fp32, bf16"):
        validate(PredictConfig, {"precision": "fp16"}, "options")


def test_num_heads_must_divide_embed_dim():
    with pytest.raises(ConfigError, match="num_heads 5 does not divide embed_dim 64.*num_heads 4 or 8"):
        validate(ModelConfig, {"embed_dim": 64, "num_heads": 5}, "options")
    assert ModelConfig(embed_dim=64, num_heads=4).num_heads == 4


def test_train_config_cross_checks():
    with pytest.raises(ConfigError, match="heads.riot.enabled is false"):
        validate(TrainConfig, {"model": {"heads": {"riot": {"enabled": False}}}}, "t.yaml")
    with pytest.raises(ConfigError, match="^t.yaml: optim.warmup_epochs 3 is longer than optim.epochs 2"):
        validate(TrainConfig, {"optim": {"epochs": 2, "warmup_epochs": 3}}, "t.yaml")
    assert TrainConfig.model_validate({"optim": {"epochs": 1, "warmup_epochs": 1}}).optim.epochs == 1
