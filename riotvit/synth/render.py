"""The synthetic city's 4-band image (blue, green, red, NIR) of a land-cover map.

Every random draw behind the image (the micro-structure of each class, the shading, the sensor
noise) is fixed once per city, so a pixel's value depends only on its land cover: two dates'
images differ exactly where the land cover changed, and change is visible, not noise. The image
is rendered in 512 px blocks, each with its own noise generator, so a later date re-renders only
the blocks where something changed.
"""

from __future__ import annotations

import numpy as np

from riotvit.synth.city import (
    BARE,
    CLASS_NAMES,
    FORMAL,
    INFORMAL,
    MARKET,
    ROAD,
    VEGETATION,
    WATER,
    smooth_noise,
)

# materials: surface reflectance x 10000 in (blue, green, red, nir)
MATERIALS = np.array(
    [
        [620, 540, 330, 160],      # 0 water
        [330, 640, 380, 3400],     # 1 grass / trees
        [880, 1150, 1550, 2150],   # 2 bare soil
        [720, 760, 800, 900],      # 3 asphalt
        [1750, 1850, 1950, 2150],  # 4 concrete
        [820, 930, 1750, 2000],    # 5 tile roof
        [2150, 2250, 2280, 2450],  # 6 new metal roof
        [900, 1000, 1450, 1800],   # 7 rusty metal roof
        [2700, 1750, 900, 1450],   # 8 blue tarp
        [700, 720, 2500, 1900],    # 9 red tarp
        [900, 1900, 2300, 2100],   # 10 yellow/orange tarp
        [1050, 1200, 1400, 1700],  # 11 dirt lane
        [2450, 2550, 2600, 2700],  # 12 industrial roof
        [450, 760, 520, 2600],     # 13 dense trees
    ],
    dtype=np.float32,
)
BLOCK = 512


class Renderer:
    """Renders land-cover maps of one city, with the same random draws at every date."""

    def __init__(self, rng: np.random.Generator, h: int, w: int):
        self.h, self.w = h, w

        def cells(k: int) -> np.ndarray:
            return rng.random(((h + k - 1) // k, (w + k - 1) // k), dtype=np.float32)

        self.r4, self.r10a, self.r10b, self.r2a, self.r2b = cells(4), cells(10), cells(10), cells(2), cells(2)
        self.shade = 1.0 + 0.06 * smooth_noise(rng, (h, w), 24)
        self.key = int(rng.integers(0, 2**62))

    def render(self, lc: np.ndarray, prev: np.ndarray | None = None, prev_lc: np.ndarray | None = None) -> np.ndarray:
        """(4, H, W) uint16 image of ``lc``; with ``prev`` (the image of ``prev_lc``) only changed blocks are redrawn."""
        img = np.empty((4, self.h, self.w), dtype=np.uint16) if prev is None else prev.copy()
        for r0 in range(0, self.h, BLOCK):
            for c0 in range(0, self.w, BLOCK):
                win = (slice(r0, r0 + BLOCK), slice(c0, c0 + BLOCK))
                if prev is not None and np.array_equal(lc[win], prev_lc[win]):
                    continue
                img[(slice(None), *win)] = self._block(lc[win], r0, c0)
        return img

    def _block(self, lc: np.ndarray, r0: int, c0: int) -> np.ndarray:
        bh, bw = lc.shape
        rng = np.random.default_rng([self.key, r0 // BLOCK, c0 // BLOCK])
        shade = self.shade[r0 : r0 + bh, c0 : c0 + bw] * (1.0 + 0.05 * rng.standard_normal((bh, bw), dtype=np.float32))
        mat = self._materials(lc, r0, c0)
        out = np.empty((4, bh, bw), dtype=np.uint16)
        for b in range(4):
            band = MATERIALS[:, b][mat] * shade
            band += 25.0 * rng.standard_normal((bh, bw), dtype=np.float32)
            np.clip(band, 1, 10000, out=band)
            out[b] = band
        return out

    def _materials(self, lc: np.ndarray, r0: int, c0: int) -> np.ndarray:
        """Per-pixel material with the micro-structure of each land-cover class (one pass per class)."""
        bh, bw = lc.shape
        mat = np.zeros((bh, bw), dtype=np.uint8)
        flat = lc.ravel()
        out = mat.ravel()
        for cls in range(len(CLASS_NAMES)):
            idx = np.flatnonzero(flat == cls)
            if idx.size == 0:
                continue
            py, px = np.divmod(idx, bw)
            py += r0
            px += c0
            out[idx] = self._class_material(cls, py, px)
        return mat

    def _class_material(self, cls: int, py: np.ndarray, px: np.ndarray) -> np.ndarray:
        n = py.size
        if cls == WATER:
            return np.zeros(n, np.uint8)
        if cls == BARE:
            return np.full(n, 2, np.uint8)
        if cls == VEGETATION:
            return np.where(self.r4[py // 4, px // 4] < 0.25, 13, 1)
        if cls == ROAD:
            return np.full(n, 3, np.uint8)
        if cls == FORMAL:  # 30 m lots on a 90 m street grid; buildings with 3 m setbacks
            street = ((px % 30) < 2) | ((py % 30) < 2)
            lot = self.r10a[py // 10, px // 10]
            inner = ((px % 10) >= 1) & ((py % 10) >= 1) & ((px % 10) <= 8) & ((py % 10) <= 8)
            roof = np.where(self.r10b[py // 10, px // 10] < 0.55, 5, 4)
            return np.where(street, 3, np.where(inner & (lot < 0.7), roof, np.where(lot < 0.85, 1, 2)))
        if cls == INFORMAL:  # dense 6 m roofs of new and rusty metal, 3 m dirt lanes
            c = self.r2a[py // 2, px // 2]
            lane = ((px % 9) == 0) | ((py % 11) == 0)
            return np.where(lane, 11, np.where(c < 0.55, 6, np.where(c < 0.92, 7, 11)))
        if cls == MARKET:  # stalls of coloured tarps, narrow aisles
            c = self.r2b[py // 2, px // 2]
            aisle = ((px % 6) == 0) | ((py % 7) == 0)
            return np.where(aisle, 4, np.where(c < 0.35, 8, np.where(c < 0.65, 9, np.where(c < 0.85, 10, 6))))
        # INDUSTRIAL: sheds in yards
        return np.where(((px % 17) >= 2) & ((py % 14) >= 2), 12, 4)
