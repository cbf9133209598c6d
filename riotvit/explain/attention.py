"""Attention rollout (Abnar & Zuidema 2020) for timm Vision Transformers.

timm's attention uses fused kernels that never materialise the attention weights, so the
weights are recomputed from each block's input with the block's own ``qkv`` projection.
Rollout multiplies ``0.5 A + 0.5 I`` (head-averaged, rows renormalised) through the blocks; the
row of the class token (or the mean row, with average pooling) over the patch tokens is the map.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def attention_rollout(model, images: torch.Tensor, meta: torch.Tensor | None) -> np.ndarray:
    """(B, gh, gw) rollout over the patch grid for the model's pooled output."""
    vit = model.backbone
    captured: list[torch.Tensor] = []
    hooks = [blk.attn.register_forward_pre_hook(lambda mod, inp: captured.append(inp[0])) for blk in vit.blocks]
    try:
        model(images, meta)
    finally:
        for h in hooks:
            h.remove()
    gh, gw = model.patch_grid
    n_patch = gh * gw
    prefix = getattr(vit, "num_prefix_tokens", 0)
    rollout = None
    for blk, x in zip(vit.blocks, captured):
        a = blk.attn
        bsz, n, c = x.shape
        qkv = a.qkv(x).reshape(bsz, n, 3, a.num_heads, c // a.num_heads).permute(2, 0, 3, 1, 4)
        q, k = qkv[0], qkv[1]
        q, k = a.q_norm(q), a.k_norm(k)
        att = ((q * a.scale) @ k.transpose(-2, -1)).softmax(-1).mean(1)  # (B, N, N)
        att = 0.5 * att + 0.5 * torch.eye(n, device=att.device)
        att = att / att.sum(-1, keepdim=True)
        rollout = att if rollout is None else att @ rollout
    if prefix > 0 and getattr(vit, "global_pool", "token") == "token":
        row = rollout[:, 0, prefix : prefix + n_patch]
    else:
        row = rollout[:, prefix : prefix + n_patch, prefix : prefix + n_patch].mean(1)
    row = row / row.sum(-1, keepdim=True).clamp_min(1e-12)
    return row.reshape(-1, gh, gw).cpu().numpy()
