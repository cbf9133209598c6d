"""torch DDP for ``riotvit train``: joining the torchrun job, and the few collectives training needs.

Under ``torchrun --nproc_per_node=N`` (or ``riotvit train --nproc N``) every rank runs the same
training: each takes its share of every global batch (:func:`riotvit.train.data.shard_batch`), the
model is wrapped in ``DistributedDataParallel`` (gradients averaged over ranks), validation rows
are scored in shards and gathered, and rank 0's validation metrics decide early stopping for all
(:func:`broadcast_values`), so no rank waits for a step the others skip. Only rank 0 writes.

Gradients: DDP averages the ranks' mean losses. That is the global batch's mean loss when the
ranks hold as many rows each (every balanced batch, every full one) and no target is missing (the
losses are means over known targets); in a last, uneven batch the rows of the smaller share weigh
slightly more. Class weights multiply each row's loss, so they keep their meaning.

Every helper is a no-op outside a process group of two or more ranks, so a single-process run
does exactly what it did before DDP existed. Backends: gloo on CPU, nccl on CUDA (one GPU per
rank, ``cuda:LOCAL_RANK``). Tensor collectives only: nothing is pickled between ranks.

All ranks share the random streams of the seed (batch order, augmentation, dropout): the data of
each rank differ, so its draws apply to other crops; it also makes a checkpoint (rank 0's)
resume every rank exactly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist

from riotvit.errors import ConfigError


def launched_world() -> int:
    """The number of ranks torchrun started (``WORLD_SIZE``; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def active() -> bool:
    """Inside a process group of two or more ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, the one that logs and writes (also true outside DDP)."""
    return rank() == 0


def check_world(batch_size: int, world: int, option: str = "data.batch_size") -> None:
    """The global batch must split evenly over the ranks (checked before any rank joins).

    Raises:
        ConfigError: ``batch_size`` is not a multiple of ``world``.
    """
    if world > 1 and batch_size % world:
        raise ConfigError(f"{option} {batch_size} does not split evenly over {world} processes: it is the global "
                          f"batch, shared by the ranks; use a multiple of {world} (e.g. {batch_size - batch_size % world or world})")


@contextmanager
def process_group(device: str) -> Iterator[None]:
    """Join the torchrun job for the block and leave it after (no-op outside torchrun, or when joined).

    ``device`` is ``"cpu"`` (gloo) or ``"cuda"`` (nccl; this rank's GPU becomes the current one).
    On success the ranks leave together, so none exits while rank 0 still writes.
    """
    if launched_world() <= 1 or dist.is_initialized():
        yield
        return
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


_PEER_LOST = re.compile(r"gloo|nccl|connection (reset|closed|refused)|by peer|broken pipe|timed out", re.I)


def lost_peer(error: BaseException) -> bool:
    """``error`` is a collective failing because another rank failed (that rank reports its own error)."""
    return isinstance(error, dist.DistError) or (isinstance(error, RuntimeError) and bool(_PEER_LOST.search(str(error))))


def barrier() -> None:
    if active():
        dist.barrier()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_values(values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every rank (float64)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.broadcast(t, 0)
    return t.cpu().tolist()


def sum_values(values: list[float]) -> list[float]:
    """Element-wise sums of ``values`` over the ranks (float64)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def shard_rows(rows: np.ndarray) -> np.ndarray:
    """This rank's contiguous share of ``rows`` (:func:`gather_rows` puts the shares back in order)."""
    if not active():
        return rows
    return np.array_split(rows, world_size())[rank()]


def gather_rows(outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every rank's per-row arrays (keyed alike, rows first), concatenated in rank order on every rank."""
    if not active():
        return outs
    dev = _comm_device()
    n = next(iter(outs.values())).shape[0]
    counts = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([n], dtype=torch.int64, device=dev))
    sizes = [int(c.item()) for c in counts]
    top = max(sizes)
    gathered = {}
    for key in sorted(outs):
        a = torch.from_numpy(np.ascontiguousarray(outs[key])).to(dev)
        pad = torch.zeros((top, *a.shape[1:]), dtype=a.dtype, device=dev)
        pad[:n] = a
        parts = [torch.empty_like(pad) for _ in sizes]
        dist.all_gather(parts, pad)
        gathered[key] = np.concatenate([p[:s].cpu().numpy() for p, s in zip(parts, sizes)])
    return gathered


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` (it starts from rank 0's weights); itself outside DDP.

    ``static_graph``: the same parameters reach the loss at every step (a head without a target in
    a batch still does, with a zero gradient), and parameters that never do are allowed. Buffers
    are synced once, at the start, not at every forward, so ranks may predict validation shards of
    different sizes without meeting.
    """
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.cuda.current_device()] if dist.get_backend() == "nccl" else None
    return DistributedDataParallel(model, device_ids=ids, static_graph=True, forward_sync_buffers=False)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of parameters DDP does not hold (the loss's task weights) over the ranks."""
    if not active():
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world_size()
