"""A numpy forward pass of a :class:`~fer_ros.core.cnn_spec.CnnSpec` (the SNN's reference).

Used for data-based normalisation (per-layer activations) and to measure SNN/CNN
agreement without any deep-learning runtime.
"""

from __future__ import annotations

import numpy as np

from fer_ros.core.cnn_spec import CnnSpec, LayerSpec


def conv2d(x: np.ndarray, weights: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """PyTorch-semantics cross-correlation: (n, C, H, W) * (O, C, kh, kw) -> (n, O, H', W')."""
    n, c, h, w = x.shape
    _, in_c, kh, kw = weights.shape
    if in_c != c:
        raise ValueError(f"input has {c} channels, kernel expects {in_c}")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    # Gather every (ki, kj) tap as a strided view; the tensordot then sums C, kh, kw at once.
    taps = np.empty((n, c, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            taps[:, :, i, j] = xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
    out = np.tensordot(taps, weights.astype(np.float32), axes=([1, 2, 3], [1, 2, 3]))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def layer_forward(layer: LayerSpec, x: np.ndarray) -> np.ndarray:
    """Pre-activation of one layer (bias added, no nonlinearity)."""
    if layer.kind == "conv":
        z = conv2d(x, layer.weights, layer.stride, layer.padding)
        return z + layer.bias.astype(np.float32)[None, :, None, None]
    return x.reshape(len(x), -1) @ layer.weights.T.astype(np.float32) + layer.bias


def forward_activations(spec: CnnSpec, x: np.ndarray, batch: int = 128) -> list[np.ndarray]:
    """Every layer's output for float32 inputs (n, C, H, W); the last entry is the logits."""
    outs: list[list[np.ndarray]] = [[] for _ in spec.layers]
    for start in range(0, len(x), batch):
        h = x[start : start + batch].astype(np.float32)
        for i, layer in enumerate(spec.layers):
            h = layer_forward(layer, h)
            if layer.activation == "relu":
                h = np.maximum(h, 0.0)
            outs[i].append(h)
    return [np.concatenate(o) for o in outs]


def cnn_logits(spec: CnnSpec, x: np.ndarray) -> np.ndarray:
    """Logits (n, classes) of the CNN."""
    return forward_activations(spec, x)[-1]
