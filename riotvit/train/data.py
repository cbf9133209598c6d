"""Batches from a tile set's chip store, normalised and augmented on the device.

Chips are read from the memory-mapped store in sorted order (the fastest memmap pattern),
moved to the device as their integer dtype (a quarter of float32's bytes for uint8, half for
uint16), and only there converted, augmented, normalised and resized. When the crops used fit
in device memory the store is cached there once (``cache="device"``), so later epochs read
nothing from disk; otherwise a background thread prefetches the next batch into pinned memory
while the model works on the current one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from riotvit.join.features import BandNorm
from riotvit.tile.tileset import TileSet
from riotvit.train.augment import augment


def _to_torch_int(a: np.ndarray) -> torch.Tensor:
    """A torch view of an integer chip array (uint16 travels as int16, widened on the device)."""
    if a.dtype == np.uint16:
        return torch.from_numpy(a.view(np.int16))
    return torch.from_numpy(a)


_UINT16 = getattr(torch, "uint16", None)  # torch >= 2.3 converts uint16 to float in one pass


def _to_float(t: torch.Tensor, np_dtype: np.dtype) -> torch.Tensor:
    """Chips (uint16 travelling as int16) as float32: the same values, one pass where torch knows uint16."""
    if np_dtype == np.uint16:
        if _UINT16 is not None:
            return t.view(_UINT16).to(torch.float32)
        return (t.to(torch.int32) & 0xFFFF).to(torch.float32)
    return t.to(torch.float32)


def normalise(x: torch.Tensor, valid: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, input_px: int) -> torch.Tensor:
    """Band-normalise reflectance, set invalid pixels to 0 (the band mean), resize to the model input."""
    x = x.sub(mean).div_(std).masked_fill_(~valid.unsqueeze(1), 0.0)  # (x - mean) / std, one new tensor
    if x.shape[-1] != input_px:
        x = F.interpolate(x, size=(input_px, input_px), mode="area" if input_px < x.shape[-1] else "bilinear")
    return x


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``: on CUDA through page-locked memory with a non-blocking copy
    (the copy overlaps the GPU's work; later kernels on the stream wait for it)."""
    if torch.device(device).type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def chips_to_tensor(chips: np.ndarray, device: torch.device) -> torch.Tensor:
    """Raw chips (any integer or float dtype) as float32 on the device, moved in their own dtype
    (uint16 is half of float32's bytes) and converted there."""
    return _to_float(to_device(_to_torch_int(np.ascontiguousarray(chips)), device), chips.dtype)


def previous_chip_index(tiles) -> np.ndarray:
    """For every chip, the chip of the same grid cell at the previous image date (itself at the first date).

    Cells are matched by ``(col, row)`` of the tile set's grid; dates are ordered as written
    (ISO strings or dates). This is what ``model.temporal`` shows the model next to each crop.
    """
    t = tiles[["col", "row", "date", "chip_index"]].sort_values(["col", "row", "date"], kind="stable")
    ci = t["chip_index"].to_numpy(np.int64)
    prev = np.roll(ci, 1)
    same = (t["col"].to_numpy() == np.roll(t["col"].to_numpy(), 1)) & (t["row"].to_numpy() == np.roll(t["row"].to_numpy(), 1))
    same[0] = False
    prev = np.where(same, prev, ci)
    out = np.arange(int(tiles["chip_index"].max()) + 1, dtype=np.int64)
    out[ci] = prev
    return out


@dataclass
class Batch:
    image: torch.Tensor  # (B, C, H, W) normalised float32
    meta: torch.Tensor  # (B, F) float32 with NaN for missing
    targets: dict[str, torch.Tensor]
    rows: np.ndarray  # sample rows in this batch


class ChipBatcher:
    """Turns sample rows into device batches.

    Args:
        tileset: the opened tile set.
        chip_index: chip store index of every sample row.
        meta: (N, F) scaled metadata (NaN = missing), or None.
        targets: per-head arrays over the sample rows.
        norm: band normalisation.
        device: torch device.
        input_px: model input size; chips are resized on the device when it differs.
        cache: "device" (load the used chips onto the device once), "none" (stream from disk),
            or "auto" (device when they fit in ``cache_limit_bytes``).
        temporal: also give the same cell at the previous image date, as bands ``C..2C-1``
            (:func:`previous_chip_index`), augmented with the same flip/rotation.
    """

    def __init__(
        self, tileset: TileSet, chip_index: np.ndarray, meta: np.ndarray | None, targets: dict[str, np.ndarray],
        norm: BandNorm, device: torch.device, input_px: int | None = None, cache: str = "auto",
        cache_limit_bytes: int = 4 << 30, temporal: bool = False,
    ):
        self.ts = tileset
        self.chip_index = np.asarray(chip_index, dtype=np.int64)
        self.indexes = [self.chip_index]  # one chip index per date shown, current first
        if temporal:
            self.indexes.append(previous_chip_index(tileset.tiles)[self.chip_index])
        self.meta = torch.from_numpy(meta) if meta is not None else None
        self.targets = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in targets.items()}
        self.device = device
        self.np_dtype = np.dtype(tileset.info.dtype)
        c, h, w = tileset.info.chip_shape
        self.px = h
        self.input_px = input_px or h
        self.mean = torch.tensor(norm.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(norm.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        mi = tileset.tiles["mask_index"].to_numpy()
        self.mask_index = mi
        uniq = np.unique(np.concatenate(self.indexes))
        nbytes = uniq.size * c * h * w * self.np_dtype.itemsize
        if cache == "auto":
            cache = "device" if nbytes <= cache_limit_bytes else "none"
        self.cache = cache
        self._slot = None
        if cache == "device":
            self._load_cache(uniq)
        self._pool = ThreadPoolExecutor(1) if cache != "device" else None
        self._lock = threading.Lock()

    def _load_cache(self, uniq: np.ndarray) -> None:
        chips, masks = self.ts.read(uniq)
        self._slot = np.full(int(uniq.max()) + 1, -1, dtype=np.int64)
        self._slot[uniq] = np.arange(uniq.size)
        self._chips = _to_torch_int(chips).to(self.device)
        self._masks = torch.from_numpy(masks).to(self.device)
        self._slot_t = torch.from_numpy(self._slot).to(self.device)

    def _read_host(self, rows: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [self._read_chips(index[rows]) for index in self.indexes]

    def _read_chips(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.argsort(idx, kind="stable")
        with self._lock:
            chips, masks = self.ts.read(idx[order])
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        c = _to_torch_int(np.ascontiguousarray(chips[inv]))
        m = torch.from_numpy(np.ascontiguousarray(masks[inv]))
        if self.device.type == "cuda":
            c, m = c.pin_memory(), m.pin_memory()
        return c, m

    def _assemble(self, rows: np.ndarray, host: list[tuple[torch.Tensor, torch.Tensor]] | None, train: bool,
                  gen: torch.Generator | None, brightness: float) -> Batch:
        if self.cache == "device":
            pairs = []
            for index in self.indexes:
                slots = self._slot_t[torch.from_numpy(index[rows]).to(self.device)]
                pairs.append((self._chips.index_select(0, slots), self._masks.index_select(0, slots)))
        else:
            pairs = [tuple(t.to(self.device, non_blocking=True) for t in h) for h in host]
        x = torch.cat([_to_float(raw, self.np_dtype) for raw, _ in pairs], dim=1)
        valid = torch.stack([v for _, v in pairs], dim=1)  # (B, dates, H, W)
        if train:
            x, valid = augment(x, valid, gen, brightness)
        c = x.shape[1] // len(pairs)
        x = torch.cat([normalise(x[:, i * c:(i + 1) * c], valid[:, i], self.mean, self.std, self.input_px)
                       for i in range(len(pairs))], dim=1)
        r = torch.from_numpy(rows)
        meta = self.meta[r].to(self.device, non_blocking=True) if self.meta is not None else None
        targets = {k: v[r].to(self.device, non_blocking=True) for k, v in self.targets.items()}
        return Batch(x, meta, targets, rows)

    def iterate(self, batches: list[np.ndarray], train: bool = False, gen: torch.Generator | None = None,
                brightness: float = 0.1) -> Iterator[Batch]:
        """Yield batches for lists of sample rows, prefetching the next one from disk."""
        if self.cache == "device":
            for rows in batches:
                yield self._assemble(rows, None, train, gen, brightness)
            return
        fut: Future | None = self._pool.submit(self._read_host, batches[0]) if batches else None
        for i, rows in enumerate(batches):
            host = fut.result()
            fut = self._pool.submit(self._read_host, batches[i + 1]) if i + 1 < len(batches) else None
            yield self._assemble(rows, host, train, gen, brightness)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def epoch_batches(
    rows: np.ndarray, labels: np.ndarray | None, batch_size: int, rng: np.random.Generator,
    balance_ratio: float | None = None, rank: int = 0, world: int = 1,
) -> list[np.ndarray]:
    """Shuffled batches over ``rows`` for one epoch.

    With ``balance_ratio`` (the share of riot crops per batch) positives and negatives are drawn
    from their own shuffled pools, each cycled as needed, so every batch holds
    ``round(ratio * batch_size)`` riot crops; the epoch still has ``ceil(len(rows) / batch_size)``
    batches.

    Under DDP (``world`` processes) ``batch_size`` is the global batch: every rank builds the same
    global batches from the same ``rng`` and keeps its share (:func:`shard_batch`), so the ranks'
    batches are disjoint and together are the global batch. A balanced batch then holds
    ``world * round(ratio * batch_size / world)`` riot crops, so each rank gets
    ``round(ratio * batch_size / world)``; a last batch of fewer than ``world`` rows is dropped
    (every rank must take the same number of steps). ``world = 1`` is the single-process sampler.
    """
    rows = np.asarray(rows)
    n_batches = max(1, int(np.ceil(rows.size / batch_size)))
    if balance_ratio is None or labels is None:
        perm = rng.permutation(rows)
        out = [perm[i * batch_size : (i + 1) * batch_size] for i in range(n_batches) if i * batch_size < perm.size]
        return shard_batches(out, labels, rank, world)
    pos, neg = rows[labels[rows] > 0], rows[labels[rows] <= 0]
    k = world * int(round(balance_ratio * batch_size / world))
    if pos.size == 0 or neg.size == 0:
        return epoch_batches(rows, None, batch_size, rng, rank=rank, world=world)

    def stream(pool: np.ndarray, n: int) -> np.ndarray:
        reps = int(np.ceil(n / pool.size))
        return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]

    p = stream(pos, k * n_batches)
    q = stream(neg, (batch_size - k) * n_batches)
    out = []
    for i in range(n_batches):
        b = np.concatenate([p[i * k : (i + 1) * k], q[i * (batch_size - k) : (i + 1) * (batch_size - k)]])
        out.append(rng.permutation(b))
    return shard_batches(out, labels, rank, world)


def shard_batches(batches: list[np.ndarray], labels: np.ndarray | None, rank: int, world: int) -> list[np.ndarray]:
    """Rank ``rank``'s share of each global batch (all of them when ``world`` is 1)."""
    if world == 1:
        return batches
    return [shard_batch(b, labels, rank, world) for b in batches if b.size >= world]


def shard_batch(batch: np.ndarray, labels: np.ndarray | None, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s share of one global batch: riot crops are dealt first, then the others.

    Dealing round-robin over ``[riot crops..., other crops...]`` gives every rank the same number
    of rows (within one) and the same number of riot crops (within one; exactly when it divides),
    so each rank sees the batch's riot share. The shares of the ``world`` ranks are disjoint and
    together are ``batch``.
    """
    if labels is not None:
        batch = batch[np.argsort(labels[batch] <= 0, kind="stable")]
    return batch[rank::world]


def fixed_batches(rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
    rows = np.asarray(rows)
    return [rows[i : i + batch_size] for i in range(0, rows.size, batch_size)]
