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


REAL_WORLD = "real-world"  # --data value: the labelled check set of compare.real_world


def evaluation_faces(card: ModelCard, data: Path, max_faces: int = 0) -> Faces:
    """The card's held-out faces in ``data`` (all of ``data`` if it is not the card's set),
    subsampled to ``max_faces`` (0: all) with a fixed seed, so every profile gets the same.
    ``data`` named ``real-world`` is the labelled check set made from the demo media."""
    if str(data) == REAL_WORLD:
        return real_world_faces(card)
    if not data.exists():
        raise FacesUnavailable(f"dataset not found: {data} (pass --data PATH)")
    try:  # scikit-learn (the group split) comes with the [train] extra
        from fer_ros.training.splits import held_out
    except ImportError as exc:
        raise FacesUnavailable(
            f"rebuilding the card's split needs the [train] extra ({exc}): "
            "tools/setup.sh --dev or pip install -r requirements-train.txt"
        ) from exc
    try:
        part = held_out(card, data, strict=False)
    except ValueError as error:
        raise FacesUnavailable(f"{data}: {error}") from error
    dataset, test, what = part.dataset, part.test, part.description
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


def real_world_faces(card: ModelCard) -> Faces:
    """The labelled real-world check set (:mod:`fer_ros.compare.real_world`), cropped by
    the graph's finder; a labelled face the finder misses is left out and said so."""
    from fer_ros.compare.real_world import check_faces

    try:
        found = list(check_faces())
    except FileNotFoundError as error:
        raise FacesUnavailable(f"demo media for the real-world set: {error}") from error
    classes = tuple(card.classes)
    kept = [f for f in found if f.crop.size and f.label in classes]
    missed = sum(1 for f in found if not f.crop.size)
    unknown = sorted({f.label for f in found if f.label not in classes})
    what = f"the labelled real-world check set ({len(found)} labelled faces"
    what += f"; {missed} not found by the face finder" if missed else ""
    what += f"; classes {', '.join(unknown)} not in {card.model_id}" if unknown else ""
    return Faces(
        images=np.stack([f.crop for f in kept]),
        labels=np.asarray([classes.index(f.label) for f in kept], np.int64),
        classes=classes,
        description=f"{len(kept)} faces: {what})",
    )
