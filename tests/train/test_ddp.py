"""Training with torch DDP: torchrun ranks share every global batch and write one bundle.

The comparison with a single process uses the same seed and the same *global* batch
(``data.batch_size`` 32: 16 crops per rank). The runs are not bit-identical: each rank draws the
augmentation and dropout of its 16 crops from the seed's stream (a single process draws 32 at once)
and gradients are summed in another order. Measured on the 2-core CPU: best validation AUPR
0.8926 (2 ranks) vs 0.8887 (1 process), per-epoch gaps at most 0.016 over these 4 epochs (0.023
over 6), validation losses within 1.5%. The validation fold holds 33 crops, 11 with riots, where swapping one riot crop with a
non-riot one in the ranking moves AUPR by 0.02-0.05; the tolerance is 0.1 (two such swaps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_fixtures import make_world, tiny_config
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.errors import ConfigError
from riotvit.train import ddp
from riotvit.train.bundle import Bundle
from riotvit.train.data import epoch_batches
from riotvit.train.launch import Launch, _report

REPO = Path(__file__).resolve().parents[2]
AUPR_TOLERANCE = 0.1
EPOCHS = 4


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)


# --- the sampler: each rank's share of a global batch -----------------------------------------


def _partitions(batch: np.ndarray, *shares: np.ndarray) -> bool:
    """The shares are disjoint parts of ``batch`` that together are all of it.

    Compared as multisets: a balanced batch may hold a riot crop twice (the riot pool is cycled),
    and then one copy may go to each rank.
    """
    return Counter(batch.tolist()) == sum((Counter(s.tolist()) for s in shares), Counter())


def test_ranks_share_each_global_batch_with_the_same_riot_share():
    labels = np.r_[np.ones(30), np.zeros(170)]  # 15% riot crops
    rows = np.arange(200)
    for ratio in (0.25, 0.3, None):
        whole = epoch_batches(rows, labels, 32, np.random.default_rng(3), ratio)
        shares = [epoch_batches(rows, labels, 32, np.random.default_rng(3), ratio, rank=r, world=2) for r in (0, 1)]
        assert len(shares[0]) == len(shares[1]) == len(whole) == 7  # ceil(200 / 32) steps on every rank
        for g, a, b in zip(whole, *shares):
            assert _partitions(g, a, b)
            assert abs(a.size - b.size) <= 1
            if ratio is not None:
                assert g.size == 32 and a.size == b.size == 16
                want = round(ratio * 16)  # 4 of 16 at 0.25, 5 of 16 at 0.3
                assert (labels[a] > 0).sum() == (labels[b] > 0).sum() == want
            else:  # natural frequency: riot crops dealt evenly
                assert abs((labels[a] > 0).sum() - (labels[b] > 0).sum()) <= 1


def test_balanced_global_batch_keeps_a_riot_count_every_rank_can_share():
    labels = np.r_[np.ones(30), np.zeros(170)]
    # 0.1 of 32 is 3 riot crops, which 2 ranks cannot share: 2 ranks get round(0.1 * 16) = 2 each
    shares = [epoch_batches(np.arange(200), labels, 32, np.random.default_rng(0), 0.1, rank=r, world=2) for r in (0, 1)]
    assert all((labels[b] > 0).sum() == 2 for s in shares for b in s)
    single = epoch_batches(np.arange(200), labels, 32, np.random.default_rng(0), 0.1)
    assert all((labels[b] > 0).sum() == 3 for b in single)  # one process: unchanged


def test_a_last_batch_too_small_to_share_is_dropped():
    # 33 rows in batches of 32: the last global batch has one row, which 2 ranks cannot share
    shares = [epoch_batches(np.arange(33), None, 32, np.random.default_rng(0), rank=r, world=2) for r in (0, 1)]
    assert [len(s) for s in shares] == [1, 1] and shares[0][0].size == shares[1][0].size == 16


def test_global_batch_must_split_evenly():
    ddp.check_world(32, 2)
    ddp.check_world(30, 1)
    with pytest.raises(ConfigError, match=r"data.batch_size 30 does not split evenly over 4 processes.*multiple of 4 \(e.g. 28\)"):
        ddp.check_world(30, 4)


def test_outside_torchrun_the_collectives_change_nothing():
    assert not ddp.active() and ddp.is_main() and ddp.world_size() == 1
    rows = np.arange(5)
    assert ddp.shard_rows(rows) is rows
    outs = {"riot": np.ones(3)}
    assert ddp.gather_rows(outs) is outs
    assert ddp.sum_values([1.5, 2]) == [1.5, 2] and ddp.broadcast_values([0.25]) == [0.25]


@pytest.mark.slow
def test_collectives_under_torchrun(tmp_path):
    """The sampler and riotvit's collectives as two real gloo ranks see them."""
    out = tmp_path / "probe.json"
    done = _torchrun(str(Path(__file__).parent / "ddp_probe.py"), str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    p = json.loads(out.read_text())
    assert p["world"] == 2 and p["total"] == 3.0 and p["decided"] == 10.0  # 1 + 2 summed; rank 0's value
    assert p["shard"] == list(range(7))  # shards of 4 and 3 rows gathered back in order
    labels = np.r_[np.ones(30), np.zeros(170)]
    for name, ratio in (("balanced", 0.25), ("natural", None)):
        whole = epoch_batches(np.arange(200), labels, 32, np.random.default_rng(5), ratio)
        r0, r1 = (np.array(v) for v in p[name])
        for g, a, b in zip(whole, r0, r1):
            a, b = a[a >= 0], b[b >= 0]
            assert _partitions(g, a, b)
            if ratio is not None:
                assert (labels[a] > 0).sum() == (labels[b] > 0).sum() == 4  # 25% of each rank's 16 crops


# --- the launcher --------------------------------------------------------------------------------


def _failure(exitcode: int) -> SimpleNamespace:
    return SimpleNamespace(exitcode=exitcode)


def test_a_failed_rank_is_reported_once_in_one_line(tmp_path):
    (tmp_path / "rank1.log").write_text("a warning of rank 1\nerror: /x/samples.parquet: bad\n")
    # rank 1 failed first and rank 0 was stopped before it said anything: rank 1's error line, its exit code
    job = _report(SimpleNamespace(failures={1: _failure(2)}), tmp_path)
    assert job == Launch(2, "error: /x/samples.parquet: bad", shown=False)
    # rank 0 printed its own error on the terminal (and in its log): not again
    (tmp_path / "rank0.log").write_text("epoch 1 ...\nerror: /x/samples.parquet: bad\n")
    assert _report(SimpleNamespace(failures={1: _failure(2)}), tmp_path).shown
    # a rank killed without a word (and rank 0 stopped by torchrun): which rank, how, and what to do
    job = _report(SimpleNamespace(failures={0: _failure(-15), 1: _failure(-9)}), tmp_path / "none")
    assert job == Launch(1, "error: training rank 1 was killed by signal 9 (out of memory?); rerun without --nproc "
                            "to see the error of a single process")


def test_a_rank_whose_peer_failed_stays_quiet():
    lost = "[../third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:18648: Connection reset by peer"
    assert ddp.lost_peer(RuntimeError(lost))
    assert not ddp.lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x2)"))
    assert not ddp.lost_peer(ConfigError("data.batch_size: bad"))


def test_nproc_passes_the_same_arguments_to_every_rank(monkeypatch, tmp_path):
    import riotvit.train.launch as launch

    seen = {}

    def fake(nproc, args, **kw):
        seen.update(nproc=nproc, args=args)
        return launch.Launch(7, "error: rank 1 says no")

    monkeypatch.setattr(launch, "launch", fake)
    res = CliRunner().invoke(app, ["train", "tiles", "s.parquet", "--out", str(tmp_path / "m"), "--epochs", "3",
                                   "--batch-size", "32", "--nproc", "2", "--quiet"])
    assert res.exit_code == 7 and res.output.strip() == "error: rank 1 says no"
    assert seen == {"nproc": 2, "args": ["tiles", "s.parquet", "--out", str(tmp_path / "m"), "--epochs", "3",
                                         "--batch-size", "32", "--quiet"]}


def test_nproc_that_cannot_share_the_batch_is_one_line_before_any_rank_starts(tmp_path):
    res = CliRunner().invoke(app, ["train", "tiles", "s.parquet", "--out", str(tmp_path / "m"), "--batch-size", "30",
                                   "--nproc", "4"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--batch-size 30 does not split evenly over 4 processes" in lines[0]
    assert "Traceback" not in res.output and not list(tmp_path.iterdir())


def test_nproc_help_has_an_example():
    res = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "--nproc" in res.output and "--nproc 2" in res.output


# --- DDP training end to end -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("ddp"), seed=2)  # its validation fold has riots (11 of 33)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    cfg = tiny_config(epochs=EPOCHS, data={"batch_size": 32, "riot_balance_ratio": 0.25})
    path = tmp_path_factory.mktemp("cfg") / "train.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return cfg, path


@pytest.mark.slow
def test_torchrun_trains_like_one_process_and_writes_one_bundle(world, config, tmp_path):
    from riotvit.train.trainer import train

    cfg, cfg_path = config
    single = train(world.tiles, world.samples, tmp_path / "single" / "model", cfg)
    root = tmp_path / "ddp"
    root.mkdir()
    done = _torchrun("-m", "riotvit.train", str(world.tiles), str(world.samples), "--out", str(root / "model"),
                     "--config", str(cfg_path), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote" in done.stdout + done.stderr and done.stdout.count("riotvit metrics") == 1  # rank 0 reports
    # one bundle, complete, its history written once
    assert [p.name for p in root.iterdir()] == ["model"]
    assert len(list(root.rglob("history.csv"))) == len(list(root.rglob("bundle.json"))) == 1
    assert not list(root.rglob("checkpoint.*"))
    b = Bundle.open(root / "model")
    model = b.load_model()
    assert sum(p.numel() for p in model.parameters()) == b.meta["model"]["params_total"]
    hist = pd.read_csv(root / "model" / "history.csv")
    ref = single.path / "history.csv"
    one = pd.read_csv(ref)
    assert list(hist["epoch"]) == list(one["epoch"]) == list(range(1, EPOCHS + 1))
    # the same schedule: one optimiser step per global batch
    assert np.allclose(hist["lr"], one["lr"])
    tr_ddp, tr_one = b.meta["training"], json.loads((single.path / "bundle.json").read_text())["training"]
    assert abs(tr_ddp["best_val_aupr"] - tr_one["best_val_aupr"]) <= AUPR_TOLERANCE
    assert np.all(np.abs(hist["val_aupr"] - one["val_aupr"]) <= AUPR_TOLERANCE)
    assert np.allclose(hist["val_loss"], one["val_loss"], rtol=0.05)
    assert hist["val_aupr"].between(0, 1).all() and hist["val_aupr"].max() == pytest.approx(tr_ddp["best_val_aupr"])
    # every validation crop was scored (gathered from both ranks): the same metrics rows as one process
    m_ddp = json.loads((root / "model" / "metrics.json").read_text())
    m_one = json.loads((single.path / "metrics.json").read_text())
    split = next(iter(m_one["splits"]))
    r_ddp, r_one = (m["splits"][split]["models"]["riotvit"]["riot"] for m in (m_ddp, m_one))
    assert (r_ddp["n"], r_ddp["n_pos"]) == (r_one["n"], r_one["n_pos"]) == (34, 12)


@pytest.mark.slow
def test_nproc_reports_a_rank_error_once(world, config, tmp_path):
    from riotvit.tile.plan import TileConfig
    from riotvit.tile.tiler import tile

    other = tile([world.sample / "city.tif"], tmp_path / "other", TileConfig(crop_px=16)).path
    cmd = [sys.executable, "-c", "from riotvit.cli import app; app()", "train", str(other), str(world.samples),
           "--out", str(tmp_path / "m"), "--config", str(config[1]), "--nproc", "2"]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "rerun riotvit join on this tile set" in lines[0]
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


@pytest.mark.slow
def test_the_library_trains_on_ranks_quietly_and_reads_the_result_back(world, config, tmp_path, capfd):
    from riotvit.train.launch import train_distributed

    with pytest.raises(ConfigError, match="does not split evenly over 3 processes"):
        train_distributed(world.tiles, world.samples, tmp_path / "m", config[0], 3)
    res = train_distributed(world.tiles, world.samples, tmp_path / "m", config[0], 2)
    out, err = capfd.readouterr()
    assert "epoch" not in out + err and "riotvit metrics" not in out + err  # the ranks ran quietly
    meta = Bundle.open(tmp_path / "m").meta
    assert res.path == tmp_path / "m" and res.epochs_run == EPOCHS == meta["training"]["epochs_run"]
    assert res.best_epoch == meta["training"]["best_epoch"] and res.device == "cpu"
    assert res.metrics == json.loads((tmp_path / "m" / "metrics.json").read_text()) and "riotvit" in res.table_markdown
