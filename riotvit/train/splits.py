"""Row selection every evaluation shares: spatial-fold, temporal and ``split``-column splits.

This is the honest-evaluation contract of the trainer, the baselines and ``riotvit evaluate``:
for test fold ``f`` a model trains on other folds, never on the validation fold, and never on
crops whose ``near_folds`` bit ``f`` is set (the buffer ring around fold ``f``'s crops), so
spatial autocorrelation cannot leak test labels into training (:func:`train_rows`,
:func:`make_splits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riotvit.errors import SamplesError, suggest


def require_columns(samples: pd.DataFrame, cols: Sequence[str]) -> None:
    """Raise a :class:`SamplesError` naming the first missing column of ``cols``."""
    missing = [c for c in cols if c not in samples.columns]
    if missing:
        raise SamplesError(
            f"samples table: missing column(s) {', '.join(missing)}"
            f"{suggest(missing[0], samples.columns)}; rerun `riotvit join` to rebuild samples.parquet"
        )


@dataclass(frozen=True, eq=False)
class Split:
    """One train / validation / test partition of a samples table (boolean row masks).

    Attributes:
        name: ``"fold<k>"`` for spatial block ``k``, ``"temporal"``, or ``"<origin>/fold<k>"`` for a
            rolling-origin split (:mod:`riotvit.train.origins`).
        kind: ``"spatial"``, ``"temporal"`` or ``"rolling"``.
        test_fold: the held-out spatial fold (None for the temporal split).
        val_fold: the spatial fold used for validation (threshold, calibration, early stop).
        train, val, test: boolean masks over the rows of the table.
        origin: the test forecast origin (ISO date) of a rolling-origin split.
        train_origins: the origins whose rows may be trained on (label windows end by ``origin``).
        test_all: every block at the test origin ("same places, later time"); ``test`` holds only
            the held-out blocks ("new place, later time").
    """

    name: str
    kind: str
    test_fold: int | None
    val_fold: int | None
    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    origin: str | None = None
    train_origins: tuple[str, ...] = ()
    test_all: np.ndarray | None = field(default=None, repr=False)

    def sizes(self) -> dict[str, int]:
        """Row counts of the three parts."""
        return {
            "n_train": int(self.train.sum()),
            "n_val": int(self.val.sum()),
            "n_test": int(self.test.sum()),
        }


def fold_ids(samples: pd.DataFrame) -> list[int]:
    """Sorted spatial fold ids present in the table (``fold >= 0``)."""
    require_columns(samples, ["fold"])
    f = pd.to_numeric(samples["fold"], errors="coerce").dropna().astype(np.int64)
    return sorted(int(v) for v in f[f >= 0].unique())


def default_val_fold(folds: Sequence[int], test_fold: int) -> int:
    """The validation fold for ``test_fold``: the next fold id, cyclically."""
    folds = sorted(folds)
    return folds[(folds.index(test_fold) + 1) % len(folds)]


def _near_bit(samples: pd.DataFrame, fold: int) -> np.ndarray:
    near = pd.to_numeric(samples["near_folds"], errors="coerce").fillna(0).to_numpy(np.int64)
    return ((near >> int(fold)) & 1) == 1


def train_rows(
    samples: pd.DataFrame,
    test_fold: int | None,
    val_fold: int | None = None,
    exclude_near_val: bool = True,
) -> np.ndarray:
    """Boolean mask of the rows a model may train on when ``test_fold`` is held out.

    A row is kept when its fold is neither ``test_fold`` nor ``val_fold``, it is not in the
    buffer ring of ``test_fold`` (``(near_folds >> test_fold) & 1 == 0``) and, with
    ``exclude_near_val``, not in the ring of ``val_fold`` either (so validation scores, which
    pick the threshold and the calibration, are not inflated by leakage). Rows with a negative
    or missing fold are never kept.

    Raises:
        SamplesError: the table lacks ``fold`` or ``near_folds``.
    """
    require_columns(samples, ["fold", "near_folds"])
    fold = pd.to_numeric(samples["fold"], errors="coerce").fillna(-1).to_numpy(np.int64)
    keep = fold >= 0
    if test_fold is not None:
        keep &= (fold != test_fold) & ~_near_bit(samples, test_fold)
    if val_fold is not None:
        keep &= fold != val_fold
        if exclude_near_val:
            keep &= ~_near_bit(samples, val_fold)
    return keep


def spatial_split(
    samples: pd.DataFrame,
    test_fold: int,
    val_fold: int | None = None,
    exclude_near_val: bool = True,
) -> Split:
    """The split that holds out spatial block ``test_fold`` (see :func:`train_rows`).

    Raises:
        SamplesError: fewer than three folds, or an unknown / clashing fold id.
    """
    folds = fold_ids(samples)
    if len(folds) < 3:
        raise SamplesError(
            f"samples table: {len(folds)} spatial fold(s) ({folds}); honest evaluation needs at "
            "least 3 (train, validation, test); rerun `riotvit join` with more folds"
        )
    for what, f in (("test", test_fold), ("validation", val_fold)):
        if f is not None and f not in folds:
            raise SamplesError(f"samples table: {what} fold {f} does not exist; folds are {folds}")
    val_fold = default_val_fold(folds, test_fold) if val_fold is None else val_fold
    if val_fold == test_fold:
        raise SamplesError(f"validation fold {val_fold} equals the test fold; pick another one")
    fold = pd.to_numeric(samples["fold"], errors="coerce").fillna(-1).to_numpy(np.int64)
    return Split(
        name=f"fold{test_fold}",
        kind="spatial",
        test_fold=int(test_fold),
        val_fold=int(val_fold),
        train=train_rows(samples, test_fold, val_fold, exclude_near_val),
        val=fold == val_fold,
        test=fold == test_fold,
    )


def temporal_split(samples: pd.DataFrame, val_fold: int | None = None) -> Split | None:
    """Train on the ``past``, test on the ``future`` rows of ``time_split``.

    Validation is the past rows of spatial fold ``val_fold`` (default: the first fold); they and
    their buffer ring are left out of training. None when the table has no ``time_split`` column
    or no past / future rows.
    """
    if "time_split" not in samples.columns:
        return None
    ts = samples["time_split"].astype("string").str.lower()
    past, future = (
        ts.eq("past").fillna(False).to_numpy(bool),
        ts.eq("future").fillna(False).to_numpy(bool),
    )
    if not past.any() or not future.any():
        return None
    folds = fold_ids(samples)
    val_fold = folds[0] if val_fold is None else val_fold
    fold = pd.to_numeric(samples["fold"], errors="coerce").fillna(-1).to_numpy(np.int64)
    return Split(
        name="temporal",
        kind="temporal",
        test_fold=None,
        val_fold=int(val_fold),
        train=past & train_rows(samples, None, val_fold),
        val=past & (fold == val_fold),
        test=future,
    )


def column_split(samples: pd.DataFrame) -> Split:
    """The split written by ``riotvit join`` in the ``split`` column (train / val / test / buffer).

    Buffer rows are in no part. The split is named ``fold<k>`` when its test rows are all of
    fold ``k`` (so it lines up with :func:`spatial_split` results), else ``"split"``.

    Raises:
        SamplesError: no ``split`` column, or no train / test rows.
    """
    require_columns(samples, ["split", "fold"])
    sp = samples["split"].astype("string").str.lower()
    parts = {k: sp.eq(k).fillna(False).to_numpy(bool) for k in ("train", "val", "test")}
    if not parts["train"].any() or not parts["test"].any():
        raise SamplesError(
            f"samples table: the split column has {int(parts['train'].sum())} train and "
            f"{int(parts['test'].sum())} test rows; rerun `riotvit join` or use spatial folds"
        )
    fold = pd.to_numeric(samples["fold"], errors="coerce").fillna(-1).to_numpy(np.int64)
    test_folds, val_folds = np.unique(fold[parts["test"]]), np.unique(fold[parts["val"]])
    test_fold = int(test_folds[0]) if test_folds.size == 1 else None
    val_fold = int(val_folds[0]) if val_folds.size == 1 else None
    return Split(
        name=f"fold{test_fold}" if test_fold is not None else "split",
        kind="spatial",
        test_fold=test_fold,
        val_fold=val_fold,
        **parts,
    )


def make_splits(
    samples: pd.DataFrame,
    folds: Sequence[int] | None = None,
    val_folds: dict[int, int] | None = None,
    temporal: bool = True,
) -> list[Split]:
    """Every evaluation split: one per spatial test fold, then the temporal one if present.

    Args:
        samples: the samples table.
        folds: test folds to evaluate (default: all).
        val_folds: ``{test_fold: val_fold}`` overrides of :func:`default_val_fold`.
        temporal: add the temporal split when the table has ``time_split``.
    """
    folds = fold_ids(samples) if folds is None else [int(f) for f in folds]
    val_folds = val_folds or {}
    splits = [spatial_split(samples, f, val_folds.get(f)) for f in folds]
    if temporal:
        t = temporal_split(samples)
        if t is not None:
            splits.append(t)
    return splits
