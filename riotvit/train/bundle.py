"""The model bundle: ``model.safetensors`` + ``bundle.json`` (+ background, history, metrics, card).

Loading a bundle never unpickles: weights are safetensors, everything else is JSON. A bundle
records what is needed to use the model on new data (bands, normalisation, metadata scaler,
grid, targets, calibration, threshold) and where it came from (tile set, samples, config).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riotvit import __version__
from riotvit.errors import BundleError
from riotvit.io import atomic_file
from riotvit.train.meta import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, BundleMeta
from riotvit.train.models import ModelConfig, create_model

__all__ = ["BACKGROUND", "BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "META", "WEIGHTS", "Bundle", "BundleMeta",
           "load_tensors", "save_tensors"]
WEIGHTS = "model.safetensors"
META = "bundle.json"
BACKGROUND = "background.safetensors"


def save_tensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Write tensors with safetensors, atomically."""
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_tensors(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """Read a safetensors file; with ``sha256``, check its bytes first (one read).

    Raises:
        BundleError: unreadable, or its SHA-256 differs from ``sha256``.
    """
    from safetensors.torch import load

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BundleError(f"{path}: cannot be read ({e.strerror}); retrain or restore it") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise BundleError(f"{path}: its SHA-256 differs from the one recorded in {META} (the file is damaged or was "
                          "replaced); retrain or restore it")
    try:
        return load(data)
    except Exception as e:  # a truncated or foreign file
        raise BundleError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]}); retrain or restore it") from None


@dataclass
class Bundle:
    """An opened model bundle.

    Attributes:
        path: the bundle folder.
        meta: its ``bundle.json``.
    """

    path: Path
    meta: BundleMeta

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        """Open and check a bundle folder.

        Raises:
            BundleError: not a finished bundle, of another format version, or without weights.
        """
        p = Path(path)
        if not (p / META).is_file():
            partial = p.with_name(p.name + ".partial")
            hint = f" ({partial} holds an unfinished run; rerun riotvit train to resume)" if partial.exists() else ""
            raise BundleError(f"{p}: no {META}, so this is not a finished model bundle{hint}; train one with riotvit train")
        try:
            meta = json.loads((p / META).read_text())
        except json.JSONDecodeError as e:
            raise BundleError(f"{p / META}: not valid JSON ({e}); retrain the model") from None
        if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{p / META}: not a riotvit model bundle; train one with riotvit train")
        v = meta.get("format_version", 0)
        v = v if isinstance(v, int) else -1
        if v != BUNDLE_FORMAT_VERSION:
            raise BundleError(
                f"{p / META}: bundle format v{v} (riotvit {meta.get('riotvit_version')}) is incompatible with this "
                f"riotvit {__version__} (reads v{BUNDLE_FORMAT_VERSION}); retrain with this version"
            )
        if not (p / WEIGHTS).is_file():
            raise BundleError(f"{p}: {WEIGHTS} is missing from the bundle; retrain or restore it")
        typed = BundleMeta.from_dict(meta, p / META)
        if typed.signature is not None and typed.signature != typed.compute_signature():
            raise BundleError(f"{p / META}: the fields that define the model (grid, bands, normalisation, config, ...) "
                              "were changed after training (signature mismatch); retrain or restore it")
        return cls(p, typed)

    def _sha(self, name: str) -> str | None:
        return (self.meta.checksums or {}).get(name)

    def load_model(self, device: str = "cpu", weights: str = WEIGHTS):
        """The model with its trained weights (``weights``: a file of the bundle), in eval mode."""

        cfg = ModelConfig.model_validate(self.meta.config["model"])
        model = create_model(cfg, self.meta.bands, n_meta=len(self.meta.features.names),
                             n_types=len(self.meta.targets.type_counts), pretrained=False)
        if Path(weights).is_absolute() or ".." in Path(weights).parts:
            raise BundleError(f"{self.path / META}: member weights {weights!r} lie outside the bundle; retrain")
        state = load_tensors(self.path / weights, self._sha(weights))
        want = model.state_dict()
        wrong = [k for k, v in state.items() if k in want and tuple(v.shape) != tuple(want[k].shape)]
        if wrong:
            k = wrong[0]
            raise BundleError(f"{self.path / weights}: weights do not fit the model described by {META} ({k}: weights "
                              f"{tuple(state[k].shape)}, model {tuple(want[k].shape)}); retrain or restore the bundle")
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise BundleError(f"{self.path / weights}: weights do not fit the model in bundle.json "
                              f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}); retrain")
        return model.to(device).eval()

    def members(self) -> list[dict[str, Any]]:
        """The ensemble members recorded in ``forecast`` (empty for a single-model bundle)."""
        return list((self.meta.forecast or {}).get("members", []))

    def background(self) -> dict[str, Any]:
        """The background samples of explanations (image, meta, rows).

        Raises:
            BundleError: the bundle was trained without them.
        """
        f = self.path / BACKGROUND
        if not f.is_file():
            raise BundleError(
                f"{self.path}: the bundle has no background samples ({BACKGROUND}) needed for explanations; "
                "retrain with eval.background_samples > 0 (riotvit train ... --config with eval: {background_samples: 64})"
            )
        return load_tensors(f, self._sha(BACKGROUND))
