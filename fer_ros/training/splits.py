"""Group-aware splits: no group (CK+ sequence) ever sits on both sides."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from fer_ros.training.data import FaceDataset


def group_kfold(
    labels: np.ndarray, groups: np.ndarray, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, group-disjoint k-fold: list of (train_idx, test_idx)."""
    skf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    dummy = np.zeros(len(labels))
    return [(tr, te) for tr, te in skf.split(dummy, labels, groups)]


def holdout_split(
    ds: FaceDataset, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group-disjoint stratified (train_idx, test_idx).

    Uses the dataset's own partition when it has one (FER2013 ``Usage``: PrivateTest is
    held out); otherwise one fold of a ``round(1/test_fraction)``-fold group split.
    """
    if ds.usage is not None and np.any(ds.usage == "PrivateTest"):
        test = ds.usage == "PrivateTest"
        return np.flatnonzero(~test), np.flatnonzero(test)
    folds = max(2, round(1.0 / test_fraction))
    return group_kfold(strata(ds), ds.groups, folds, seed)[0]


def strata(ds: FaceDataset) -> np.ndarray:
    """Stratification key: the class within each data set, so every split holds each
    set's classes in proportion (a joined CK+ and in-the-wild set stays balanced)."""
    if ds.domains is None:
        return ds.labels
    _, dom = np.unique(ds.domains, return_inverse=True)
    return dom.astype(np.int64) * len(ds.classes) + ds.labels


def assert_group_disjoint(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Raise if any group id has samples in both index sets."""
    shared = np.intersect1d(groups[a], groups[b])
    if shared.size:
        raise AssertionError(f"{shared.size} groups straddle the split, e.g. {shared[:5]}")


def groups_digest(groups: np.ndarray) -> str:
    """Short hash of a set of group ids, so a card can name its test split."""
    data = np.unique(groups).astype(np.int64).tobytes()
    return hashlib.sha1(data).hexdigest()[:12]


def card_holdout(ds: FaceDataset, split: dict, model_id: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(train_idx, test_idx, digest) of a card's recorded ``data.split`` rebuilt on ``ds``;
    ValueError when its held-out groups are not the ones the card recorded."""
    train, test = holdout_split(ds, float(split["test_fraction"]), int(split["seed"]))
    digest = groups_digest(ds.groups[test])
    expected = split.get("test_groups_sha1")
    if expected and digest != expected:
        raise ValueError(
            f"held-out groups (sha1 {digest}) differ from {model_id}'s ({expected}): "
            "not the data the card was trained on"
        )
    return train, test, digest


@dataclass(frozen=True)
class HeldOut:
    """A card's data rebuilt from disk: the whole set and the indices of each side."""

    dataset: FaceDataset
    train: np.ndarray  # the card's training groups (every set it was trained on)
    test: np.ndarray  # its held-out groups of the asked-for set only (all of it if foreign)
    description: str


def held_out(card: Any, data: str | Path, strict: bool = True, every_set: bool = False) -> HeldOut:
    """The faces of ``data`` that ``card``'s model never saw in training, and its training
    faces; the one rebuild of a card's split (training, compare, SNN, tests, benchmarks).

    ``data`` is one of the files the card was trained on (a card trained on several
    names them all in ``data.dataset``: the others must sit beside it, since the split was
    drawn over all of them); the split is rebuilt and checked against the card's digest.
    ``data`` that the card was not trained on raises ``ValueError`` when ``strict``, else
    is returned whole as held out (no face of it was seen in training). ``every_set``:
    the held-out groups of every set the card was trained on, not only ``data``'s.
    """
    from fer_ros.training.data import load_dataset

    data = Path(data)
    recorded = card.extra.get("data", {})
    split = recorded.get("split", {})
    trained_on = [n for n in str(recorded.get("dataset", "")).split(",") if n]
    classes = tuple(card.classes)
    if not split or data.name not in trained_on:
        if strict:
            raise ValueError(
                f"{data.name} is not what {card.model_id} was trained on "
                f"({', '.join(trained_on) or 'no data.split recorded'})"
            )
        ds = load_dataset(data, classes)
        return HeldOut(
            ds,
            np.zeros(0, np.int64),
            np.arange(len(ds)),
            f"every face of {data.name} (not {card.model_id}'s data: no split)",
        )
    missing = [n for n in trained_on if not data.with_name(n).is_file()]
    if missing:
        raise ValueError(f"{card.model_id}'s split needs {', '.join(missing)} beside {data}")
    paths = ",".join(str(data.with_name(n)) for n in trained_on)
    ds = load_dataset(paths if len(trained_on) > 1 else data, classes)
    train, test, digest = card_holdout(ds, split, card.model_id)
    if not every_set:
        test = test[ds.domain_mask(data.stem)[test]]
    return HeldOut(
        ds,
        train,
        test,
        f"held-out groups of {card.model_id} (sha1 {digest}) in "
        + (", ".join(trained_on) if every_set else data.name),
    )
