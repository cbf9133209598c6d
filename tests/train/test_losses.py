"""Losses against hand-computed values: BCE/focal/smoothing, counts, ordinal, masking, weights."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from riotvit.errors import ModelError, SamplesError
from riotvit.train.models import LossConfig, ModelConfig, MultiTaskLoss, compute_class_weights
from riotvit.train.models.heads import ordinal_class, ordinal_probabilities
from riotvit.train.models.losses import (
    binary_focal_loss,
    coral_loss,
    masked_mean,
    negbin_nll,
    poisson_nll,
)

NAN = float("nan")


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce(z: float, y: float) -> float:
    """-(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))."""
    return y * softplus(-z) + (1 - y) * softplus(z)


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


Z = [0.0, 2.0, -1.0, 0.5]
Y = [1.0, 0.0, 1.0, 0.0]


def test_bce_with_class_weights():
    w = torch.tensor([0.5, 2.0])
    got = binary_focal_loss(torch.tensor(Z), torch.tensor(Y), w)
    expected = [bce(z, y) * (2.0 if y else 0.5) for z, y in zip(Z, Y, strict=True)]
    torch.testing.assert_close(got, torch.tensor(expected))
    assert got[0].item() == pytest.approx(2 * math.log(2))


def test_focal_gamma_zero_is_bce_and_gamma_two_by_hand():
    z, y = torch.tensor(Z), torch.tensor(Y)
    torch.testing.assert_close(binary_focal_loss(z, y, gamma=0.0), torch.tensor([bce(a, b) for a, b in zip(Z, Y, strict=True)]))
    expected = []
    for a, b in zip(Z, Y, strict=True):
        pt = sigmoid(a) if b else 1 - sigmoid(a)
        expected.append(-((1 - pt) ** 2) * math.log(pt))
    torch.testing.assert_close(binary_focal_loss(z, y, gamma=2.0), torch.tensor(expected))


def test_label_smoothing():
    got = binary_focal_loss(torch.tensor([1.5, -0.3]), torch.tensor([1.0, 0.0]), label_smoothing=0.1)
    p1, p2 = sigmoid(1.5), sigmoid(-0.3)
    expected = [-(0.95 * math.log(p1) + 0.05 * math.log(1 - p1)), -(0.05 * math.log(p2) + 0.95 * math.log(1 - p2))]
    torch.testing.assert_close(got, torch.tensor(expected))


def test_poisson_nll_by_hand():
    got = poisson_nll(torch.tensor([math.log(2.0), 0.0]), torch.tensor([3.0, 0.0]))
    torch.testing.assert_close(got, torch.tensor([2 - 3 * math.log(2) + math.log(6), 1.0]))
    assert got[0].item() == pytest.approx(-stats.poisson.logpmf(3, 2.0), rel=1e-5)


def test_negbin_nll_matches_scipy_and_tends_to_poisson():
    mu, alpha = 2.0, 0.5  # r = 2, p = r / (r + mu) = 0.5
    y = torch.tensor([0.0, 3.0, 10.0])
    got = negbin_nll(torch.full((3,), math.log(mu)), y, torch.tensor(math.log(alpha)))
    expected = [-stats.nbinom.logpmf(k, 2.0, 0.5) for k in (0, 3, 10)]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32))
    eta = torch.tensor([math.log(0.3), math.log(2.0), math.log(7.0)], dtype=torch.float64)
    yy = torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64)
    near_poisson = negbin_nll(eta, yy, torch.tensor(math.log(1e-7), dtype=torch.float64))
    torch.testing.assert_close(near_poisson, poisson_nll(eta, yy).double(), rtol=1e-5, atol=1e-5)


def test_ordinal_loss_known_example():
    logits = torch.tensor([[2.0, 0.0, -1.0], [2.0, 0.0, -1.0]])
    got = coral_loss(logits, torch.tensor([2.0, 0.0]))
    # y=2 -> levels [1, 1, 0]; y=0 -> levels [0, 0, 0]
    expected = [softplus(-2) + softplus(0) + softplus(-1), softplus(2) + softplus(0) + softplus(-1)]
    torch.testing.assert_close(got, torch.tensor(expected))
    probs = ordinal_probabilities(logits[:1])
    s = [sigmoid(2.0), sigmoid(0.0), sigmoid(-1.0)]
    torch.testing.assert_close(probs[0], torch.tensor([1 - s[0], s[0] - s[1], s[1] - s[2], s[2]]))
    assert ordinal_class(logits).tolist() == [1, 1]


def test_class_weights_inverse_and_effective_by_hand():
    labels = [0.0] * 90 + [1.0] * 10 + [NAN] * 5
    torch.testing.assert_close(compute_class_weights(labels, "inverse"), torch.tensor([100 / 180, 100 / 20]))
    en_neg, en_pos = (1 - 0.9**3) / (1 - 0.9), 1.0  # effective numbers for n = (3, 1), beta = 0.9
    raw = [1 / en_neg, 1 / en_pos]
    expected = [2 * r / sum(raw) for r in raw]
    torch.testing.assert_close(compute_class_weights([0, 0, 0, 1], "effective", beta=0.9), torch.tensor(expected))
    assert compute_class_weights(labels, "none").tolist() == [1.0, 1.0]
    assert compute_class_weights(labels, [0.3, 3.0]).tolist() == pytest.approx([0.3, 3.0])
    with pytest.raises(SamplesError, match=r"90 negatives and 0 positives"):
        compute_class_weights([0.0] * 90, "inverse")


def test_masked_mean_ignores_nan_targets_and_their_gradients():
    z = torch.tensor(Z, requires_grad=True)
    y = torch.tensor([1.0, NAN, 1.0, NAN])
    loss = masked_mean(binary_focal_loss(z, y), ~torch.isnan(y))
    assert loss.item() == pytest.approx((bce(0.0, 1.0) + bce(-1.0, 1.0)) / 2, rel=1e-6)
    loss.backward()
    assert z.grad[1] == 0 and z.grad[3] == 0 and z.grad[0] != 0
    empty = masked_mean(torch.tensor([1.0, 2.0]), torch.tensor([False, False]))
    assert empty.item() == 0.0


def _outputs(b: int = 4, t: int = 3):
    g = torch.Generator().manual_seed(0)
    return {
        "riot": torch.randn(b, generator=g, requires_grad=True),
        "event_count": torch.randn(b, generator=g),
        "fatalities": torch.randn(b, generator=g),
        "fatalities_log_dispersion": torch.full((b,), -0.5),
        "crowd_size": torch.randn(b, 3, generator=g),
        "type_counts": torch.randn(b, t, generator=g),
    }


TARGETS = {
    "riot": torch.tensor([1.0, 0.0, NAN, 1.0]),
    "event_count": torch.tensor([2.0, 0.0, 1.0, NAN]),
    "fatalities": torch.tensor([0.0, 4.0, NAN, NAN]),
    "crowd_size": torch.tensor([0.0, 3.0, 1.0, NAN]),
    "type_counts": torch.tensor([[1.0, 0, 2], [0, 0, NAN], [NAN, NAN, NAN], [3, 1, 0]]),
}


def test_multitask_total_is_weighted_sum_of_masked_task_means():
    cfg = ModelConfig.model_validate({"heads": {"riot": {"weight": 2.0}, "crowd_size": {"weight": 0.5}}})
    out = _outputs()
    res = MultiTaskLoss(cfg, LossConfig(class_weights=[1.0, 3.0]))(out, TARGETS)
    assert set(res) == {"loss", "riot", "event_count", "fatalities", "crowd_size", "type_counts"}
    riot = [bce(out["riot"][i].item(), y) * (3.0 if y else 1.0) for i, y in ((0, 1.0), (1, 0.0), (3, 1.0))]
    assert res["riot"].item() == pytest.approx(sum(riot) / 3, rel=1e-5)
    ev = poisson_nll(out["event_count"][:3], TARGETS["event_count"][:3]).mean()
    assert res["event_count"].item() == pytest.approx(ev.item(), rel=1e-6)
    fat = negbin_nll(out["fatalities"][:2], TARGETS["fatalities"][:2], torch.tensor(-0.5)).mean()
    assert res["fatalities"].item() == pytest.approx(fat.item(), rel=1e-6)
    cs = coral_loss(out["crowd_size"][:3], TARGETS["crowd_size"][:3]).mean()
    assert res["crowd_size"].item() == pytest.approx(cs.item(), rel=1e-6)
    tc = poisson_nll(out["type_counts"], TARGETS["type_counts"])[~torch.isnan(TARGETS["type_counts"])].mean()
    assert res["type_counts"].item() == pytest.approx(tc.item(), rel=1e-6)
    total = 2.0 * res["riot"] + res["event_count"] + res["fatalities"] + 0.5 * res["crowd_size"] + res["type_counts"]
    assert res["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    assert torch.isfinite(res["loss"])


def test_uncertainty_weighting_parameters_learn():
    cfg = ModelConfig(uncertainty_weighting=True)
    loss_fn = MultiTaskLoss(cfg)
    res = loss_fn(_outputs(), TARGETS)
    # at s = 0: total = sum_t 0.5 * L_t, and dTotal/ds_t = 0.5 * (1 - L_t)
    tasks = loss_fn.tasks
    assert res["loss"].item() == pytest.approx(0.5 * sum(res[t].item() for t in tasks), rel=1e-6)
    res["loss"].backward()
    expected = torch.tensor([0.5 * (1 - res[t].item()) for t in tasks])
    torch.testing.assert_close(loss_fn.log_vars.grad, expected)
    assert (loss_fn.log_vars.grad != 0).all()


def test_loss_config_errors():
    with pytest.raises(ModelError, match=r"class_weights='inverse' needs the training riot labels"):
        MultiTaskLoss(ModelConfig(), LossConfig(class_weights="inverse"))
    weighted = MultiTaskLoss(ModelConfig(), LossConfig(class_weights="effective"), riot_labels=[0, 0, 0, 1])
    assert weighted.class_weights.tolist() == pytest.approx([0.5004, 1.4996], abs=1e-4)  # beta = 0.999
    targets = {k: v for k, v in TARGETS.items() if k != "fatalities"}
    with pytest.raises(ModelError, match=r"targets have no 'fatalities'.*heads.fatalities.enabled: false"):
        MultiTaskLoss(ModelConfig())(_outputs(), targets)
    with pytest.raises(ValueError, match=r"two non-negative numbers"):
        LossConfig(class_weights=[1.0])
