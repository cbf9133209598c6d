"""The timm backbone: build it offline, freeze its first blocks, load local pretrained weights.

Size: building the timm backbone offline, freezing, reading state dicts and mapping pretrained patch kernels to bands by sensor band name belong together (the band map needs the state dict reader and the model).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from riotvit.errors import ModelError, suggest
from riotvit.train.models.bands import adapt_patch_kernel
from riotvit.train.models.config import ModelConfig

_VIT_ONLY = ("patch_size", "patch_stride", "embed_dim", "depth", "num_heads")
_VIT_MODULES = ("vision_transformer", "deit")  # timm modules whose models are VisionTransformer
_HEAD_PREFIXES = ("head.", "head_dist.", "fc.", "classifier.", "last_linear.")
_WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "module")
log = logging.getLogger(__name__)


def is_vit(module: nn.Module) -> bool:
    """Whether ``module`` is a timm VisionTransformer (tokens, blocks, pos_embed)."""
    from timm.models.vision_transformer import VisionTransformer

    return isinstance(module, VisionTransformer)


def _strided_patch_embed(stride: int):
    """A timm ``PatchEmbed`` whose convolution moves ``stride`` px (< patch size: overlapping)."""
    from timm.layers import PatchEmbed

    class StridedPatchEmbed(PatchEmbed):
        """Patch embedding with stride != patch size; grid = (img - patch) // stride + 1."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            p, s = self.patch_size, (stride, stride)
            if s[0] > p[0]:
                raise ModelError(
                    f"patch_stride {stride} is larger than the patch size {p[0]}; pixels would "
                    "be skipped; use patch_stride <= patch_size"
                )
            for size, ps in zip(self.img_size, p, strict=True):
                if (size - ps) % stride:
                    raise ModelError(
                        f"img_size {size} with patch_size {ps} and patch_stride {stride} leaves "
                        f"{(size - ps) % stride} px uncovered; choose a patch_stride that divides "
                        f"img_size - patch_size ({size - ps})"
                    )
            old = self.proj
            self.proj = nn.Conv2d(
                old.in_channels, old.out_channels, kernel_size=p, stride=s,
                bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype,
            )
            self.stride = s
            self.grid_size = tuple((i - k) // t + 1 for i, k, t in zip(self.img_size, p, s, strict=True))
            self.num_patches = self.grid_size[0] * self.grid_size[1]

        def feat_ratio(self, as_scalar: bool = True):
            return self.stride[0] if as_scalar else self.stride

    return StridedPatchEmbed


def create_backbone(config: ModelConfig, in_chans: int) -> nn.Module:
    """Build the timm backbone without a classifier (``num_classes=0``) and without downloads.

    timm VisionTransformers (vit_*, deit*) get the ViT knobs (img_size, patch_size, embed_dim,
    depth, num_heads, global_pool, attn_drop_rate, patch_stride); ``None`` values are dropped so
    each model keeps its own defaults. Other timm models (resnet, swin, eva ...) get in_chans,
    drop_rate, drop_path_rate and img_size when they accept it; they suit ``late``/``none``
    fusion only.

    Raises:
        ModelError: unknown name (with close suggestions), or a ViT-only option on another model.
    """
    import timm

    name = config.backbone
    if not timm.is_model(name):
        raise ModelError(
            f"model.backbone '{name}' is not a timm model{suggest(name, timm.list_models())}; "
            "pick a name from timm.list_models()"
        )
    common = {
        "pretrained": False, "num_classes": 0, "in_chans": in_chans,
        "drop_rate": config.drop_rate, "drop_path_rate": config.drop_path_rate,
    }
    module = timm.models.model_entrypoint(timm.models.get_arch_name(name)).__module__
    if module.endswith(_VIT_MODULES):
        kwargs = {
            **common, "img_size": config.img_size, "patch_size": config.patch_size,
            "embed_dim": config.embed_dim, "depth": config.depth, "num_heads": config.num_heads,
            "global_pool": config.global_pool, "class_token": config.global_pool == "token",
            "attn_drop_rate": config.attn_drop_rate,
        }
        if config.patch_stride is not None and config.patch_stride != config.patch_size:
            kwargs["embed_layer"] = _strided_patch_embed(config.patch_stride)
        return timm.create_model(name, **{k: v for k, v in kwargs.items() if v is not None})
    set_opts = [k for k in _VIT_ONLY if getattr(config, k) is not None]
    if set_opts:
        raise ModelError(
            f"model.backbone '{name}' is not a timm VisionTransformer and does not take "
            f"{', '.join(set_opts)}; remove those options or use a vit_* backbone"
        )
    try:  # transformers such as swin/eva need img_size; most CNNs do not take it
        model = timm.create_model(name, img_size=config.img_size, **common)
    except TypeError as e:
        if "img_size" not in str(e):
            raise
        model = timm.create_model(name, **common)
    if not hasattr(model, "forward_features") or not hasattr(model, "forward_head"):
        raise ModelError(f"model.backbone '{name}' has no forward_features/forward_head; use another timm model")
    return model


def check_model_config(config: ModelConfig) -> None:
    """Cheap checks of a model config before any work or output: a known timm name, and a
    ``pretrained_path`` that exists and starts like a weights file (only its header is read).

    Raises:
        ModelError: naming ``model.backbone`` or ``model.pretrained_path`` and the fix.
    """
    import timm

    if not timm.is_model(config.backbone):
        raise ModelError(
            f"model.backbone '{config.backbone}' is not a timm model{suggest(config.backbone, timm.list_models())}; "
            "pick a name from timm.list_models()"
        )
    if config.pretrained_path is None:
        return
    p = Path(config.pretrained_path)
    if not p.is_file():
        raise ModelError(f"model.pretrained_path {p}: file not found; check the path or set it to null")
    if p.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                keys = set(f.keys())
                conv = next((k for k in ("patch_embed.proj.weight", "backbone.patch_embed.proj.weight") if k in keys), None)
                shape = f.get_slice(conv).get_shape() if conv else None
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(
                f"model.pretrained_path {p}: not a safetensors weights file ({first[:160]}); "
                "re-save the weights with safetensors.torch.save_file"
            ) from None
        if shape is not None and len(shape) == 4:  # the band list must fit the kernel: say so before any work
            bands, _, where = _source_bands(p, config.pretrained_bands, config.pretrained_sensor, shape[1])
            if len(bands) != shape[1]:
                raise ModelError(
                    f"{where} {','.join(bands)} name {len(bands)} channels but the pretrained first layer has "
                    f"{shape[1]} input channels; list one band per pretrained channel in {where}"
                )


def freeze_backbone(backbone: nn.Module, n_blocks: int) -> list[str]:
    """Freeze the patch/position embeddings and the first ``n_blocks`` blocks; return their names.

    Raises:
        ModelError: if the backbone has no ``blocks`` or fewer than ``n_blocks``.
    """
    if n_blocks <= 0:
        return []
    blocks = getattr(backbone, "blocks", None)
    if blocks is None:
        raise ModelError(
            f"model.freeze_blocks={n_blocks} needs a transformer with blocks, but "
            f"{type(backbone).__name__} has none; set freeze_blocks: 0"
        )
    if n_blocks > len(blocks):
        raise ModelError(
            f"model.freeze_blocks={n_blocks} but the backbone has only {len(blocks)} blocks; "
            f"use at most {len(blocks)}"
        )
    frozen = []
    prefixes = ("patch_embed.", "cls_token", "reg_token", "pos_embed") + tuple(
        f"blocks.{i}." for i in range(n_blocks)
    )
    for pname, p in backbone.named_parameters():
        if pname.startswith(prefixes):
            p.requires_grad_(False)
            frozen.append(pname)
    return frozen


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did, key by key (JSON-serialisable via :meth:`as_dict`)."""

    path: str
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    band_map: dict[str, str] = field(default_factory=dict)
    bands_from: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for bundle.json / logs."""
        return asdict(self)

    def band_summary(self) -> dict[str, Any]:
        """The weights file, where their band list came from, and tile-set band -> pretrained band
        (or ``mean``): what the bundle and the training report record."""
        return {"path": self.path, "bands_from": self.bands_from, "band_map": dict(self.band_map)}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``, no pickle code).

    Wrappers (``state_dict``, ``model``, ``state_dict_ema``) and ``module.``/``backbone.`` key
    prefixes are removed.

    Raises:
        ModelError: missing file, unreadable file, or a file that would need unpickling code.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model.pretrained_path {p}: file not found; check the path or set it to null")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(p), device="cpu")
        else:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, torch, safetensors (SafetensorError), OS: all mean "not weights"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(
            f"model.pretrained_path {p}: cannot be read as safetensors or a weights-only torch "
            f"state dict ({first[:160]}); re-save the weights with safetensors.torch.save_file"
        ) from None
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict):
        raise ModelError(f"model.pretrained_path {p}: holds a {type(obj).__name__}, not a state dict of tensors")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise ModelError(f"model.pretrained_path {p}: no tensors found; is it a timm state dict?")
    for prefix in ("module.", "backbone."):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def weights_sidecar(path: str | Path) -> Path | None:
    """The band sidecar of a weights file: ``<name>.json`` or ``<name>.<suffix>.json`` next to it."""
    p = Path(path)
    for c in (p.with_suffix(".json"), p.with_name(p.name + ".json")):
        if c.is_file():
            return c
    return None


def read_weights_sidecar(path: str | Path) -> tuple[list[str], str | None, str] | None:
    """The band list (and sensor) the weights at ``path`` were trained on, from their sidecar JSON.

    The sidecar is ``{"bands": ["B01", ..., "B12"], "sensor": "sentinel2"}`` (sensor optional),
    named ``<weights stem>.json`` or ``<weights file>.json``.

    Returns:
        ``(bands, sensor, "sidecar <file>")``, or None when there is no sidecar.

    Raises:
        ModelError: a sidecar that is not JSON or has no list of band names.
    """
    side = weights_sidecar(path)
    if side is None:
        return None
    try:
        obj = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{side}: not a readable JSON band sidecar ({str(e)[:120]}); write "
                         '{"bands": ["B02", "B03", ...], "sensor": "sentinel2"}') from None
    bands = obj.get("bands") if isinstance(obj, dict) else None
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise ModelError(f'{side}: needs "bands": a list of band names, one per pretrained input channel, e.g. '
                         '{"bands": ["B02", "B03", "B04", "B08"], "sensor": "sentinel2"}')
    sensor = obj.get("sensor")
    return list(bands), (str(sensor) if sensor else None), f"sidecar {side}"


def _source_bands(path, pretrained_bands, sensor, n_channels: int) -> tuple[list[str], str | None, str]:
    """The pretrained band list: stated > sidecar > red, green, blue for a 3-channel kernel."""
    if pretrained_bands is not None:
        return list(pretrained_bands), sensor, "model.pretrained_bands"
    side = read_weights_sidecar(path)
    if side is not None:
        return side[0], sensor or side[1], side[2]
    if n_channels != 3:
        raise ModelError(
            f"{path}: the pretrained first layer has {n_channels} input channels; set "
            f"model.pretrained_bands (--pretrained-bands) to their names or write a sidecar "
            f"{Path(path).with_suffix('.json')}"
        )
    return ["red", "green", "blue"], sensor, "default (red, green, blue)"


def _first_conv(backbone: nn.Module) -> str:
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    first = cfg.get("first_conv")
    if isinstance(first, (list, tuple)):
        first = first[0]
    return f"{first or 'patch_embed.proj'}.weight"


def _adapt_pos_embed(src: torch.Tensor, backbone: nn.Module, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """Resample a pretrained pos_embed to the backbone's grid and prefix-token count."""
    from timm.layers import resample_abs_pos_embed

    dst = backbone.pos_embed
    src_prefix = (1 if "cls_token" in sd else 0) + (sd["reg_token"].shape[1] if "reg_token" in sd else 0)
    if math.isqrt(src.shape[1] - src_prefix) ** 2 != src.shape[1] - src_prefix:
        src_prefix = 0
    n_grid = src.shape[1] - src_prefix
    if math.isqrt(n_grid) ** 2 != n_grid:
        raise ModelError(f"pretrained pos_embed has {src.shape[1]} tokens, not a square grid; cannot resample it")
    side = math.isqrt(n_grid)
    dst_prefix = 0 if getattr(backbone, "no_embed_class", False) else backbone.num_prefix_tokens
    grid = resample_abs_pos_embed(
        src[:, src_prefix:], new_size=list(backbone.patch_embed.grid_size),
        old_size=[side, side], num_prefix_tokens=0,
    )
    prefix = src[:, : min(src_prefix, dst_prefix)]
    if dst_prefix > src_prefix:
        prefix = torch.cat([prefix, dst.detach()[:, src_prefix:dst_prefix].to(src.dtype)], dim=1)
    return torch.cat([prefix, grid], dim=1)


def load_pretrained(
    model: nn.Module,
    path: str | Path,
    pretrained_bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    sensor: str | None = None,
) -> LoadReport:
    """Load local pretrained timm weights into ``model``'s backbone, adapting bands by name.

    Args:
        model: a :class:`~riotvit.train.models.model.RiotModel` (its ``backbone`` is loaded) or a bare
            timm model.
        path: ``.safetensors`` file, or a torch file readable with ``weights_only=True``.
        pretrained_bands: names or Sentinel-2/Landsat ids of the pretrained first layer's
            channels; None means the sidecar JSON next to the weights (see
            :func:`read_weights_sidecar`), else red, green, blue for a 3-channel kernel.
        band_names: the tile set's bands; defaults to ``model.band_names``.
        sensor: the sensor of ambiguous band ids (``sentinel2``, ``landsat8``, ``landsat7``).

    Returns:
        A :class:`LoadReport`: keys loaded as-is, adapted (first conv, pos_embed, patch size),
        skipped (head, shape mismatch, unknown) and missing from the file.

    Raises:
        ModelError: unreadable file, or no pretrained band can be mapped to the tile set's bands.
    """
    backbone = getattr(model, "backbone", model)
    sensor = sensor or getattr(getattr(model, "config", None), "pretrained_sensor", None)
    bands = list(band_names if band_names is not None else getattr(model, "band_names", []))
    sd = read_state_dict(path)
    target = backbone.state_dict()
    report = LoadReport(path=str(path))
    new_sd: dict[str, torch.Tensor] = {}
    conv_key = _first_conv(backbone)
    for key, value in sd.items():
        if key.startswith(_HEAD_PREFIXES):
            report.skipped[key] = "classifier head"
            continue
        if key not in target and key.startswith("norm.") and f"fc_{key}" in target:
            report.adapted[f"fc_{key}"] = f"from {key} (avg pooling normalises after the pool)"
            key = f"fc_{key}"
        if key not in target:
            report.skipped[key] = "not in model"
            continue
        want = target[key].shape
        if key == conv_key and value.ndim == 4:
            src_bands, src_sensor, report.bands_from = _source_bands(path, pretrained_bands, sensor, value.shape[1])
            if not bands:
                bands = [f"band_{i + 1}" for i in range(want[1])]
            value, report.band_map = adapt_patch_kernel(value, bands, src_bands, src_sensor, report.bands_from)
            log.info("pretrained bands (%s) -> tile-set bands: %s", report.bands_from,
                     ", ".join(f"{b} <- {s}" for b, s in report.band_map.items()))
            note = f"bands {','.join(src_bands)} -> {','.join(bands)} by name, x{len(src_bands) / len(bands):.4g}"
            if tuple(value.shape[-2:]) != tuple(want[-2:]):
                from timm.layers import resample_patch_embed

                value = resample_patch_embed(value, list(want[-2:]))
                note += f", kernel resampled to {want[-2]}x{want[-1]}"
            report.adapted[key] = note
        elif key == "pos_embed" and value.shape != want:
            value = _adapt_pos_embed(value, backbone, sd)
            report.adapted[key] = f"resampled {tuple(sd[key].shape)} -> {tuple(value.shape)}"
        if value.shape != want:
            report.skipped[key] = f"shape {tuple(value.shape)} != model {tuple(want)}"
            continue
        new_sd[key] = value.to(target[key].dtype)
        if key not in report.adapted:
            report.loaded.append(key)
    if not new_sd:
        raise ModelError(
            f"model.pretrained_path {path}: none of its {len(sd)} tensors fits backbone "
            f"'{type(backbone).__name__}'; use a checkpoint of the configured model.backbone"
        )
    result = backbone.load_state_dict(new_sd, strict=False)
    report.missing = list(result.missing_keys)
    return report
