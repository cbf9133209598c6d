"""Shapley values of the riot logit over the players {each metadata feature, the image} (late fusion).

With ``late`` (or ``none``) fusion the backbone tokens do not depend on the metadata, so they are
computed once per crop and once per background crop; every evaluation of the game only runs
``forward_head``. The value of a coalition S for crop x and background crop b is the riot logit
with the players in S taken from x and the others from b (the image player swaps the whole
image representation, a metadata feature swaps its value, NaN = missing included); the game is
the mean over the background crops (interventional / baseline Shapley, averaged over b).

Two estimators, both exactly efficient (the values sum to ``f(x) - mean_b f(b)`` up to float
error, whatever the number of samples):

- ``exact``: all 2^P coalitions, for P <= ``max_exact`` players;
- ``permutation``: antithetic pairs of permutations (one permutation and its reverse), each pair
  against one background crop, every background crop used equally often. Each permutation
  telescopes from ``f(b)`` to ``f(x)``, so completeness holds sample by sample; the pairs are the
  independent units from which standard errors are estimated.

The permutations of a crop come from ``(seed, key)`` (the caller passes a key per crop, e.g. its
grid position), so a cell gets the same values whatever other crops share its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import factorial

import numpy as np
import torch

from riotvit.errors import RiotvitError
from riotvit.explain.additive import AdditiveHead


class ShapleyError(RiotvitError):
    """The Shapley drivers cannot be computed for this model or these inputs."""


@dataclass
class PlayerValues:
    """Per-cell values of the players (metadata features in order, then ``image``)."""

    values: np.ndarray  # (B, P) Shapley values of the riot log-odds
    output: np.ndarray  # (B,) f(x)
    expected: float  # mean over the background crops of f(b)
    units: np.ndarray | None  # (B, K, P) independent estimates whose mean is ``values``; None = exact
    estimator: str  # "exact", "permutation" or "expected gradients"
    samples: int  # permutations (or gradient samples) per cell; coalitions for exact

    @property
    def gap(self) -> np.ndarray:
        """Completeness gap per cell: f(x) - E f - sum of the values."""
        return self.output - self.expected - self.values.sum(1)


@dataclass
class _Head:
    reduce: Callable[[torch.Tensor], torch.Tensor]  # tokens -> what the image player swaps
    riot: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # (representation, meta) -> logit (N,)
    pooled: bool


def _generic_head(model) -> _Head:
    return _Head(lambda t: t, lambda r, m: model.forward_head(r, m)["riot"].float(), False)


def _pooled_head(model) -> _Head | None:
    """For a RiotModel with late fusion: pool once, then only the metadata MLP and the riot head run."""
    try:
        bb, mlp, inp, lin = model.backbone, model.meta_mlp, model.meta_input, model.heads.layers["riot"]
    except (AttributeError, KeyError, TypeError):
        return None
    if getattr(model, "fusion", None) != "late" or mlp is None or inp is None:
        return None

    def riot(p: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        filled, missing = inp(m.float())
        return lin(torch.cat([p, mlp(filled, missing).to(p.dtype)], dim=-1)).squeeze(-1).float()

    return _Head(lambda t: bb.forward_head(t, pre_logits=True), riot, True)


def supports_shapley(model) -> bool:
    """True when the image tokens do not depend on the metadata (fusion ``late`` or ``none``)."""
    return getattr(model, "fusion", "late") in ("late", "none")


class Game:
    """The riot logit of crops ``x`` against background crops ``b``, players swapped by masks.

    ``fast``: for late fusion with a linear riot head, split the logit into its image and metadata
    terms (:mod:`riotvit.explain.additive`) so that the estimators run only the metadata MLP;
    ``False`` evaluates every coalition with the whole head (the reference the tests compare with).
    """

    def __init__(self, model, images: torch.Tensor, meta: torch.Tensor | None, bg_images: torch.Tensor,
                 bg_meta: torch.Tensor | None, batch_size: int = 128, batch_rows: int = 32768,
                 bg_tokens: torch.Tensor | None = None, fast: bool = True):
        if not supports_shapley(model):
            raise ShapleyError(f"Shapley drivers need image tokens that do not depend on the metadata "
                               f"(fusion late or none), not fusion '{model.fusion}'")
        self.batch_rows = batch_rows
        self.has_meta = meta is not None and meta.shape[1] > 0
        if self.has_meta and (bg_meta is None or bg_meta.shape[1] != meta.shape[1]):
            raise ShapleyError("the background crops have no metadata or a different number of features than the cells")
        self.n_meta = meta.shape[1] if self.has_meta else 0
        self.n_players = self.n_meta + 1
        with torch.no_grad():
            tok = _tokens(model, images, batch_size)
            tok_b = _tokens(model, bg_images, batch_size) if bg_tokens is None else bg_tokens
            self.bg_tokens = tok_b  # reusable for the next crops (the background does not change)
            m = meta.float() if self.has_meta else None
            head = _pooled_head(model) if self.has_meta else None
            generic = _generic_head(model)
            if head is not None:
                want = generic.riot(tok[:8], m[:8])
                got = head.riot(head.reduce(tok[:8]), m[:8])
                if not torch.allclose(got, want, rtol=1e-5, atol=1e-5):
                    head = None
            self.head = head or generic
            self.rep_x, self.rep_b = self.head.reduce(tok), self.head.reduce(tok_b)
            self.meta_x = m
            self.meta_b = bg_meta.float() if self.has_meta else None
            self.fx = self.head.riot(self.rep_x, self.meta_x).double().cpu().numpy()
            self.fb = self.head.riot(self.rep_b, self.meta_b).double().cpu().numpy()
            self.additive = self._split(model, fast) if head is not None else None

    def _split(self, model, fast: bool) -> AdditiveHead | None:
        """The image / metadata split of the riot logit (:mod:`riotvit.explain.additive`), checked on a few crops."""
        add = AdditiveHead.of(model) if fast else None
        if add is None:
            return None
        self.cols_x, self.cols_b = add.columns(self.meta_x), add.columns(self.meta_b)
        self.z_x, self.z_b = add.preact(self.cols_x), add.preact(self.cols_b)
        self.hx = add.meta_term(self.z_x).double().cpu().numpy()
        self.hb = add.meta_term(self.z_b).double().cpu().numpy()
        got = add.image_term(self.rep_x[:8]).double().cpu().numpy() + self.hx[:8] + add.bias
        if not np.allclose(got, self.fx[:8], rtol=1e-5, atol=1e-5):
            return None
        return add

    def __call__(self, crop: np.ndarray, bg: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Riot logits (N,) for rows (crop index, background index, presence mask (N, P) bool)."""
        dev = self.rep_x.device
        out = []
        with torch.no_grad():
            for a in range(0, crop.size, self.batch_rows):
                c = torch.from_numpy(crop[a : a + self.batch_rows]).to(dev)
                b = torch.from_numpy(bg[a : a + self.batch_rows]).to(dev)
                mask = torch.from_numpy(present[a : a + self.batch_rows]).to(dev)
                keep_img = mask[:, -1].view(-1, *([1] * (self.rep_x.dim() - 1)))
                rep = torch.where(keep_img, self.rep_x.index_select(0, c), self.rep_b.index_select(0, b))
                meta = None
                if self.has_meta:
                    meta = torch.where(mask[:, :-1], self.meta_x.index_select(0, c), self.meta_b.index_select(0, b))
                out.append(self.head.riot(rep, meta).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)


def _tokens(model, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model.forward_features(images[k : k + batch_size], None).float()
                      for k in range(0, images.shape[0], batch_size)])


# -- exact ---------------------------------------------------------------------------------------
def _coalitions(p: int) -> np.ndarray:
    """(2^p, p) bool: every coalition, coalition s holds player i when bit i of s is set."""
    s = np.arange(1 << p)
    return ((s[:, None] >> np.arange(p)) & 1).astype(bool)


def shapley_weights(p: int) -> np.ndarray:
    """(2^p, p) W with phi = v @ W for a game v over the coalitions of :func:`_coalitions`."""
    masks = _coalitions(p)
    size = masks.sum(1)
    w = np.array([factorial(k) * factorial(p - k - 1) / factorial(p) for k in range(p)])
    inside = w[np.clip(size - 1, 0, p - 1)][:, None]  # S contains i: +w(|S|-1) v(S)
    outside = w[np.clip(size, 0, p - 1)][:, None]  # S lacks i: -w(|S|) v(S)
    return np.where(masks, inside, -outside)


def exact_shapley(game: Game) -> PlayerValues:
    """Shapley values over all coalitions (2^P evaluations per cell and background crop)."""
    if game.additive is not None:
        return _exact_additive(game)
    p, nb, n = game.n_players, game.fb.size, game.fx.size
    masks = _coalitions(p)
    weights = shapley_weights(p)
    per = masks.shape[0] * nb
    step = max(1, game.batch_rows // per)
    values = np.zeros((n, p))
    for a in range(0, n, step):
        crops = np.arange(a, min(n, a + step))
        c = np.repeat(crops, per)
        b = np.tile(np.repeat(np.arange(nb), masks.shape[0]), crops.size)
        pres = np.tile(masks, (crops.size * nb, 1))
        v = game(c, b, pres).reshape(crops.size, nb, masks.shape[0])
        v[:, :, 0] = game.fb[None, :]  # empty coalition = the background crop itself
        v[:, :, -1] = game.fx[crops, None]  # full coalition = the crop itself
        values[crops] = v.mean(1) @ weights
    return PlayerValues(values, game.fx, float(game.fb.mean()), None, "exact", masks.shape[0])


# -- permutations --------------------------------------------------------------------------------
def permutation_shapley(game: Game, permutations: int, seed: int, keys: np.ndarray | None = None) -> PlayerValues:
    """Antithetic permutation sampling: ``permutations`` per cell, rounded up to a multiple of
    2 x the background crops (each background crop gets the same number of pairs)."""
    p, nb, n = game.n_players, game.fb.size, game.fx.size
    pairs = nb * max(1, -(-permutations // (2 * nb)))
    keys = np.arange(n) if keys is None else np.asarray(keys, dtype=np.int64)
    if keys.shape != (n,):
        raise ShapleyError(f"permutation_shapley: {keys.shape[0]} keys for {n} cells")
    units = np.zeros((n, pairs, p))
    if p == 1:
        units[:] = (game.fx[:, None] - game.fb[np.arange(pairs) % nb][None, :])[:, :, None]
        return PlayerValues(units.mean(1), game.fx, float(game.fb.mean()), units, "permutation", 2 * pairs)
    if game.additive is not None:
        return _permutation_additive(game, pairs, seed, keys)
    per = pairs * 2 * (p - 1)
    step = max(1, game.batch_rows // per)
    t = np.arange(1, p)[:, None]
    bg = np.arange(pairs) % nb
    for a in range(0, n, step):
        crops = np.arange(a, min(n, a + step))
        perm = _permutations(seed, keys, crops, pairs, p)
        rank = np.argsort(perm, axis=-1)  # position of each player in its permutation
        fwd = rank[:, :, None, :] < t  # (C, K, P-1, P): the first t players
        rev = rank[:, :, None, :] >= p - t  # the last t players (the reversed permutation's coalitions)
        pres = np.stack([fwd, rev], axis=2).reshape(-1, p)
        c = np.repeat(crops, pairs * 2 * (p - 1))
        b = np.tile(np.repeat(bg, 2 * (p - 1)), crops.size)
        v = game(c, b, pres).reshape(crops.size, pairs, 2, p - 1)
        start = np.broadcast_to(game.fb[bg][None, :, None], (crops.size, pairs, 1))
        end = np.broadcast_to(game.fx[crops][:, None, None], (crops.size, pairs, 1))
        d_fwd = np.diff(np.concatenate([start, v[:, :, 0], end], axis=-1), axis=-1)  # position -> perm[pos]
        d_rev = np.diff(np.concatenate([start, v[:, :, 1], end], axis=-1), axis=-1)  # position -> perm[P-1-pos]
        u = np.zeros((crops.size, pairs, p))
        np.put_along_axis(u, perm, d_fwd, axis=-1)
        r = np.zeros_like(u)
        np.put_along_axis(r, perm[:, :, ::-1], d_rev, axis=-1)
        units[crops] = 0.5 * (u + r)
    return PlayerValues(units.mean(1), game.fx, float(game.fb.mean()), units, "permutation", 2 * pairs)


def _permutations(seed: int, keys: np.ndarray, crops: np.ndarray, pairs: int, p: int) -> np.ndarray:
    """(C, K, P): the permutations of each crop, drawn from ``(seed, key)``."""
    return np.stack([np.random.default_rng([seed, int(keys[i]) & ((1 << 63) - 1)]).permuted(
        np.tile(np.arange(p), (pairs, 1)), axis=1) for i in crops])


# -- additive (late fusion, linear riot head): see riotvit.explain.additive --------------------
def _image_units(game: Game, crops: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """(C, K) the image's marginal contribution f - h (image term) of the crop minus that of the background crop."""
    return (game.fx - game.hx)[crops][:, None] - (game.fb - game.hb)[bg][None, :]


def _exact_additive(game: Game) -> PlayerValues:
    """:func:`exact_shapley` for an additive game: the metadata features' 2^F coalitions run the MLP only."""
    f, nb, n = game.n_meta, game.fb.size, game.fx.size
    masks = torch.from_numpy(_coalitions(f)).float().to(game.z_x.device)
    weights = shapley_weights(f)
    step = max(1, game.batch_rows // (masks.shape[0] * nb))
    values = np.zeros((n, f + 1))
    with torch.no_grad():
        for a in range(0, n, step):
            crops = np.arange(a, min(n, a + step))
            c = torch.from_numpy(crops).to(game.z_x.device)
            delta = game.cols_x.index_select(0, c)[:, None] - game.cols_b[None]  # (C, B, F, H)
            z = game.z_b[None, :, None] + torch.einsum("sf,cbfh->cbsh", masks, delta)
            v = game.additive.meta_term(z).double().cpu().numpy()  # (C, B, 2^F)
            v[:, :, 0] = game.hb[None, :]  # the empty and full coalitions exactly
            v[:, :, -1] = game.hx[crops, None]
            values[crops, :f] = v.mean(1) @ weights
            values[crops, f] = _image_units(game, crops, np.arange(nb)).mean(1)
    return PlayerValues(values, game.fx, float(game.fb.mean()), None, "exact", 1 << (f + 1))


def _permutation_additive(game: Game, pairs: int, seed: int, keys: np.ndarray) -> PlayerValues:
    """:func:`permutation_shapley` for an additive game, with the same permutations (so the same values):
    a permutation's metadata coalitions are a cumulative sum of first-layer differences."""
    p, f, nb, n = game.n_players, game.n_meta, game.fb.size, game.fx.size
    units = np.zeros((n, pairs, p))
    step = max(1, game.batch_rows // (pairs * 2 * max(1, f - 1)))
    bg = np.arange(pairs) % nb
    dev = game.z_x.device
    bg_t = torch.from_numpy(bg).to(dev)
    with torch.no_grad():
        for a in range(0, n, step):
            crops = np.arange(a, min(n, a + step))
            perm = _permutations(seed, keys, crops, pairs, p)
            order = perm[perm != f].reshape(crops.size, pairs, f)  # the metadata features in permutation order
            c = torch.from_numpy(crops).to(dev)
            delta = game.cols_x.index_select(0, c)[:, None] - game.cols_b.index_select(0, bg_t)[None]  # (C, K, F, H)
            zb = game.z_b.index_select(0, bg_t)[None, :, None]
            ends = (np.broadcast_to(game.hb[bg][None, :, None], (crops.size, pairs, 1)),
                    np.broadcast_to(game.hx[crops][:, None, None], (crops.size, pairs, 1)))
            u = np.zeros((crops.size, pairs, f))
            for o in (order, order[:, :, ::-1].copy()):  # the permutation, then its reverse
                idx = torch.from_numpy(o).to(dev)[..., None]
                h = game.additive.meta_term(zb + torch.take_along_dim(delta, idx, dim=2).cumsum(2)[:, :, :-1])
                d = np.diff(np.concatenate([ends[0], h.double().cpu().numpy(), ends[1]], axis=-1), axis=-1)
                part = np.zeros_like(u)
                np.put_along_axis(part, o, d, axis=-1)  # position -> the feature added there
                u += part
            units[crops, :, :f] = 0.5 * u
            units[crops, :, f] = _image_units(game, crops, bg)
    return PlayerValues(units.mean(1), game.fx, float(game.fb.mean()), units, "permutation", 2 * pairs)


def shapley_values(model, images: torch.Tensor, meta: torch.Tensor | None, bg_images: torch.Tensor,
                   bg_meta: torch.Tensor | None, permutations: int = 128, seed: int = 0,
                   keys: np.ndarray | None = None, max_exact: int = 10, batch_size: int = 128,
                   game: Game | None = None, bg_tokens: torch.Tensor | None = None) -> PlayerValues:
    """Shapley values of the riot logit per cell: exact for <= ``max_exact`` players, else permutations."""
    game = game or Game(model, images, meta, bg_images, bg_meta, batch_size, bg_tokens=bg_tokens)
    if game.n_players <= max_exact:
        return exact_shapley(game)
    return permutation_shapley(game, permutations, seed, keys)
