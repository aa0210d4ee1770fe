"""Face crops for calibration and evaluation, split exactly as the model was trained.

The card's ``data.split`` records how training held groups out (seed, fraction and a
digest of the held-out group ids). The same split is recomputed here with the training
package's own function (:func:`fer_ros.training.splits.held_out`) and checked against
the digest, so calibration never sees a held-out group and evaluation never sees a
training group. Where no data set is named, :func:`fer_ros.core.paths.data_path` says
which (``FER_ROS_DATA``, else ``shared/data`` beside the checkout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_ros.core.model_card import ModelCard
from fer_ros.core.paths import data_path
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.training.splits import held_out


@dataclass(frozen=True)
class Split:
    """Preprocessed crops (float32 (n, 1, H, W)) and labels of one side of the split."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray


def card_split(
    card: ModelCard, path: Path | None = None, every_set: bool = False
) -> tuple[Split, Split]:
    """(train, held_out) crops preprocessed per ``card`` from ``path`` (default:
    :func:`~fer_ros.core.paths.data_path`); raises if the split can't be rebuilt.
    The held-out side is ``path``'s set, or with ``every_set`` every set the card was
    trained on (its recorded held-out figures are over those)."""
    path = path or data_path()
    if not card.extra.get("data", {}).get("split"):
        raise ValueError(f"card {card.model_id!r} records no data.split; cannot find held-out data")
    try:
        part = held_out(card, path, strict=True, every_set=every_set)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    ds, train_idx, test_idx = part.dataset, part.train, part.test
    x = preprocess_crops(ds.images, card.preprocessing, card.canny)
    return (
        Split(x[train_idx], ds.labels[train_idx], ds.groups[train_idx]),
        Split(x[test_idx], ds.labels[test_idx], ds.groups[test_idx]),
    )


def calibration_subset(train: Split, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` training crops, drawn without replacement with a fixed seed."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(train.x))[:n]
    return train.x[np.sort(idx)]
