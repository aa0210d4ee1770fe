"""A framework-neutral description of a trained feed-forward CNN.

Training (PyTorch) writes it; converters (ONNX, SNN for Loihi) read it. Layers are in
PyTorch layout so that no converter needs PyTorch installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class LayerSpec:
    kind: Literal["conv", "dense"]
    weights: np.ndarray  # conv: (out_c, in_c, kh, kw); dense: (out, in)
    bias: np.ndarray  # (out_c,) or (out,)
    stride: int = 1  # conv only
    padding: int = 0  # conv only, symmetric zero padding in pixels
    activation: Literal["relu", "none"] = "relu"  # the last layer has "none" (logits)


@dataclass(frozen=True)
class CnnSpec:
    input_shape: tuple[int, int, int]  # (channels, height, width)
    layers: tuple[LayerSpec, ...]
    # dense layers take the previous conv output flattened in (C, H, W) order.


def save_cnn_spec(spec: CnnSpec, path: str) -> None:
    """Write a spec as a plain .npz (no pickle), readable without PyTorch."""
    arrays: dict[str, np.ndarray] = {"input_shape": np.asarray(spec.input_shape, np.int64)}
    for i, layer in enumerate(spec.layers):
        arrays[f"layer{i}_weights"] = layer.weights.astype(np.float32)
        arrays[f"layer{i}_bias"] = layer.bias.astype(np.float32)
        arrays[f"layer{i}_meta"] = np.asarray(
            [layer.kind, str(layer.stride), str(layer.padding), layer.activation]
        )
    np.savez(path, **arrays)


def load_cnn_spec(path: str) -> CnnSpec:
    with np.load(path, allow_pickle=False) as data:
        layers = []
        i = 0
        while f"layer{i}_weights" in data:
            kind, stride, padding, activation = (str(v) for v in data[f"layer{i}_meta"])
            layers.append(
                LayerSpec(
                    kind=kind,  # type: ignore[arg-type]
                    weights=data[f"layer{i}_weights"],
                    bias=data[f"layer{i}_bias"],
                    stride=int(stride),
                    padding=int(padding),
                    activation=activation,  # type: ignore[arg-type]
                )
            )
            i += 1
        shape = tuple(int(v) for v in data["input_shape"])
    return CnnSpec(input_shape=shape, layers=tuple(layers))  # type: ignore[arg-type]
