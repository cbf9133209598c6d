"""Augmentation that respects geography, on the device: the 8 flips/rotations of the square and
per-band brightness jitter. Imagery has no canonical "up" at this scale, so every dihedral
transform gives a valid crop; colour changes stay small and per band (sensor, season, haze)."""

from __future__ import annotations

import torch


def dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Apply transform ``k[i]`` in 0..7 to sample ``i`` of (B, ..., H, W) (k >= 4 adds a flip)."""
    out = torch.empty_like(x)
    for t in range(8):
        idx = (k == t).nonzero(as_tuple=True)[0]
        if idx.numel() == 0:
            continue
        v = x.index_select(0, idx)
        if t >= 4:
            v = v.flip(-1)
        out.index_copy_(0, idx, torch.rot90(v, t % 4, dims=(-2, -1)))
    return out


def augment(
    x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None, brightness: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random dihedral transform of image and mask, and per-band brightness on the image.

    Args:
        x: (B, C, H, W) reflectance (before normalisation).
        valid: (B, H, W) valid-pixel mask.
        brightness: each band of each sample is scaled by ``1 + u``, ``u ~ U(-b, b)``.
    """
    b, c = x.shape[:2]
    k = torch.randint(0, 8, (b,), generator=generator, device="cpu").to(x.device)
    x = dihedral(x, k)
    valid = dihedral(valid, k)
    if brightness > 0:
        u = torch.rand((b, c, 1, 1), generator=generator, device="cpu").to(x.device)
        x = x * (1 + (u * 2 - 1) * brightness)
    return x, valid
