"""The faces every profile and peer is measured on: a model card's held-out groups.

The card's ``data.split`` says how training held groups out; the split is rebuilt here
with the training package's own functions and checked against the card's digest, as
``test/test_backends_committed.py`` does, so no face a model was trained on is scored.
A dataset other than the card's (any format the training CLI reads) is scored whole.
Images are read at run time and never written anywhere (CK+ is research-use only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_ros.core.model_card import ModelCard


class FacesUnavailable(RuntimeError):
    """The data set or the training extra needed to rebuild the split is missing."""


@dataclass(frozen=True)
class Faces:
    images: np.ndarray  # uint8 (n, H, W) grey crops, as the face detector publishes them
    labels: np.ndarray  # int (n,), index into classes
    classes: tuple[str, ...]
    description: str  # which faces, for the report

    def __len__(self) -> int:
        return len(self.labels)


def evaluation_faces(card: ModelCard, data: Path, max_faces: int = 0) -> Faces:
    """The card's held-out faces in ``data`` (all of ``data`` if it is not the card's set),
    subsampled to ``max_faces`` (0: all) with a fixed seed, so every profile gets the same."""
    if not data.exists():
        raise FacesUnavailable(f"dataset not found: {data} (pass --data PATH)")
    try:  # scikit-learn (the group split) comes with the [train] extra
        from fer_ros.training.data import load_dataset
        from fer_ros.training.splits import card_holdout
    except ImportError as exc:
        raise FacesUnavailable(
            f"rebuilding the card's split needs the [train] extra ({exc}): "
            "tools/setup.sh --dev or pip install -r requirements-train.txt"
        ) from exc
    dataset = load_dataset(data, tuple(card.classes))
    recorded = card.extra.get("data", {})
    split = recorded.get("split", {})
    if split and recorded.get("dataset") == data.name:
        try:
            _, test, digest = card_holdout(dataset, split, card.model_id)
        except ValueError as error:
            raise FacesUnavailable(f"{data}: {error}") from error
        what = f"held-out groups of {card.model_id} (sha1 {digest}) in {data.name}"
    else:
        test = np.arange(len(dataset))
        what = f"every face of {data.name} (not {card.model_id}'s recorded set: no split)"
    if max_faces and len(test) > max_faces:
        pick = np.random.default_rng(0).permutation(len(test))[:max_faces]
        test = test[np.sort(pick)]
        what += f", {max_faces} drawn with seed 0"
    return Faces(
        images=dataset.images[test],
        labels=dataset.labels[test],
        classes=tuple(dataset.classes),
        description=f"{len(test)} faces: {what}",
    )
