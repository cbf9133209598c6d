"""Choosing the device and precision for train, predict and explain: one rule everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from riotvit.errors import ConfigError

DeviceName = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]
CompileMode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class DeviceChoice:
    """Where and how a model runs."""

    device: str  # "cpu" or "cuda"
    bf16: bool
    compile: bool


def choose_device(device: DeviceName = "auto", precision: Precision = "auto", compile: CompileMode = "off",
                  option: str = "device") -> DeviceChoice:
    """Resolve ``auto``: CUDA when present, bf16 and torch.compile on CUDA.

    Raises:
        ConfigError: ``cuda`` was asked for and no CUDA GPU is available.
    """
    import torch

    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError(f"{option}: cuda was asked for but no CUDA GPU is available; use cpu or auto")
    dev = "cuda" if device in ("auto", "cuda") and cuda else "cpu"
    bf16 = precision == "bf16" or (precision == "auto" and dev == "cuda")
    comp = compile == "on" or (compile == "auto" and dev == "cuda")
    return DeviceChoice(dev, bf16, comp)
