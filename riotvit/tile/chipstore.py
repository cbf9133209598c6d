"""The chip store: crops as memory-mapped ``.npy`` arrays, written append-only.

``chips.npy`` holds an (N, C, H, W) array in the tile set's dtype and ``masks.npy`` an
(M, H, W) uint8 array (1 = valid) for the M crops that have any invalid pixel; fully valid
crops need no mask. Both are plain NumPy files: ``np.load(path, mmap_mode="r")`` gives fast
random reads with no extra dependency and no decompression. The header is reserved at a fixed
size while chips are appended, and rewritten with the final shape when the store is closed,
so an interrupted run can be truncated back to its last complete block and resumed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HEADER_BYTES = 128  # fixed, so the data offset never moves while appending
COPY_BYTES = 16 << 20  # chunk of a store-to-store copy


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A NumPy v1.0 header padded to exactly ``HEADER_BYTES``."""
    d = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (d, tuple(int(s) for s in shape))
    pad = HEADER_BYTES - 10 - len(text) - 1
    if pad < 0:
        raise ValueError(f"shape {shape} too long for a {HEADER_BYTES}-byte header")
    body = (text + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


class AppendArray:
    """An ``.npy`` file grown by appending items along axis 0."""

    def __init__(self, path: Path, dtype: np.dtype, item_shape: tuple[int, ...], resume_items: int = 0):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.item_shape = tuple(item_shape)
        self.item_bytes = int(np.prod(self.item_shape)) * self.dtype.itemsize
        if resume_items and self.path.exists():
            self._f = open(self.path, "r+b")
            self._f.truncate(HEADER_BYTES + resume_items * self.item_bytes)
            self._f.seek(0, os.SEEK_END)
            self.n = resume_items
        else:
            self._f = open(self.path, "wb")
            self._f.write(npy_header(self.dtype, (0, *self.item_shape)))
            self.n = 0

    def append(self, items: np.ndarray) -> int:
        """Append (k, *item_shape) items; returns the index of the first one."""
        if items.shape[1:] != self.item_shape:
            raise ValueError(f"item shape {items.shape[1:]} != {self.item_shape}")
        first = self.n
        self._f.write(np.ascontiguousarray(items, dtype=self.dtype).data)
        self.n += items.shape[0]
        return first

    def append_store(self, path: Path, n_items: int) -> int:
        """Append the ``n_items`` items of another store of the same dtype and item shape, copying its
        bytes (no decoding, no array); returns the index of the first one."""
        first = self.n
        with open(path, "rb") as src:
            src.seek(HEADER_BYTES)
            left = n_items * self.item_bytes
            while left:
                buf = src.read(min(left, COPY_BYTES))
                if not buf:
                    raise ValueError(f"{path}: store ends {left} bytes early")
                self._f.write(buf)
                left -= len(buf)
        self.n += n_items
        return first

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Write the final header and close."""
        if self._f.closed:
            return
        self._f.flush()
        self._f.seek(0)
        self._f.write(npy_header(self.dtype, (self.n, *self.item_shape)))
        self._f.close()


def open_array(path: Path) -> np.ndarray:
    """Memory-map a chip or mask store read-only."""
    return np.load(path, mmap_mode="r")
