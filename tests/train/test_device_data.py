"""Chips travel to the device in their own dtype and are converted, normalised and resized there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import riotvit.train.data as data
from riotvit.train.data import chips_to_tensor, normalise, to_device


@pytest.mark.parametrize("one_pass", [True, False])
def test_uint16_chips_become_the_same_floats_with_or_without_torch_uint16(monkeypatch, one_pass):
    if not one_pass:
        monkeypatch.setattr(data, "_UINT16", None)  # torch < 2.3: through int32
    chips = np.array([[[[0, 1], [32767, 32768]], [[40000, 65535], [12345, 2]]]], dtype=np.uint16)
    x = chips_to_tensor(chips, torch.device("cpu"))
    assert x.dtype == torch.float32 and x.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(x.numpy(), chips.astype(np.float32))  # above 32767 too: no sign wrap
    u8 = chips_to_tensor(np.array([[[[0, 255]]]], dtype=np.uint8), torch.device("cpu"))
    np.testing.assert_array_equal(u8.numpy(), [[[[0.0, 255.0]]]])


def test_normalise_is_band_standardised_with_invalid_pixels_zero_and_does_not_touch_its_input():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.uniform(0, 3000, (3, 2, 8, 8)).astype(np.float32))
    valid = torch.from_numpy(rng.uniform(size=(3, 8, 8)) > 0.3)
    mean = torch.tensor([1000.0, 2000.0]).view(1, -1, 1, 1)
    std = torch.tensor([250.0, 500.0]).view(1, -1, 1, 1)
    before = x.clone()
    y = normalise(x, valid, mean, std, 8)
    assert torch.equal(x, before)
    expected = torch.where(valid.unsqueeze(1), (x - mean) / std, torch.zeros(()))
    assert torch.equal(y, expected)  # bit for bit the arithmetic of before
    assert float(y[0, 1][~valid[0]].abs().max()) == 0.0
    small = normalise(x, valid, mean, std, 4)  # downsized by area
    assert small.shape == (3, 2, 4, 4)
    np.testing.assert_allclose(small[:, :, 0, 0].numpy(), y[:, :, :2, :2].mean((-1, -2)).numpy(), rtol=1e-5, atol=1e-5)


def test_to_device_on_the_cpu_is_a_plain_move():
    t = torch.arange(6, dtype=torch.int16)
    out = to_device(t, torch.device("cpu"))
    assert torch.equal(out, t) and out.device.type == "cpu"
