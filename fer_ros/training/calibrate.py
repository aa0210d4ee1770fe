"""Fit each model card's confidence calibration (a temperature) on its held-out groups.

``python -m fer_ros.training.calibrate [--write] [cards...]`` rebuilds every card's
held-out split from the CK+ dev set (the training split, checked against the card's
group digest), runs the export the card's profile runs (ONNX for CNN cards, the SNN on
the nengo-loihi emulator for SNN cards) and fits T by least NLL in the form that suits
the scores (``log`` for softmax outputs, ``linear`` for the SNN's normalised readout;
see :mod:`fer_ros.core.calibration`). ``--write`` stores ``calibration`` in the card's
JSON where it was read (``FER_ROS_SHARE=$PWD`` for a checkout's models/); only the fitted
constants are stored, never the data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from fer_ros.backends import BackendSettings, create_backend
from fer_ros.core.calibration import fit_temperature, nll
from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.paths import data_path, models_dir
from fer_ros.core.spike_encoding import EncodingSettings, encode
from fer_ros.training.card_data import card_split

CARDS = (
    "fer_cnn_cpu.json",
    "fer_cnn_rpi.json",
    "fer_snn_loihi.json",
    "fer_snn_loihi_canny.json",
)
BATCH = 32
CV_FOLDS = 5


def held_out_scores(card: ModelCard, data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(scores, labels, groups, export) of the card's held-out crops, as the node would
    publish them."""
    _, held_out = card_split(card, data)
    if "snn" in card.files:
        snn = card.extra["snn"]
        encoding = EncodingSettings("rate", snn["timesteps"], snn["dt"], snn["input_rate_hz"])
        settings = BackendSettings(card, "snn", options={"target": "sim"})
        batches = [
            np.stack([encode(crop[0], encoding) for crop in held_out.x[i : i + BATCH]])
            for i in range(0, len(held_out.x), BATCH)
        ]
        backend, export = create_backend("loihi", settings), "snn"
    else:
        settings = BackendSettings(card, "onnx", "cpu", num_threads=1)
        batches = [held_out.x[i : i + BATCH] for i in range(0, len(held_out.x), BATCH)]
        backend, export = create_backend("onnxruntime", settings), "onnx"
    try:
        scores = np.concatenate([backend.infer(batch).scores for batch in batches])
    finally:
        backend.close()
    return scores, held_out.y, held_out.groups, export


def calibration_entry(card: ModelCard, data: Path) -> dict[str, Any]:
    scores, labels, groups, export = held_out_scores(card, data)
    form = "linear" if export == "snn" else "log"
    fit = fit_temperature(scores, labels, form)
    split = card.extra.get("data", {}).get("split", {})
    entry: dict[str, Any] = fit.as_dict()
    entry["fitted_on"] = {
        "dataset": Path(data).name,
        "split": "held-out groups of data.split",
        "test_groups_sha1": split.get("test_groups_sha1"),
        "export": export,
    }
    entry["nll_after_cv"] = round(cross_fitted_nll(scores, labels, groups, form), 4)
    entry["method"] = f"temperature scaling ({form} form), least NLL (Guo et al. 2017)"
    entry["note"] = (
        "nll/ece after: fitted and scored on the same held-out groups; nll_after_cv: "
        f"fitted on {CV_FOLDS - 1} of {CV_FOLDS} group folds, scored on the other"
    )
    return entry


def cross_fitted_nll(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, form: str
) -> float:
    """NLL with T fitted on other groups only: the fit's optimism, measured."""
    total = 0.0
    for train, test in GroupKFold(n_splits=CV_FOLDS).split(scores, labels, groups):
        calibration = fit_temperature(scores[train], labels[train], form).calibration
        total += nll(scores[test], labels[test], calibration) * len(test)
    return total / len(labels)


def write_entry(path: Path, entry: dict[str, Any]) -> None:
    data = json.loads(path.read_text())
    data["calibration"] = entry
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_ros.training.calibrate")
    parser.add_argument("cards", nargs="*", default=list(CARDS))
    parser.add_argument("--data", type=Path, default=data_path())
    parser.add_argument("--write", action="store_true", help="store the fit in each card")
    args = parser.parse_args(argv)
    for name in args.cards:
        card = load_model_card(name)
        entry = calibration_entry(card, args.data)
        print(f"{card.model_id}: {json.dumps(entry)}")
        if args.write:
            path = card.path or models_dir() / name
            write_entry(path, entry)
            print(f"  written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
