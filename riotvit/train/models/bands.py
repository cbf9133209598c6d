"""Match band names and adapt a pretrained first layer to a tile set's bands, by name.

A pretrained ImageNet ViT sees (red, green, blue); a tile set may have (blue, green, red, nir) or
any other order and set. The patch-embedding kernel is rebuilt channel by channel: a tile-set
band that names a pretrained band gets that band's kernel, any other band gets the mean of the
pretrained kernels, and the whole kernel is rescaled by ``n_pretrained / n_bands`` so the summed
activation keeps its scale (as timm's ``adapt_input_conv`` does).

Band names are compared after canonicalisation: case, spaces, dashes and dots are ignored, and
the aliases in :data:`BAND_ALIASES` map to one canonical name. Sensor band numbers are aliased
only where the common sensors agree: ``B02``/``B03``/``B04`` are blue/green/red for Sentinel-2
and HLS (L30 and S30), ``B08`` is NIR for Sentinel-2/HLS S30 and ``B8A`` is narrow NIR. Bare
numbers (``b4``, ``band_4``, ``SR_B4``) are NOT aliased: B4 is red for Landsat 8/9 but NIR for
Landsat 5/7, so such bands must be named (``--bands red,green,blue,nir``). Names that are not in
the table still match each other when they are equal after normalisation.

This module imports torch only inside :func:`adapt_patch_kernel`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from riotvit.errors import ModelError

if TYPE_CHECKING:
    import torch

BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "coastal": ("coastal", "coastal_aerosol", "aerosol", "ultrablue", "b01"),
    "blue": ("blue", "b", "blu", "b02"),
    "green": ("green", "g", "grn", "b03"),
    "red": ("red", "r", "b04"),
    "yellow": ("yellow", "y"),
    "rededge": ("rededge", "red_edge", "re"),
    "nir": ("nir", "near_infrared", "near_ir", "nearinfrared", "infrared", "ir", "nir08", "nir_08", "b08", "b8a"),
    "swir1": ("swir1", "swir_1", "swir16", "swir_16"),
    "swir2": ("swir2", "swir_2", "swir22", "swir_22"),
    "pan": ("pan", "panchromatic"),
    "thermal": ("thermal", "tir", "lwir", "lwir11", "tirs", "tirs1"),
}
"""Canonical band name -> accepted spellings (compared after :func:`normalise_band`)."""

RGB = ("red", "green", "blue")


def normalise_band(name: str) -> str:
    """Lower-case ``name`` and turn spaces, dashes and dots into underscores."""
    return re.sub(r"[\s\-.]+", "_", str(name).strip().lower()).strip("_")


def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for canon, names in BAND_ALIASES.items():
        for n in names:
            index[normalise_band(n)] = canon
            index[normalise_band(n).replace("_", "")] = canon
    return index


_ALIAS_INDEX = _alias_index()


def canonical_band(name: str) -> str:
    """The canonical name of a band (``"Near-Infrared"`` -> ``"nir"``).

    Unknown names are returned normalised, so two equal unknown names still match.
    """
    norm = normalise_band(name)
    return _ALIAS_INDEX.get(norm) or _ALIAS_INDEX.get(norm.replace("_", "")) or norm


def match_bands(bands: Sequence[str], source_bands: Sequence[str]) -> list[int | None]:
    """For each band in ``bands``, the index of the same band in ``source_bands`` (or None).

    Args:
        bands: target band names (the tile set's), in channel order.
        source_bands: band names of the pretrained channels, in channel order.
    """
    where = {}
    for i, b in enumerate(source_bands):
        where.setdefault(canonical_band(b), i)
    return [where.get(canonical_band(b)) for b in bands]


def adapt_patch_kernel(
    weight: torch.Tensor, bands: Sequence[str], source_bands: Sequence[str]
) -> tuple[torch.Tensor, dict[str, str]]:
    """Rebuild a first-layer kernel (D, S, kh, kw) for ``bands`` from pretrained ``source_bands``.

    Args:
        weight: pretrained kernel whose input channels are ``source_bands``.
        bands: the tile set's band names (C of them).
        source_bands: names of the S pretrained channels.

    Returns:
        The (D, C, kh, kw) kernel (``kernel[:, c] = src[:, match] * S / C``, unmatched bands get
        the mean of the S source kernels times S / C) and a map ``band -> source band | "mean"``.

    Raises:
        ModelError: if the names do not fit the kernel or no band can be matched.
    """
    import torch

    if weight.ndim != 4 or weight.shape[1] != len(source_bands):
        raise ModelError(
            f"pretrained_bands {','.join(source_bands)} name {len(source_bands)} channels but the "
            f"pretrained first layer has {weight.shape[1] if weight.ndim == 4 else '?'} input "
            "channels; set pretrained_bands to one name per pretrained channel"
        )
    matches = match_bands(bands, source_bands)
    if all(m is None for m in matches):
        raise ModelError(
            f"pretrained bands {','.join(source_bands)} cannot be mapped to tile-set bands "
            f"{','.join(bands)}: name the bands with --bands or set pretrained_bands"
        )
    src = weight.detach().float()
    mean = src.mean(dim=1)
    out = torch.stack([src[:, m] if m is not None else mean for m in matches], dim=1)
    out = out * (len(source_bands) / len(bands))
    mapping = {b: (source_bands[m] if m is not None else "mean") for b, m in zip(bands, matches, strict=True)}
    return out.to(weight.dtype), mapping
