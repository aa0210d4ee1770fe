"""Post-hoc logit adjustment: less of the training set's class prior in the answers.

Happy and neutral are 87 % of the faces the models learn from, and the loss weights
(:func:`fit.class_weights`, power 0.5) undo only part of that. Logit adjustment (Menon et
al. 2021, "Long-tail learning via logit adjustment", ICLR) subtracts ``tau * log(prior)``
from the logits: tau 0 leaves the model as trained, tau 1 removes the prior it learned
and aims at balanced accuracy. The shift is folded into the output layer's bias, so every
export and runtime carries it without knowing of it. Tau is chosen on out-of-fold CV
logits of the development groups (never the held-out ones), where the score is the mean
of accuracy and balanced accuracy over the data sets, so neither the common classes nor
the rare ones are given up, and a gain within fold noise keeps the smaller tau.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_ros.training.data import FaceDataset
from fer_ros.training.fit import TrainSettings, class_weights
from fer_ros.training.metrics import summary

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
TOLERANCE = 0.005  # a score within half a point of the best counts as a tie
ABSENT = 1e-9  # a prior below this: a class with no training sample


def trained_prior(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The class prior a model trained with these loss weights has learned: counts times
    weights, normalised (classes with no sample get a tiny floor, not log 0)."""
    counts = np.bincount(labels, minlength=len(weights)).astype(np.float64)
    prior = np.maximum(counts * weights, ABSENT / 10)
    return prior / prior.sum()


def bias_shift(prior: np.ndarray, tau: float) -> np.ndarray:
    """``-tau * log(prior)``, centred (a constant on every logit changes no answer). A
    class the model never saw gets the smallest shift, not the floor's huge boost."""
    present = prior > ABSENT
    shift = -tau * np.log(np.maximum(prior, ABSENT))
    shift = np.where(present, shift, shift[present].min() if present.any() else 0.0)
    return (shift - shift.mean()).astype(np.float32)


def parse_tau(value: str | float) -> float | str:
    """``--logit-adjust``: ``cv``, or a tau >= 0; anything else is refused before any
    training starts."""
    if str(value).strip().lower() == "cv":
        return "cv"
    try:
        tau = float(value)
    except ValueError:
        raise ValueError(f"--logit-adjust must be 'cv' or a number >= 0, got {value!r}") from None
    if not tau >= 0:
        raise ValueError(f"--logit-adjust must be 'cv' or a number >= 0, got {value!r}")
    return tau


def score(
    logits: np.ndarray,
    labels: np.ndarray,
    domains: np.ndarray | None,
    classes: tuple[str, ...],
    shift: np.ndarray,
) -> dict[str, Any]:
    """Accuracy and balanced accuracy per data set of ``logits + shift``, and their mean."""
    pred = (logits + shift).argmax(1)
    names = ["all"] if domains is None else list(dict.fromkeys(domains.tolist()))
    per_set = {}
    for name in names:
        keep = np.ones(len(labels), bool) if domains is None else domains == name
        s = summary(labels[keep], pred[keep], classes)
        per_set[name] = {"accuracy": s["accuracy"], "balanced_accuracy": s["balanced_accuracy"]}
    mean = float(np.mean([v for f in per_set.values() for v in f.values()]))
    return {"score": round(mean, 4), "by_dataset": per_set}


def tau_curve(
    logits: np.ndarray,
    labels: np.ndarray,
    domains: np.ndarray | None,
    classes: tuple[str, ...],
    prior: np.ndarray,
    taus: tuple[float, ...] = TAUS,
) -> list[dict[str, Any]]:
    """:func:`score` of the out-of-fold ``logits`` at every tau of ``taus``."""
    return [
        {"tau": t, **score(logits, labels, domains, classes, bias_shift(prior, t))} for t in taus
    ]


def choose_tau(curve: list[dict[str, Any]], tolerance: float = TOLERANCE) -> float:
    """The smallest tau of a :func:`tau_curve` whose score is within ``tolerance`` of the
    best (smaller differences are fold noise: the folds' accuracies differ by about a
    point)."""
    best = max(row["score"] for row in curve)
    return float(min(row["tau"] for row in curve if best - row["score"] <= tolerance + 1e-9))


def output_layer(model: nn.Module) -> nn.Linear:
    """The last linear layer: the one that writes the class logits."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError("the model has no linear output layer to shift")
    return linear[-1]


def shift_output_bias(model: nn.Module, shift: np.ndarray) -> None:
    """Add ``shift`` to the output layer's bias, in place."""
    layer = output_layer(model)
    with torch.no_grad():
        layer.bias += torch.from_numpy(np.asarray(shift, np.float32)).to(layer.bias.device)


def save_out_of_fold(
    path: Path, oof: tuple[np.ndarray, np.ndarray], split: dict[str, Any], dev: FaceDataset
) -> None:
    """Out-of-fold logits and fold numbers, with the split's held-out digest and the
    class order they were computed for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        logits=oof[0],
        fold=oof[1],
        test_groups_sha1=split["test_groups_sha1"],
        classes=np.asarray(dev.classes),
    )


def load_out_of_fold(
    path: Path, split: dict[str, Any], dev: FaceDataset
) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`save_out_of_fold` wrote, only if it belongs to this split, class order
    and development set."""
    with np.load(path, allow_pickle=False) as d:
        same = (
            "classes" in d.files
            and str(d["test_groups_sha1"]) == split["test_groups_sha1"]
            and tuple(d["classes"].tolist()) == tuple(dev.classes)
            and d["logits"].shape == (len(dev), len(dev.classes))
        )
        if not same:
            raise ValueError(
                f"{path}: out-of-fold logits of another split, class order or data; remove it"
            )
        return d["logits"], d["fold"]


def adjust_logits(
    model: nn.Module,
    dev: FaceDataset,
    s: TrainSettings,
    logit_adjust: float | str,
    oof: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Shift ``model``'s output bias by tau (``logit_adjust``, or ``cv``: chosen on the
    out-of-fold logits ``oof``); returns the shift and the card's ``logit_adjustment``."""
    n = len(dev.classes)
    weights = (
        class_weights(dev.labels, n, s.class_weight_power).numpy()
        if s.class_weighted
        else np.ones(n)
    )
    prior = trained_prior(dev.labels, weights)
    if logit_adjust == "cv" and oof is None:
        raise ValueError("--logit-adjust cv needs cross-validation (--folds >= 2)")
    curve = [] if oof is None else tau_curve(oof[0], dev.labels, dev.domains, dev.classes, prior)
    if logit_adjust == "cv":
        tau = choose_tau(curve)
        chosen = (
            f"the smallest tau within {TOLERANCE} of the best score on the development "
            "groups' out-of-fold CV logits"
        )
    else:
        tau, chosen = float(logit_adjust), "given"
    shift = bias_shift(prior, tau)
    shift_output_bias(model, shift)
    return shift, {
        "method": "logit adjustment, -tau * log(prior) folded into the output bias "
        "(Menon et al. 2021)",
        "tau": tau,
        "chosen": chosen,
        "score": "mean of accuracy and balanced accuracy over the data sets",
        "prior": dict(zip(dev.classes, np.round(prior, 5).tolist(), strict=True)),
        "bias_shift": dict(zip(dev.classes, np.round(shift, 4).tolist(), strict=True)),
        "curve_out_of_fold": curve,
    }
