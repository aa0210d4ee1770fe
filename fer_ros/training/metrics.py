"""Accuracy figures and the confusion-matrix picture for model cards."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def confusion(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall per true class (NaN for a class with no samples)."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def summary(labels: np.ndarray, pred: np.ndarray, classes: tuple[str, ...]) -> dict[str, object]:
    """Accuracy, balanced accuracy, per-class recall and the confusion matrix as JSON."""
    cm = confusion(labels, pred, len(classes))
    recall = per_class_recall(cm)
    return {
        "n": len(labels),
        "accuracy": round(float(np.mean(labels == pred)), 4),
        "balanced_accuracy": round(float(np.nanmean(recall)), 4),
        "per_class_recall": {
            c: (None if np.isnan(r) else round(float(r), 4))
            for c, r in zip(classes, recall, strict=True)
        },
        "confusion_matrix": cm.tolist(),
    }


def summary_by_domain(
    labels: np.ndarray,
    pred: np.ndarray,
    classes: tuple[str, ...],
    domains: np.ndarray | None,
) -> dict[str, object]:
    """:func:`summary` of all samples, plus one per data set under ``by_dataset`` when
    the samples come from more than one (figures are only meaningful per set)."""
    out = summary(labels, pred, classes)
    names = [] if domains is None else list(dict.fromkeys(domains.tolist()))
    if len(names) > 1:
        out["by_dataset"] = {
            n: summary(labels[domains == n], pred[domains == n], classes) for n in names
        }
    return out


def held_out_figures(
    labels: np.ndarray,
    pred: np.ndarray,
    classes: tuple[str, ...],
    domains: np.ndarray | None,
    png: Path,
    what: str,
) -> dict[str, object]:
    """:func:`summary_by_domain` of held-out predictions, its confusion matrix drawn to
    ``png`` under a title naming ``what`` was evaluated."""
    held = summary_by_domain(labels, pred, classes, domains)
    title = f"{what} held-out n={held['n']} acc={held['accuracy']:.3f}"
    save_confusion_png(np.asarray(held["confusion_matrix"]), classes, png, title)
    return held


def save_confusion_png(cm: np.ndarray, classes: tuple[str, ...], path: Path, title: str) -> None:
    """Row-normalised confusion matrix drawn with OpenCV (no plotting library needed)."""
    n, cell, left, top = len(classes), 56, 90, 60
    img = np.full((top + n * cell + 80, left + n * cell + 10, 3), 255, np.uint8)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for r in range(n):
        for c in range(n):
            shade = int(255 * (1 - rows[r, c]))
            x0, y0 = left + c * cell, top + r * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (200, 200, 200), 1)
            ink = (255, 255, 255) if rows[r, c] > 0.5 else (0, 0, 0)
            cv2.putText(img, str(cm[r, c]), (x0 + 12, y0 + 34), font, 0.5, ink, 1, cv2.LINE_AA)
        cv2.putText(
            img, classes[r][:8], (4, top + r * cell + 34), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
    for c in range(n):
        x0 = left + c * cell + 4
        cv2.putText(
            img, classes[c][:7], (x0, top + n * cell + 20), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA
        )
    cv2.putText(
        img,
        "predicted",
        (left + n * cell // 2 - 35, top + n * cell + 50),
        font,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    cv2.putText(img, title[:60], (8, 30), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)
