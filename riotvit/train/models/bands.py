"""Map a pretrained first layer's input channels onto a tile set's bands, by band identity.

Band identity comes from the one sensor table, :mod:`riotvit.sensors`: a band is named by its
STAC eo common name (``red``, ``nir``, ``swir16``) or its Sentinel-2/Landsat id (``B04``, ``B8A``).
A pretrained ImageNet ViT sees (red, green, blue); SSL4EO-S12 weights see the 13 Sentinel-2
bands B01..B12 + B8A; a tile set may have (blue, green, red, nir) or any other order and set. The
patch-embedding kernel is rebuilt channel by channel: a tile-set band gets the kernel of the
pretrained band it matches (the same common name, else the same broad
family, e.g. ``nir`` <- ``nir08``), any other band gets the mean of the pretrained kernels, and the
whole kernel is rescaled by ``n_pretrained / n_bands`` so the summed activation keeps its scale
(as timm's ``adapt_input_conv`` does).

This module imports torch only inside :func:`adapt_patch_kernel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from riotvit.errors import ConfigError, ModelError
from riotvit.sensors import (
    COMMON_NAME_FAMILY,
    COMMON_NAME_SPELLINGS,
    ResolvedBand,
    canonical_band,
    normalise_band,
    resolve_bands,
)

if TYPE_CHECKING:
    import torch

BAND_ALIASES = COMMON_NAME_SPELLINGS
"""Common name -> other accepted spellings (the table lives in :mod:`riotvit.sensors`)."""

RGB = ("red", "green", "blue")

__all__ = ["BAND_ALIASES", "RGB", "adapt_patch_kernel", "canonical_band", "match_bands", "normalise_band",
           "resolve_pretrained_bands"]


def _family(name: str) -> str:
    return COMMON_NAME_FAMILY.get(name, name)


def match_bands(bands: Sequence[str], source_bands: Sequence[str]) -> list[int | None]:
    """For each band in ``bands``, the index of the same band in ``source_bands`` (or None).

    Names are compared by common name (see :func:`riotvit.sensors.canonical_band`), then by broad
    family (``nir`` matches ``nir08``); names not in the sensor table match when equal after
    normalisation.

    Args:
        bands: target band names (the tile set's), in channel order.
        source_bands: band names of the pretrained channels, in channel order.
    """
    return _match([canonical_band(b) for b in bands], [canonical_band(b) for b in source_bands])


def _match(targets: list[str], sources: list[str]) -> list[int | None]:
    """Index of each target common name in ``sources``: the same name first, else the same family."""
    by_name: dict[str, int] = {}
    by_family: dict[str, int] = {}
    for i, s in enumerate(sources):
        by_name.setdefault(s, i)
        by_family.setdefault(_family(s), i)
    out = []
    for t in targets:
        m = by_name.get(t)
        out.append(m if m is not None else by_family.get(_family(t)))
    return out


def resolve_pretrained_bands(
    source_bands: Sequence[str], bands: Sequence[str], sensor: str | None = None, where: str = "pretrained_bands"
) -> list[ResolvedBand]:
    """Resolve the pretrained band list with the sensor table.

    Every name must be a common name or sensor band id, or equal one of the tile set's ``bands``.

    Raises:
        ModelError: an unknown name (listing the valid ones), or ids that need a sensor.
    """
    try:
        resolved = resolve_bands(list(source_bands), sensor, where=where)
    except ConfigError as e:
        raise ModelError(str(e)) from None
    known = {normalise_band(b) for b in bands} | {canonical_band(b) for b in bands}
    for r in resolved:
        if r.band is None and r.name not in COMMON_NAME_SPELLINGS and r.name not in known:
            raise ModelError(
                f"{where}: unknown band name '{r.given}'; use a Sentinel-2/Landsat band id (B01..B12, B8A) "
                f"or a common name ({', '.join(COMMON_NAME_SPELLINGS)})"
            )
    return resolved


def adapt_patch_kernel(
    weight: torch.Tensor, bands: Sequence[str], source_bands: Sequence[str], sensor: str | None = None,
    where: str = "pretrained_bands",
) -> tuple[torch.Tensor, dict[str, str]]:
    """Rebuild a first-layer kernel (D, S, kh, kw) for ``bands`` from pretrained ``source_bands``.

    Args:
        weight: pretrained kernel whose input channels are ``source_bands``.
        bands: the tile set's band names (C of them).
        source_bands: names or ids of the S pretrained channels.
        sensor: the sensor of ``source_bands`` ids when they are ambiguous (``sentinel2`` ...).
        where: where ``source_bands`` came from (a sidecar file, an option), named in errors.

    Returns:
        The (D, C, kh, kw) kernel (``kernel[:, c] = src[:, match] * S / C``, unmatched bands get
        the mean of the S source kernels times S / C) and a map ``band -> source band | "mean"``.

    Raises:
        ModelError: if the names do not fit the kernel, are unknown, or no band can be matched.
    """
    import torch

    if weight.ndim != 4 or weight.shape[1] != len(source_bands):
        raise ModelError(
            f"{where} {','.join(source_bands)} name {len(source_bands)} channels but the "
            f"pretrained first layer has {weight.shape[1] if weight.ndim == 4 else '?'} input "
            f"channels; list one band per pretrained channel in {where}"
        )
    src_res = resolve_pretrained_bands(source_bands, bands, sensor, where)
    tgt = [canonical_band(b) for b in bands]
    matches = _match(tgt, [r.name for r in src_res])
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
