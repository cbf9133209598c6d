"""The riot model: timm backbone -> metadata fusion -> multi-task heads.

The structure follows timm: :meth:`RiotModel.forward_features` returns the image tokens after
the transformer (metadata enters here for ``film`` and ``token`` fusion),
:meth:`RiotModel.forward_head` pools them, fuses the metadata (``late``) and applies the heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from riotvit.errors import ModelError
from riotvit.train.models.backbone import create_backbone, freeze_backbone, is_vit, load_pretrained
from riotvit.train.models.config import ModelConfig
from riotvit.train.models.fusion import FiLM, MetaMLP, MetaTokenizer, MissingAwareInput
from riotvit.train.models.heads import PredictionHeads


class RiotModel(nn.Module):
    """Backbone + fusion + heads. Build it with :func:`create_model`.

    Attributes:
        backbone: the timm model (no classifier).
        band_names: the tile set's bands, in channel order.
        n_meta: number of metadata features (0 for ``fusion='none'``).
        num_features: width of the fused ``features`` output.
        pretrained_report: what :func:`load_pretrained` did, or None.
    """

    def __init__(
        self,
        config: ModelConfig,
        backbone: nn.Module,
        band_names: Sequence[str],
        n_meta: int,
        n_types: int,
    ):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.band_names = list(band_names)
        self.fusion = config.fusion
        self.temporal = config.temporal
        self.n_meta = n_meta if config.fusion != "none" else 0
        self.n_types = n_types
        self.pretrained_report = None
        self.frozen: list[str] = []
        if self.fusion != "none" and n_meta <= 0:
            raise ModelError(
                f"model.fusion='{self.fusion}' needs metadata features but n_meta=0; "
                "set fusion: none or add census/ACLED features to the samples"
            )
        if self.fusion in ("film", "token") and not is_vit(backbone):
            raise ModelError(
                f"model.fusion='{self.fusion}' needs a VisionTransformer backbone (it works on "
                f"tokens), not '{config.backbone}'; use fusion: late or a vit_* backbone"
            )
        if self.temporal == "tokens" and not is_vit(backbone):
            raise ModelError(
                f"model.temporal='tokens' needs a VisionTransformer backbone (it adds patch tokens), "
                f"not '{config.backbone}'; use temporal: stack or a vit_* backbone"
            )
        dim = backbone.num_features
        # one learned embedding per date (current, previous), added to that date's patch tokens
        self.time_embed = nn.Parameter(torch.randn(2, dim) * 0.02) if self.temporal == "tokens" else None
        self.meta_input = MissingAwareInput(n_meta, config.meta_missing_rate) if self.n_meta else None
        self.meta_mlp = (
            MetaMLP(n_meta, config.meta_hidden, config.meta_dropout)
            if self.fusion in ("late", "film") else None
        )
        self.film = None
        self.film_blocks: tuple[int, ...] = ()
        if self.fusion == "film":
            depth = len(backbone.blocks)
            bad = [i for i in config.film_after_blocks if not -depth <= i < depth]
            if bad:
                raise ModelError(
                    f"model.film_after_blocks {bad} out of range for a {depth}-block backbone; "
                    f"use indices in [{-depth}, {depth - 1}]"
                )
            self.film_blocks = tuple(sorted({i % depth for i in config.film_after_blocks}))
            n_sites = int(config.film_after_embed) + len(self.film_blocks)
            if n_sites == 0:
                raise ModelError("model.fusion='film' with no FiLM site; set film_after_embed: true or film_after_blocks")
            self.film = FiLM(config.meta_hidden, dim, n_sites)
        self.meta_tokenizer = MetaTokenizer(n_meta, dim, config.meta_tokens) if self.fusion == "token" else None
        self.num_features = dim + (config.meta_hidden if self.fusion == "late" else 0)
        self.heads = PredictionHeads(self.num_features, config.heads, n_types)

    # -- metadata -------------------------------------------------------------------------
    def _meta(self, meta: torch.Tensor | None, batch: int, like: torch.Tensor):
        """(filled, missing) for ``meta``; None means every feature is missing."""
        if meta is None:
            meta = torch.full((batch, self.n_meta), float("nan"), device=like.device)
        return self.meta_input(meta.float())

    @property
    def in_chans(self) -> int:
        """Input channels: the bands, twice for ``temporal='stack'`` and ``'tokens'`` (current, previous)."""
        return len(self.band_names) * (1 if self.temporal == "none" else 2)

    # -- timm structure -------------------------------------------------------------------
    def _embed(self, image: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        """Patch + position embedding (and FiLM after the embedding): (tokens, site index used next).

        ``temporal='tokens'``: the image holds the current then the previous date's bands; each
        is embedded by the same patch embedding, gets its time embedding, and the previous date's
        patch tokens follow the current ones (prefix tokens once, from the current date).
        """
        b = self.backbone
        film_embed = self.film is not None and self.config.film_after_embed
        dates = image.chunk(2, dim=1) if self.temporal == "tokens" else (image,)
        out = []
        for i, img in enumerate(dates):
            x = b.patch_embed(img)
            if film_embed:
                x = self.film(x, cond, 0)
            x = b._pos_embed(x)
            if self.time_embed is not None:
                npf = b.num_prefix_tokens
                x = torch.cat([x[:, :npf], x[:, npf:] + self.time_embed[i].to(x.dtype)], dim=1)
                x = x if i == 0 else x[:, npf:]
            out.append(x)
        return torch.cat(out, dim=1) if len(out) > 1 else out[0], int(film_embed)

    def forward_features(self, image: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        """Image tokens after the backbone (B, prefix + patches, D); meta used by film/token.

        For ``late``/``none`` fusion of one date this is exactly ``backbone.forward_features(image)``.
        With ``temporal='tokens'`` the previous date's tokens join the sequence but only the current
        date's are returned, so pooling and the heads see the same shape as without.
        """
        if self.fusion in ("late", "none") and self.temporal != "tokens":
            return self.backbone.forward_features(image)
        b = self.backbone
        cond, filled, missing = None, None, None
        if self.film is not None or self.meta_tokenizer is not None:
            filled, missing = self._meta(meta, image.shape[0], image)
            cond = self.meta_mlp(filled, missing) if self.film is not None else None
        x, site = self._embed(image, cond)
        n_img = b.num_prefix_tokens + b.patch_embed.num_patches if self.temporal == "tokens" else x.shape[1]
        x = b.patch_drop(x)
        x = b.norm_pre(x)
        if self.meta_tokenizer is not None:
            x = torch.cat([x, self.meta_tokenizer(filled, missing).to(x.dtype)], dim=1)
        for i, blk in enumerate(b.blocks):
            x = blk(x)
            if self.film is not None and i in self.film_blocks:
                x = self.film(x, cond, site)
                site += 1
        x = b.norm(x)
        return x[:, :n_img]

    forward_image_tokens = forward_features

    def forward_head(
        self, x: torch.Tensor, meta: torch.Tensor | None = None, pre_logits: bool = False
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Pool tokens, fuse metadata (late), then the heads.

        Returns:
            The fused features (B, num_features) if ``pre_logits``, else the head dict.
        """
        feats = self.backbone.forward_head(x, pre_logits=True)
        if self.fusion == "late":
            filled, missing = self._meta(meta, feats.shape[0], feats)
            feats = torch.cat([feats, self.meta_mlp(filled, missing).to(feats.dtype)], dim=-1)
        if pre_logits:
            return feats
        out = self.heads(feats)
        out["features"] = feats
        return out

    def forward(self, image: torch.Tensor, meta: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(B, C, H, W) image and (B, M) metadata (NaN = missing) -> dict of head outputs.

        Keys: the enabled heads (see :mod:`riotvit.train.models.heads`) and ``features`` (B, num_features).
        """
        return self.forward_head(self.forward_features(image, meta), meta)

    @property
    def patch_grid(self) -> tuple[int, int] | None:
        """(rows, cols) of patch tokens for a ViT backbone, else None."""
        pe = getattr(self.backbone, "patch_embed", None)
        return tuple(pe.grid_size) if pe is not None else None

    @property
    def num_tokens(self) -> int | None:
        """Sequence length inside the transformer (prefix + patches + metadata tokens)."""
        grid = self.patch_grid
        if grid is None:
            return None
        n = grid[0] * grid[1] * (2 if self.temporal == "tokens" else 1) + self.backbone.num_prefix_tokens
        return n + (self.meta_tokenizer.n_tokens if self.meta_tokenizer is not None else 0)


def create_model(
    config: ModelConfig,
    band_names: Sequence[str],
    n_meta: int,
    n_types: int,
    pretrained: bool = True,
) -> RiotModel:
    """Build a :class:`RiotModel` for a tile set's bands and a samples table's features.

    Args:
        config: the model config.
        band_names: the tile set's band names, in channel order (C = len).
        n_meta: number of metadata features.
        n_types: number of event types (``type_counts`` head width).
        pretrained: load ``config.pretrained_path`` if set; pass False when the weights will
            come from a trained model bundle instead.

    Raises:
        ModelError: unknown backbone, incompatible options, unmappable pretrained bands.
    """
    if not band_names:
        raise ModelError("create_model: no band names; the tile set must name its bands")
    dates = 2 if config.temporal == "stack" else 1
    backbone = create_backbone(config, in_chans=len(band_names) * dates)
    model = RiotModel(config, backbone, band_names, n_meta, n_types)
    if pretrained and config.pretrained_path:
        # stacked dates: each date's bands get the pretrained kernels of their names
        model.pretrained_report = load_pretrained(model, config.pretrained_path, config.pretrained_bands,
                                                  band_names=list(band_names) * dates)
    model.frozen = freeze_backbone(backbone, config.freeze_blocks)
    return model


def model_summary(model: RiotModel) -> dict[str, Any]:
    """Parameter counts, token count, fusion and heads of a model (JSON-serialisable)."""
    params = list(model.parameters())
    return {
        "backbone": model.config.backbone,
        "bands": list(model.band_names),
        "fusion": model.fusion,
        "temporal": model.temporal,
        "params_total": int(sum(p.numel() for p in params)),
        "params_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "params_backbone": int(sum(p.numel() for p in model.backbone.parameters())),
        "patch_grid": list(model.patch_grid) if model.patch_grid else None,
        "tokens": model.num_tokens,
        "num_features": model.num_features,
        "n_meta": model.n_meta,
        "heads": list(model.heads.names),
        "frozen_tensors": len(model.frozen),
        # which pretrained kernel each band got (by band id / common name), or None without weights
        "pretrained": model.pretrained_report.band_summary() if model.pretrained_report else None,
    }
