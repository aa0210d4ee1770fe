"""A tiny random Loihi-compatible CNN and inputs, for tests and examples.

Small enough to build and emulate in well under a second, yet it has every layer kind
the converter handles: a strided, padded conv without bias, a dense hidden layer with
bias and a linear output layer.
"""

from __future__ import annotations

import numpy as np

from fer_ros.core.cnn_spec import CnnSpec, LayerSpec


def toy_spec(seed: int = 0, size: int = 12, classes: int = 3) -> CnnSpec:
    """conv 1->4 (3x3, stride 2, pad 1) -> dense 10 -> dense ``classes``."""
    rng = np.random.default_rng(seed)
    side = (size + 2 - 3) // 2 + 1
    conv = LayerSpec(
        "conv",
        rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32),
        np.zeros(4, np.float32),
        stride=2,
        padding=1,
    )
    hidden = LayerSpec(
        "dense",
        rng.normal(0, 0.3, (10, 4 * side * side)).astype(np.float32),
        rng.normal(0, 0.05, 10).astype(np.float32),
    )
    out = LayerSpec(
        "dense",
        rng.normal(0, 0.5, (classes, 10)).astype(np.float32),
        rng.normal(0, 0.05, classes).astype(np.float32),
        activation="none",
    )
    return CnnSpec(input_shape=(1, size, size), layers=(conv, hidden, out))


def toy_crops(n: int, seed: int = 1, size: int = 12) -> np.ndarray:
    """float32 (n, 1, size, size) in [0, 1]: sparse bright strokes, like Canny edges."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 1, size, size)) < 0.3).astype(np.float32)
