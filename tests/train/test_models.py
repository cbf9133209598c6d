"""The model: backbone options, band adaptation by name, metadata fusion, heads, learning."""

from __future__ import annotations

import pytest
import torch

from riotvit.errors import ModelError
from riotvit.train.models import (
    HeadsConfig,
    ModelConfig,
    MultiTaskLoss,
    canonical_band,
    create_model,
    load_pretrained,
    match_bands,
    model_summary,
)

BANDS = ["blue", "green", "red", "nir"]
TINY = dict(
    backbone="vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=2,
    num_heads=2, drop_path_rate=0.0, meta_dropout=0.0,
)
ALL_TARGETS_SHAPES = {"riot": (6,), "event_count": (6,), "fatalities": (6,), "crowd_size": (6, 3), "type_counts": (6, 5)}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and spin-waiting threads stall on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{**TINY, **kw})


def batch(n: int = 6, c: int = 4, size: int = 32, m: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, size, size, generator=g), torch.randn(n, m, generator=g)


# -- shapes and heads ----------------------------------------------------------------------
@pytest.mark.parametrize("fusion", ["late", "film", "token", "none"])
def test_every_fusion_gives_every_head_with_its_shape(fusion):
    torch.manual_seed(0)
    model = create_model(tiny(fusion=fusion), BANDS, n_meta=7, n_types=5).eval()
    image, meta = batch()
    out = model(image, meta)
    feat_dim = 32 + (128 if fusion == "late" else 0)
    expected = {**ALL_TARGETS_SHAPES, "fatalities_log_dispersion": (6,), "features": (6, feat_dim)}
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert model.num_features == feat_dim
    assert all(torch.isfinite(v).all() for v in out.values())


def test_head_selection_families_and_classes():
    heads = HeadsConfig.model_validate({
        "event_count": {"family": "negbin"}, "fatalities": {"enabled": False},
        "crowd_size": {"num_classes": 6}, "type_counts": {"enabled": False},
    })
    model = create_model(tiny(heads=heads), BANDS, n_meta=7, n_types=0)
    out = model(*batch())
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "riot": (6,), "event_count": (6,), "event_count_log_dispersion": (6,),
        "crowd_size": (6, 5), "features": (6, 160),
    }
    # the dispersion is one learned scalar per head, broadcast over the batch
    assert torch.equal(out["event_count_log_dispersion"], torch.zeros(6))
    with pytest.raises(ModelError, match=r"heads.type_counts.enabled: false"):
        create_model(tiny(), BANDS, n_meta=7, n_types=0)
    with pytest.raises(ValueError, match="every head is disabled"):
        HeadsConfig.model_validate({h: {"enabled": False} for h in HeadsConfig.model_fields})


def test_fusion_needs_metadata():
    with pytest.raises(ModelError, match=r"fusion='late' needs metadata features but n_meta=0"):
        create_model(tiny(fusion="late"), BANDS, n_meta=0, n_types=5)
    model = create_model(tiny(fusion="none"), BANDS, n_meta=0, n_types=5)
    assert model(batch()[0], None)["riot"].shape == (6,)


# -- metadata: gradients, FiLM identity, missing values ----------------------------------
@pytest.mark.parametrize("fusion", ["late", "film", "token"])
def test_gradients_reach_the_metadata_branch(fusion):
    torch.manual_seed(0)
    model = create_model(tiny(fusion=fusion), BANDS, n_meta=7, n_types=5)
    image, meta = batch()
    meta[0, 2] = float("nan")

    def grads():
        model.zero_grad()
        out = model(image, meta)
        sum(v.float().sum() for k, v in out.items() if k != "features").backward()

    grads()
    if fusion == "late":
        assert model.meta_mlp.net[0].weight.grad.abs().sum() > 0
    elif fusion == "token":
        assert model.meta_tokenizer.value_weight.grad.abs().sum() > 0
        assert model.meta_tokenizer.missing_weight.grad[2].abs().sum() > 0  # only feature 2 was missing
        assert model.meta_tokenizer.missing_weight.grad[0].abs().sum() == 0
    else:
        # FiLM projections start at zero: at init only they get a gradient, the MLP behind them
        # gets one after the first step.
        assert all(p.weight.grad.abs().sum() > 0 for p in model.film.proj)
        assert model.meta_mlp.net[0].weight.grad.abs().sum() == 0
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        grads()
        assert model.meta_mlp.net[0].weight.grad.abs().sum() > 0
    assert model.meta_input.fill.grad[2] != 0 and model.meta_input.fill.grad[0] == 0


def test_film_is_identity_at_init():
    """At init, FiLM tokens and pooled features equal the plain timm backbone's, for any metadata."""
    torch.manual_seed(0)
    model = create_model(tiny(fusion="film", film_after_blocks=[0, 1]), BANDS, n_meta=7, n_types=5).eval()
    image, meta = batch()
    meta[1] = float("nan")
    tokens = model.forward_features(image, meta)
    plain = model.backbone.forward_features(image)
    assert tokens.shape == (6, 17, 32)
    torch.testing.assert_close(tokens, plain, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        model(image, meta)["features"], model.backbone.forward_head(plain, pre_logits=True), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("fusion", ["late", "film", "token"])
def test_missing_metadata_is_finite_and_differs_from_zero(fusion):
    torch.manual_seed(0)
    model = create_model(tiny(fusion=fusion), BANDS, n_meta=7, n_types=5).eval()
    if fusion == "film":  # move FiLM off its identity init so metadata matters
        for p in model.film.proj:
            torch.nn.init.normal_(p.weight, std=0.1)
    image, meta = batch()
    nan_meta, zero_meta = meta.clone(), meta.clone()
    nan_meta[:, :3], zero_meta[:, :3] = float("nan"), 0.0
    nan_meta[0, 4] = float("inf")
    out_nan, out_zero = model(image, nan_meta), model(image, zero_meta)
    assert all(torch.isfinite(v).all() for v in out_nan.values())
    # the learned fill value starts at 0, so only the missing indicator separates NaN from 0
    assert (out_nan["riot"] - out_zero["riot"]).abs().min() > 1e-6
    # meta=None means "everything missing"
    torch.testing.assert_close(model(image, None)["riot"], model(image, torch.full_like(meta, float("nan")))["riot"])


# -- backbone options ---------------------------------------------------------------------
def test_overlapping_patches_token_count():
    cfg = ModelConfig(backbone="vit_tiny_patch16_224", img_size=224, patch_size=16, patch_stride=8,
                      embed_dim=16, depth=1, num_heads=2, fusion="token", meta_tokens=3)
    model = create_model(cfg, ["red", "green"], n_meta=4, n_types=2)
    side = (224 - 16) // 8 + 1
    assert side == 27 and model.patch_grid == (27, 27)
    assert model.backbone.pos_embed.shape == (1, 27 * 27 + 1, 16)
    assert model.forward_features(torch.zeros(1, 2, 224, 224), torch.zeros(1, 4)).shape == (1, 730, 16)
    assert model_summary(model)["tokens"] == 27 * 27 + 1 + 3
    with pytest.raises(ModelError, match=r"leaves 4 px uncovered"):
        create_model(cfg.model_copy(update={"patch_stride": 12}), ["red"], 4, 2)


def test_token_and_avg_pooling():
    image, meta = batch()
    tok = create_model(tiny(global_pool="token", fusion="none"), BANDS, 0, 5).eval()
    x = tok.forward_features(image)
    assert x.shape == (6, 17, 32) and tok.backbone.num_prefix_tokens == 1
    torch.testing.assert_close(tok(image)["features"], x[:, 0])
    avg = create_model(tiny(global_pool="avg", fusion="none"), BANDS, 0, 5).eval()
    x = avg.forward_features(image)
    assert x.shape == (6, 16, 32) and avg.backbone.cls_token is None
    torch.testing.assert_close(avg(image)["features"], avg.backbone.fc_norm(x.mean(1)))


def test_freeze_blocks_freezes_exactly_the_first_n():
    model = create_model(tiny(depth=3, freeze_blocks=2), BANDS, n_meta=7, n_types=5)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith(("backbone.blocks.0.", "backbone.blocks.1.", "backbone.patch_embed.",
                                 "backbone.cls_token", "backbone.pos_embed"))}
    assert frozen == expected and len(expected) > 20
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("backbone.blocks.2."))
    s = model_summary(model)
    assert s["params_trainable"] == s["params_total"] - sum(
        p.numel() for n, p in model.named_parameters() if n in expected)
    with pytest.raises(ModelError, match=r"freeze_blocks=4 but the backbone has only 3 blocks"):
        create_model(tiny(depth=3, freeze_blocks=4), BANDS, 7, 5)


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ModelError, match=r"'vit_smal_patch16_224' is not a timm model \(did you mean: vit_small_patch16_224"):
        create_model(ModelConfig(backbone="vit_smal_patch16_224"), BANDS, 7, 5)


def test_non_vit_backbone_late_fusion_only():
    cfg = ModelConfig(backbone="resnet10t", fusion="late", meta_hidden=8)
    model = create_model(cfg, BANDS, n_meta=3, n_types=2)
    out = model(torch.randn(2, 4, 32, 32), torch.randn(2, 3))
    assert out["features"].shape == (2, 512 + 8) and model_summary(model)["tokens"] is None
    with pytest.raises(ModelError, match=r"fusion='film' needs a VisionTransformer"):
        create_model(cfg.model_copy(update={"fusion": "film"}), BANDS, 3, 2)
    with pytest.raises(ModelError, match=r"does not take patch_size, depth"):
        create_model(cfg.model_copy(update={"patch_size": 8, "depth": 2}), BANDS, 3, 2)


# -- bands and pretrained weights ------------------------------------------------------------
def test_band_aliases():
    assert [canonical_band(b) for b in ["R", "Green", "b", "Near-Infrared", "NIR08", "B04", "b8a", "SWIR 1"]] == [
        "red", "green", "blue", "nir", "nir08", "red", "nir08", "swir16"]
    assert canonical_band("B4") == "b4"  # red on Sentinel-2 and Landsat 8/9, NIR on Landsat 5/7: not aliased
    assert match_bands(["nir", "RED", "band 7", "Band_7"], ["red", "green", "blue", "band-7"]) == [None, 0, 3, 3]
    assert match_bands(["nir", "red"], ["nir08", "red"]) == [0, 1]  # narrow NIR stands in for NIR


def _save_rgb_vit(path, img_size=32):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    src = timm.create_model("vit_tiny_patch16_224", pretrained=False, in_chans=3, num_classes=10,
                            img_size=img_size, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, str(path))
    return sd


def test_pretrained_rgb_kernels_are_mapped_by_name(tmp_path):
    sd = _save_rgb_vit(tmp_path / "rgb.safetensors")
    model = create_model(tiny(pretrained_path=str(tmp_path / "rgb.safetensors")), ["Blue", "green", "R", "nir"], 7, 5)
    w = model.backbone.patch_embed.proj.weight.detach()
    src = sd["patch_embed.proj.weight"]
    scale = 3 / 4
    torch.testing.assert_close(w[:, 0], src[:, 2] * scale)  # blue <- B
    torch.testing.assert_close(w[:, 1], src[:, 1] * scale)  # green <- G
    torch.testing.assert_close(w[:, 2], src[:, 0] * scale)  # red <- R
    torch.testing.assert_close(w[:, 3], src.mean(1) * scale)  # nir <- mean of R, G, B
    torch.testing.assert_close(model.backbone.blocks[1].mlp.fc2.weight.detach(), sd["blocks.1.mlp.fc2.weight"])
    rep = model.pretrained_report
    assert rep.band_map == {"Blue": "blue", "green": "green", "R": "red", "nir": "mean"}
    assert rep.skipped == {"head.weight": "classifier head", "head.bias": "classifier head"}
    assert rep.missing == [] and list(rep.adapted) == ["patch_embed.proj.weight"]
    assert len(rep.loaded) == len(sd) - 3


def test_pretrained_pos_embed_resampled_and_torch_file(tmp_path):
    sd = _save_rgb_vit(tmp_path / "rgb.safetensors")
    torch.save(sd, tmp_path / "rgb.pth")
    model = create_model(tiny(img_size=48), ["red", "green", "blue"], 7, 5, pretrained=False)
    rep = load_pretrained(model, tmp_path / "rgb.pth", ["red", "green", "blue"])
    assert rep.adapted["pos_embed"] == "resampled (1, 17, 32) -> (1, 37, 32)"
    pe = model.backbone.pos_embed.detach()
    torch.testing.assert_close(pe[:, 0], sd["pos_embed"][:, 0])  # class-token position kept
    torch.testing.assert_close(model.backbone.patch_embed.proj.weight.detach(), sd["patch_embed.proj.weight"])


def test_pretrained_token_vit_into_avg_pool_model(tmp_path):
    sd = _save_rgb_vit(tmp_path / "rgb.safetensors")
    model = create_model(tiny(global_pool="avg"), ["red", "green", "blue"], 7, 5, pretrained=False)
    rep = load_pretrained(model, tmp_path / "rgb.safetensors")  # None -> red, green, blue
    torch.testing.assert_close(model.backbone.pos_embed.detach(), sd["pos_embed"][:, 1:])  # no class token
    torch.testing.assert_close(model.backbone.fc_norm.weight.detach(), sd["norm.weight"])
    assert rep.skipped["cls_token"] == "not in model" and rep.missing == []


def test_pretrained_errors(tmp_path):
    _save_rgb_vit(tmp_path / "rgb.safetensors")
    cfg = tiny(pretrained_path=str(tmp_path / "rgb.safetensors"))
    with pytest.raises(ModelError) as e:
        create_model(cfg, ["band_1", "band_2"], 7, 5)
    assert str(e.value) == (
        "pretrained bands red,green,blue cannot be mapped to tile-set bands band_1,band_2: "
        "name the bands with --bands or set pretrained_bands"
    )
    torch.save({"x": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # needs code to unpickle
    with pytest.raises(ModelError, match=r"pickled.pt: cannot be read as safetensors or a weights-only"):
        create_model(tiny(pretrained_path=str(tmp_path / "pickled.pt")), BANDS, 7, 5)
    from safetensors.torch import save_file

    save_file({"foo.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelError, match=r"none of its 1 tensors fits backbone 'VisionTransformer'"):
        create_model(tiny(pretrained_path=str(tmp_path / "other.safetensors")), BANDS, 7, 5)
    with pytest.raises(ModelError, match=r"missing.safetensors: file not found"):
        create_model(tiny(pretrained_path=str(tmp_path / "missing.safetensors")), BANDS, 7, 5)


# -- summary, autocast, compile-ability ----------------------------------------------------------
def test_model_summary_counts():
    model = create_model(tiny(fusion="token"), BANDS, n_meta=7, n_types=5)
    s = model_summary(model)
    assert s["params_total"] == sum(p.numel() for p in model.parameters())
    assert s["params_trainable"] == s["params_total"]
    assert (s["tokens"], s["patch_grid"], s["fusion"], s["num_features"]) == (1 + 16 + 7, [4, 4], "token", 32)


@pytest.mark.parametrize("fusion", ["late", "film", "token"])
def test_bf16_autocast_and_full_graph_trace(fusion):
    model = create_model(tiny(fusion=fusion), BANDS, n_meta=7, n_types=5).eval()
    image, meta = batch()
    meta[0, 0] = float("nan")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(image, meta)
        targets = {k: torch.ones(s) for k, s in ALL_TARGETS_SHAPES.items()} | {"crowd_size": torch.ones(6)}
        loss = MultiTaskLoss(model.config)(out, targets)
    assert out["riot"].dtype == torch.bfloat16 and torch.isfinite(loss["loss"]) and loss["loss"].dtype == torch.float32
    # no graph break: the forward has no data-dependent Python control flow
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(image, meta)["riot"], model(image, meta)["riot"])


# -- it learns ----------------------------------------------------------------------------------
def _fit(model, image, meta, y, steps, lr=3e-3):
    loss_fn = MultiTaskLoss(model.config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(image, meta), {"riot": y})["loss"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logit = model(image, meta)["riot"]
    return ((logit > 0).float() == y).float().mean().item()


RIOT_ONLY = {"event_count": {"enabled": False}, "fatalities": {"enabled": False},
             "crowd_size": {"enabled": False}, "type_counts": {"enabled": False}}


@pytest.mark.parametrize("fusion", ["late", "film", "token"])
def test_learns_a_metadata_only_signal(fusion):
    torch.manual_seed(0)
    image, meta = batch(n=64, m=4, seed=3)
    meta[::7, 2] = float("nan")
    y = (meta[:, 1] > 0).float()  # the image is pure noise; only metadata feature 1 tells
    model = create_model(tiny(fusion=fusion, heads=RIOT_ONLY), BANDS, n_meta=4, n_types=0)
    assert _fit(model, image, meta, y, steps=30) > 0.95


def test_learns_an_image_signal_without_metadata():
    torch.manual_seed(0)
    image, _ = batch(n=64, seed=4)
    y = (image[:, 0].mean((1, 2)) > 0).float()
    image[:, 0] += 2 * (y[:, None, None] - 0.5)
    model = create_model(tiny(fusion="none", heads=RIOT_ONLY), BANDS, n_meta=0, n_types=0)
    assert _fit(model, image, None, y, steps=20) > 0.95
