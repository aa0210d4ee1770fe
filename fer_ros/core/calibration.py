"""Temperature scaling of published class scores (Guo et al., ICML 2017).

Nodes publish scores, not logits, so the temperature acts on what stands for the logits
in each kind of score (``form``):

* ``log``: CNN softmax outputs, ``softmax(log(p) / T)``: exactly temperature scaling of
  the CNN's logits (``log p`` is the logits less a constant);
* ``linear``: the SNN's readout normalised to sum 1 (the positive part of its integrated
  logit drive, so proportional to logits, and often exactly 0), ``softmax(p / T)``.

T > 1 (log) flattens over-confident scores, T < 1 sharpens under-confident ones. T is
fitted once per model card on its held-out groups (:mod:`fer_ros.training.calibrate`)
and read from the card's ``calibration``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_ros.core.model_card import ModelCard

FORMS = ("log", "linear")
SCORE_FLOOR = 1e-6  # keeps log() finite for scores of exactly 0
T_MIN, T_MAX = 0.01, 20.0  # search range of the fit
ECE_BINS = 15  # as in Guo et al.


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    form: str = "log"  # one of FORMS

    def __post_init__(self) -> None:
        if not self.temperature > 0.0:
            raise ValueError(f"temperature must be positive, not {self.temperature}")
        if self.form not in FORMS:
            raise ValueError(f"calibration form {self.form!r} is not one of {', '.join(FORMS)}")

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated scores, rows summing to 1; any leading shape."""
        x = np.asarray(scores, np.float64)
        z = (np.log(np.clip(x, SCORE_FLOOR, None)) if self.form == "log" else x) / self.temperature
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


UNCALIBRATED = Calibration()


def nll(scores: np.ndarray, labels: np.ndarray, calibration: Calibration = UNCALIBRATED) -> float:
    """Mean negative log-likelihood of ``labels`` under the calibrated scores (nats)."""
    p = calibration.apply(scores)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-300, None))))


def ece(scores: np.ndarray, labels: np.ndarray, calibration: Calibration = UNCALIBRATED) -> float:
    """Expected calibration error of the top score in ``ECE_BINS`` equal-width bins."""
    p = calibration.apply(scores)
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == labels
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    total = 0.0
    for b in range(ECE_BINS):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


@dataclass(frozen=True)
class TemperatureFit:
    calibration: Calibration
    nll_before: float  # of the scores as published (rows normalised; no softmax for linear)
    nll_after: float
    ece_before: float
    ece_after: float
    samples: int

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "temperature": round(self.calibration.temperature, 4),
            "form": self.calibration.form,
            "nll_before": round(self.nll_before, 4),
            "nll_after": round(self.nll_after, 4),
            "ece_before": round(self.ece_before, 4),
            "ece_after": round(self.ece_after, 4),
            "samples": self.samples,
        }


def fit_temperature(scores: np.ndarray, labels: np.ndarray, form: str = "log") -> TemperatureFit:
    """The T in [T_MIN, T_MAX] of least NLL. The NLL is convex in 1/T (a log-sum-exp of
    a linear function of it), so a golden-section search on 1/T finds the minimum."""
    labels = np.asarray(labels, np.int64)
    if len(labels) == 0:
        raise ValueError("no samples to fit a temperature on")

    def loss(beta: float) -> float:
        return nll(scores, labels, Calibration(1.0 / beta, form))

    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(100):  # the interval shrinks by 0.618 per step
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    fitted = Calibration(2.0 / (lo + hi), form)
    # "before" is the scores as published, read as probabilities (what a user sees).
    published = Calibration(1.0, "log")
    return TemperatureFit(
        calibration=fitted,
        nll_before=nll(scores, labels, published),
        nll_after=nll(scores, labels, fitted),
        ece_before=ece(scores, labels, published),
        ece_after=ece(scores, labels, fitted),
        samples=len(labels),
    )


def card_calibration(card: ModelCard) -> Calibration | None:
    """The card's fitted calibration, or None when it records none."""
    entry = card.extra.get("calibration")
    if not entry:
        return None
    return Calibration(float(entry["temperature"]), str(entry.get("form", "log")))
