"""Each backend runs its committed export and agrees with the committed ONNX model.

Inputs are the held-out CK+ crops of the model card's split, read from shared/data at
test time (never committed). The split is rebuilt with the training code and checked
against the card's ``test_groups_sha1`` before use. Exports the card does not list yet
are skipped, not faked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from fer_ros.backends import BackendSettings, create_backend
from fer_ros.backends.base import softmax
from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.paths import models_dir
from fer_ros.core.preprocessing import preprocess_crops

CARD = "fer_cnn_cpu.json"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ck_plus_48_dev.npz"

# (backend, export, device, fallback allowed, score tolerance, min argmax agreement).
# Tolerances are the scale of each export's numeric error: FP16 weights move logits by
# ~0.1, int8 by ~1; the argmax agreement is what must hold.
CASES = [
    ("onnxruntime", "onnx", "cpu", False, 1e-5, 1.0),
    ("litert", "tflite_fp32", "cpu", False, 1e-4, 1.0),
    ("litert", "tflite_int8", "cpu", False, 0.35, 0.95),
    ("litert", "tflite_int8", "edgetpu", True, 0.35, 0.95),  # declared fallback here
    ("openvino", "openvino_fp16", "CPU", False, 0.05, 0.99),
    ("openvino", "openvino_int8", "CPU", False, 0.35, 0.95),
    ("openvino", "openvino_fp16", "MYRIAD,NPU", True, 0.05, 0.99),  # ncs2 profile
]


@pytest.fixture(scope="module")
def card() -> ModelCard:
    if not (models_dir() / CARD).is_file():
        pytest.skip(f"{CARD} is not committed yet")
    return load_model_card(CARD)


@pytest.fixture(scope="module")
def held_out(card: ModelCard) -> np.ndarray:
    if not DATA.is_file():
        pytest.skip(f"dataset not found: {DATA}")
    splits = pytest.importorskip("fer_ros.training.splits")
    part = splits.held_out(card, DATA)
    dataset, test = part.dataset, part.test
    crops = preprocess_crops(dataset.images[test], card.preprocessing, card.canny)
    return crops


@pytest.fixture(scope="module")
def reference(card: ModelCard, held_out: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(card.file("onnx")), providers=["CPUExecutionProvider"])
    return softmax(session.run(None, {session.get_inputs()[0].name: held_out})[0])


@pytest.mark.parametrize(("backend_name", "export", "device", "fallback", "atol", "agree"), CASES)
def test_committed_export_agrees_with_onnx(
    card, held_out, reference, backend_name, export, device, fallback, atol, agree
):
    if export not in card.files:
        pytest.skip(f"{CARD} has no {export!r} export yet")
    settings = BackendSettings(card, export, device, num_threads=2, allow_cpu_fallback=fallback)
    backend = create_backend(backend_name, settings)
    scores = np.concatenate(
        [backend.infer(held_out[i : i + 32]).scores for i in range(0, len(held_out), 32)]
    )
    backend.close()
    agreement = float((scores.argmax(1) == reference.argmax(1)).mean())
    assert agreement >= agree, f"{export} on {backend.device}: argmax agreement {agreement:.3f}"
    assert np.abs(scores - reference).max() <= atol
    if not fallback:
        assert not backend.fallback
