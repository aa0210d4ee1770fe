"""What the CNN backends (ONNX Runtime, LiteRT, OpenVINO) share around their runtime call.

Each of them loads one export of a model card, takes a batch of preprocessed crops,
runs it whole or in the fixed batch the export was compiled for, and turns the outputs
into class scores. Only the runtime call differs, so that is all a backend passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_ros.backends.base import (
    BackendSettings,
    BackendUnavailable,
    InferenceResult,
    check_crops,
    run_in_chunks,
    softmax,
)


class CropModel:
    """One crop-classifying export of a card: its file, input checks and score mapping."""

    def __init__(self, settings: BackendSettings) -> None:
        self.card = settings.card
        self.export = settings.model_export
        self.classes = len(settings.card.classes)
        self.returns_logits = settings.card.extra.get("output", "logits") == "logits"

    def path(self, must_exist: bool = True) -> Path:
        """The export's file; BackendUnavailable names the card key or the missing file."""
        try:
            path = self.card.file(self.export)
        except KeyError as exc:
            raise BackendUnavailable(exc.args[0]) from exc
        if must_exist and not path.is_file():
            raise BackendUnavailable(f"model file missing: {path} (export {self.export!r})")
        return path

    def check(self, batch: np.ndarray) -> np.ndarray:
        """The batch as contiguous float32 (n, 1, H, W); ValueError on another shape."""
        return check_crops(batch, self.card.input_height, self.card.input_width)

    def run(
        self, run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, fixed_batch: int | None
    ) -> np.ndarray:
        """Raw outputs of ``run`` over ``x``, in chunks when the export has a fixed batch."""
        if fixed_batch is None or fixed_batch == len(x):
            return run(x)
        return run_in_chunks(run, x, fixed_batch, self.classes)

    def result(self, outputs: np.ndarray) -> InferenceResult:
        """Class scores (softmax of logits, or the probabilities as exported)."""
        scores = softmax(outputs) if self.returns_logits else outputs
        return InferenceResult(scores=np.asarray(scores, np.float32))
