"""Accuracy: what the model card recorded at training time, and what we measure now."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fer_ros.core.model_card import ModelCard


@dataclass(frozen=True)
class CardAccuracy:
    """Figures written into the card by fer_ros.training (and the SNN converter)."""

    cv_mean: float = math.nan  # 5-fold group cross-validation on the training groups
    cv_std: float = math.nan
    cv_folds: int = 0
    held_out: float = math.nan  # the trained model on the held-out groups
    snn_held_out: float = math.nan  # the converted SNN in the emulator, if converted


def card_accuracy(card: ModelCard, data_set: str = "") -> CardAccuracy:
    """The card's figures for ``data_set`` (a file stem, e.g. ``wild_faces_dev``) where the
    card holds them per set (``by_dataset``; cross-validation pooled over the folds, so
    without a spread), else its overall ones; NaN for a set it was not trained on."""
    cv = card.extra.get("cross_validation") or {}
    held = card.extra.get("held_out") or {}
    snn = (card.extra.get("snn") or {}).get("held_out_emulator") or {}
    sets = held.get("by_dataset") or {}
    if not sets:
        return CardAccuracy(
            cv_mean=float(cv.get("accuracy_mean", math.nan)),
            cv_std=float(cv.get("accuracy_std", math.nan)),
            cv_folds=int(cv.get("folds", 0)),
            held_out=float(held.get("accuracy", math.nan)),
            snn_held_out=float(snn.get("accuracy", math.nan)),
        )
    pooled = ((cv.get("pooled") or {}).get("by_dataset") or {}).get(data_set, {})

    def figure(block: dict) -> float:
        return float((block.get("by_dataset") or {}).get(data_set, {}).get("accuracy", math.nan))

    return CardAccuracy(
        cv_mean=float(pooled.get("accuracy", math.nan)),
        cv_folds=int(cv.get("folds", 0)) if pooled else 0,
        held_out=figure(held),
        snn_held_out=figure(snn),
    )


@dataclass(frozen=True)
class Measured:
    """Accuracy of predictions on labelled faces; -1 predictions (no such class) are wrong."""

    n: int
    accuracy: float
    balanced_accuracy: float
    recall: dict[str, float] = field(default_factory=dict)  # per true class; NaN: no faces


def measured_accuracy(
    labels: np.ndarray, predictions: np.ndarray, classes: tuple[str, ...]
) -> Measured:
    """Accuracy, balanced accuracy and per-class recall (the training metrics' definitions)."""
    from fer_ros.training.metrics import confusion, per_class_recall

    # A prediction outside the classes (a peer's "neutral" against a card without neutral)
    # counts wrong: it gets a class of its own, which no face has, so it lowers its true
    # class's recall.
    n = len(classes)
    recall = per_class_recall(confusion(labels, np.where(predictions < 0, n, predictions), n + 1))
    recall = recall[:n]
    return Measured(
        n=len(labels),
        accuracy=float(np.mean(predictions == labels)) if len(labels) else math.nan,
        balanced_accuracy=float(np.nanmean(recall)) if len(labels) else math.nan,
        recall={c: float(r) for c, r in zip(classes, recall, strict=True)},
    )
