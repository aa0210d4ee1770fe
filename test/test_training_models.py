"""Every committed model loads in its runtime and reproduces its card's figures.

For each card in models/ written by the training pipeline, the card's held-out split is
rebuilt from the CK+ dev set in shared/data (checked against ``test_groups_sha1``; no
images are committed), preprocessed as the card says, and every export is run in its own
runtime: fp32 exports must agree with the ONNX reference, quantised ones within the
card's recorded agreement, and held-out accuracy must match the card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.preprocessing import preprocess_crops

MODELS = Path(__file__).resolve().parents[1] / "models"
CARDS = sorted(p.name for p in MODELS.glob("*.json") if "export_agreement" in p.read_text())
EXACT = {"onnx", "cnn_spec", "tflite_fp32"}


def _runner(card: ModelCard, export: str):
    from fer_ros.training import export as ex

    path = card.file(export)
    if export == "onnx":
        return ex.onnx_runner(path)
    if export == "cnn_spec":
        return ex.spec_runner(path)
    if export.startswith("tflite"):
        pytest.importorskip("ai_edge_litert")
        from fer_ros.training.tflite_export import runner

        return runner(path)
    if export.startswith("openvino"):
        pytest.importorskip("openvino")
        from fer_ros.training.openvino_export import runner

        return runner(path)
    pytest.skip(f"no runtime check for export {export!r}")


def _held_out(card: ModelCard, ck_plus_path: Path) -> tuple[np.ndarray, np.ndarray]:
    pytest.importorskip("sklearn", reason="rebuilding the split needs the [train] extra")
    from fer_ros.training.splits import held_out

    if card.extra["data"].get("subset"):
        pytest.skip("card was trained on a subset")
    # every set the card was trained on (they sit beside CK+); raises if the digest changed
    part = held_out(card, ck_plus_path, every_set=True)
    ds, test = part.dataset, part.test
    x = preprocess_crops(ds.images[test], card.preprocessing, card.canny)
    return x, ds.labels[test]


@pytest.mark.parametrize("card_name", CARDS)
def test_committed_model(card_name: str, ck_plus_path: Path) -> None:
    card = load_model_card(MODELS / card_name)
    for export in card.files:
        assert card.file(export).is_file(), f"{card_name}: {export} file missing"
    x, labels = _held_out(card, ck_plus_path)
    assert len(labels) == card.extra["held_out"]["n"]
    reference = _runner(card, "onnx")(x)
    acc = float(np.mean(reference.argmax(1) == labels))
    assert acc == pytest.approx(card.extra["held_out"]["accuracy"], abs=1e-3)
    for export, recorded in card.extra["export_agreement"].items():
        run = _runner(card, export)  # one session; faces one at a time, as a node runs them
        out = np.concatenate([run(x[i : i + 1]) for i in range(len(x))])
        agreement = float(np.mean(out.argmax(1) == reference.argmax(1)))
        if export in EXACT:
            assert agreement == 1.0, export
            assert np.allclose(out, reference, atol=1e-3), export
        else:
            assert agreement >= recorded["argmax_agreement"] - 0.01, export
