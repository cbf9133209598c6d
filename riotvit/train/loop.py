"""The training loop: epochs, schedule, mixed precision, early stopping, checkpoints, resume.

A checkpoint is written after every epoch: weights, optimiser state, the best weights so far and
the random states, so a rerun of the same command resumes where an interrupted one stopped and
ends with the same model. It is ONE file, ``checkpoint.safetensors``, whose safetensors metadata
holds the JSON state (epoch, history, scheduler, numpy RNG) next to the tensors; it is written
under a temporary name and renamed, so a kill at any moment leaves either the previous
checkpoint or the new one, never tensors of one epoch with the state of another.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from riotvit.io import dumps
from riotvit.progress import NullReporter, Reporter
from riotvit.train import ddp
from riotvit.train.bundle import load_tensors, save_tensors
from riotvit.train.config import TrainConfig
from riotvit.train.data import ChipBatcher, epoch_batches, fixed_batches

CHECKPOINT = "checkpoint.safetensors"
_STATE_KEY = "riotvit.checkpoint"  # safetensors metadata key of the JSON state

if TYPE_CHECKING:
    from timm.scheduler import CosineLRScheduler


@dataclass
class FitResult:
    best_epoch: int
    best_val_aupr: float
    history: pd.DataFrame
    stopped_early: bool
    seconds: float
    images_per_s: float
    resumed_from: int = 0


def autocast(device: torch.device, bf16: bool):
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> CosineLRScheduler:
    """Linear warmup, then cosine decay to ``min_lr_ratio`` of the peak: timm's ``CosineLRScheduler``.

    It is stepped per optimiser update (``step_update(updates done)``). With ``warm`` warmup
    steps and ``total`` steps in all, update ``s`` gets ``(s + 1) / (warm + 1)`` of the peak while
    ``s < warm``, then ``floor + (1 - floor) * (1 + cos(pi * (s - warm) / (total - warm))) / 2``,
    and ``floor`` from ``total`` on. (Before timm, warmup update ``s`` got ``(s + 1) / warm``, so
    the peak was held for two updates; every update from ``warm`` on is unchanged.)
    """
    from timm.scheduler import CosineLRScheduler

    total = max(1, cfg.optim.epochs * steps_per_epoch)
    warm = int(cfg.optim.warmup_epochs * steps_per_epoch)
    peak = cfg.optim.lr
    return CosineLRScheduler(opt, t_initial=max(1, total - warm), lr_min=cfg.optim.min_lr_ratio * peak,
                             warmup_t=warm, warmup_lr_init=peak / (warm + 1), warmup_prefix=True, t_in_epochs=False)


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


@torch.no_grad()
def predict_outputs(model, batcher: ChipBatcher, rows: np.ndarray, batch_size: int, bf16: bool) -> dict[str, np.ndarray]:
    """Raw head outputs (logits, log-rates) for sample rows, in row order."""
    model.eval()
    outs: dict[str, list] = {}
    for b in batcher.iterate(fixed_batches(rows, batch_size), train=False):
        with autocast(batcher.device, bf16):
            o = model(b.image, b.meta)
        for k, v in o.items():
            outs.setdefault(k, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict = {}
    for name, v in tensors.items():
        if name.startswith("opt."):
            _, pid, k = name.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in info["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def fit(
    model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    batcher: ChipBatcher,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    riot: np.ndarray,
    cfg: TrainConfig,
    work: Path,
    signature: str,
    bf16: bool = False,
    compiled: torch.nn.Module | None = None,
    reporter: Reporter | None = None,
) -> FitResult:
    """Train ``model`` in place; on return it holds the best weights (by validation AUPR).

    Under DDP (:mod:`riotvit.train.ddp`) every rank calls it: each trains on its share of every
    global batch, the validation rows are scored in shards and gathered, rank 0's metrics decide
    early stopping for all, and only rank 0 writes checkpoints (every rank resumes from them).
    """
    rep = reporter or NullReporter()
    device = batcher.device
    run = compiled or model  # predicts the validation rows
    net = ddp.wrap(model)  # trains: the model itself outside DDP
    if net is not model and compiled is not None:
        net = torch.compile(net)
    elif net is model:
        net = run
    main, world, rank = ddp.is_main(), ddp.world_size(), ddp.rank()
    params = [p for p in model.parameters() if p.requires_grad] + list(loss_fn.parameters())
    opt = make_optimizer(params, cfg)
    steps = max(1, int(np.ceil(train_rows.size / cfg.data.batch_size)))
    sched = make_scheduler(opt, cfg, steps)
    updates = 0
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    best, best_epoch, bad, start = -1.0, -1, 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ck = work / CHECKPOINT
    if main:
        (work / "checkpoint.json").unlink(missing_ok=True)  # the state file of riotvit before one-file checkpoints
    ddp.barrier()  # rank 0 has made (or cleared) the work folder before any rank reads its checkpoint
    info = _checkpoint_state(ck, rep)
    if info is not None and info.get("signature") == signature and "updates" in info:
        t = load_tensors(ck)
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        loss_fn.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("loss.")})
        best_state = {k[5:]: v for k, v in t.items() if k.startswith("best.")}
        _restore_optimizer(opt, t, info["optimizer"])
        sched.load_state_dict(info["scheduler"])
        updates = info["updates"]
        rng.bit_generator.state = info["numpy_rng"]
        gen.set_state(t["rng.torch"])
        torch.set_rng_state(t["rng.global"])
        history, best, best_epoch, bad = info["history"], info["best"], info["best_epoch"], info["bad"]
        start = info["epoch"] + 1
        rep.log(f"resuming after epoch {info['epoch'] + 1} (best validation AUPR {best:.3f})")
    y_val = riot[val_rows]
    t_run = time.perf_counter()
    seen = 0
    stopped = False
    for epoch in range(start, cfg.optim.epochs):
        if bad >= cfg.optim.patience:
            stopped = True
            break
        model.train()
        loss_fn.train()
        batches = epoch_batches(train_rows, riot, cfg.data.batch_size, rng, cfg.data.riot_balance_ratio, rank, world)
        rep.start(sum(b.size for b in batches) * world, f"epoch {epoch + 1}/{cfg.optim.epochs}", unit="img")
        t0 = time.perf_counter()
        tot, n = 0.0, 0
        for b in batcher.iterate(batches, train=cfg.data.augment, gen=gen, brightness=cfg.data.brightness):
            with autocast(device, bf16):
                out = net(b.image, b.meta)
            losses = loss_fn({k: v.float() for k, v in out.items()}, b.targets)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            ddp.average_gradients(list(loss_fn.parameters()))
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            opt.step()
            updates += 1
            sched.step_update(updates)
            tot += float(losses["loss"].detach()) * b.rows.size
            n += b.rows.size
            rep.advance(b.rows.size * world)  # rank 0 shows the global batch (within a row per rank)
        rep.stop()
        dt = time.perf_counter() - t0
        tot, n = ddp.sum_values([tot, n])  # the global batch's loss and rows
        n = int(n)
        seen += n
        vo = validation_outputs(run, batcher, val_rows, cfg.data.eval_batch_size, bf16)
        with torch.no_grad():
            vloss = float(loss_fn({k: torch.from_numpy(v).to(device) for k, v in vo.items()},
                                  {k: t[torch.from_numpy(val_rows)].to(device) for k, t in batcher.targets.items()})["loss"])
        aupr, auroc = _rank_metrics(y_val, vo.get("riot"))
        aupr, auroc, vloss = ddp.broadcast_values([aupr, auroc, vloss])  # rank 0 decides: no rank stops alone
        row = {"epoch": epoch + 1, "train_loss": tot / max(n, 1), "val_loss": vloss, "val_aupr": aupr,
               "val_auroc": auroc, "lr": opt.param_groups[0]["lr"], "images_per_s": n / dt, "seconds": dt}
        history.append(row)
        improved = np.isfinite(aupr) and aupr > best + 1e-6
        if improved or best_epoch < 0:
            best, best_epoch, bad = (aupr if np.isfinite(aupr) else best), epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        if main:
            _checkpoint(ck, model, loss_fn, best_state, opt, sched, updates, rng, gen, signature, epoch, history,
                        best, best_epoch, bad)
        rep.log(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f}  val loss {vloss:.4f}  val AUPR {aupr:.3f}  "
                f"AUROC {auroc:.3f}  {row['images_per_s']:.0f} img/s" + ("  *" if improved else ""))
    model.load_state_dict(best_state)
    wall = time.perf_counter() - t_run
    return FitResult(best_epoch, best, pd.DataFrame(history), stopped, wall, seen / wall if wall > 0 else 0.0, start)


def validation_outputs(model, batcher: ChipBatcher, rows: np.ndarray, batch_size: int,
                       bf16: bool) -> dict[str, np.ndarray]:
    """:func:`predict_outputs` over ``rows``; under DDP each rank scores a shard and all get every row."""
    if rows.size < ddp.world_size():
        return predict_outputs(model, batcher, rows, batch_size, bf16)
    return ddp.gather_rows(predict_outputs(model, batcher, ddp.shard_rows(rows), batch_size, bf16))


def _rank_metrics(y: np.ndarray, logits: np.ndarray | None) -> tuple[float, float]:
    if logits is None or len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    return float(average_precision_score(y, logits)), float(roc_auc_score(y, logits))


def _checkpoint_state(ck: Path, rep: Reporter) -> dict | None:
    """The JSON state stored in a checkpoint's metadata; None (start afresh) when there is no usable one."""
    if not ck.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(ck), framework="pt") as f:
            raw = (f.metadata() or {}).get(_STATE_KEY)
        if not raw:
            rep.log(f"warning: {ck} holds no training state (an older riotvit's checkpoint); training starts afresh")
            return None
        return json.loads(raw)
    except Exception:  # a checkpoint of an older riotvit or a damaged file: not resumable
        rep.log(f"warning: {ck} is not a usable checkpoint; training starts from the first epoch")
        return None


def _checkpoint(ck, model, loss_fn, best_state, opt, sched, updates, rng, gen, signature, epoch, history, best,
                best_epoch, bad) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"loss.{k}": v for k, v in loss_fn.state_dict().items()}
    tensors |= {f"best.{k}": v for k, v in best_state.items()}
    ot, oinfo = _flatten_optimizer(opt)
    tensors |= ot
    tensors["rng.torch"] = gen.get_state()
    tensors["rng.global"] = torch.get_rng_state()
    info = {"signature": signature, "epoch": epoch, "history": history, "best": best, "best_epoch": best_epoch,
            "bad": bad, "optimizer": oinfo, "scheduler": sched.state_dict(), "updates": updates,
            "numpy_rng": rng.bit_generator.state}
    save_tensors(ck, tensors, metadata={_STATE_KEY: dumps(info)})  # one file, renamed into place when complete

