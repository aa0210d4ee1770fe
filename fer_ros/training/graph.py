"""The trained network as plain numpy layers: batchnorm folded, dropout gone.

Every exporter (ONNX, CnnSpec for the SNN) and every cost figure (parameters, MACs,
neurons for Loihi) starts from this one inference-only view of a :class:`FerCnn`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from fer_ros.core.cnn_spec import CnnSpec, LayerSpec
from fer_ros.training.model import FerCnn


@dataclass(frozen=True)
class Layer:
    kind: Literal["conv", "maxpool", "gap", "dense"]  # gap: global average pooling
    weights: np.ndarray | None = None  # conv (o, i, kh, kw); dense (o, i)
    bias: np.ndarray | None = None  # None: the layer has no bias at all
    stride: int = 1
    padding: int = 0
    relu: bool = False
    out_shape: tuple[int, ...] = ()  # (C, H, W) or (units,)


def fold(model: FerCnn, input_shape: tuple[int, int, int] = (1, 48, 48)) -> list[Layer]:
    """Inference-only layers of ``model`` with batchnorm folded into the convs."""
    model = model.eval()
    mods = [m for m in model.net if not isinstance(m, (nn.Dropout, nn.Flatten))]
    layers: list[Layer] = []
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        for i, m in enumerate(mods):
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            if isinstance(m, nn.Conv2d):
                x = m(x)
                w = m.weight.numpy().astype(np.float64)
                b = None if m.bias is None else m.bias.numpy().astype(np.float64)
                layers.append(
                    Layer(
                        "conv",
                        _f32(w),
                        _f32(b),
                        m.stride[0],
                        m.padding[0],
                        relu,
                        tuple(x.shape[1:]),
                    )
                )
            elif isinstance(m, nn.BatchNorm2d):
                x = m(x)
                conv = layers[-1]
                scale = (m.weight / torch.sqrt(m.running_var + m.eps)).numpy()
                b0 = np.zeros(len(scale)) if conv.bias is None else conv.bias
                layers[-1] = Layer(
                    "conv",
                    _f32(conv.weights * scale[:, None, None, None]),
                    _f32((b0 - m.running_mean.numpy()) * scale + m.bias.numpy()),
                    conv.stride,
                    conv.padding,
                    relu,
                    conv.out_shape,
                )
            elif isinstance(m, nn.Linear):
                x = m(x.flatten(1))
                layers.append(
                    Layer(
                        "dense",
                        _f32(m.weight),
                        _f32(m.bias),
                        relu=relu,
                        out_shape=tuple(x.shape[1:]),
                    )
                )
            elif isinstance(m, nn.MaxPool2d):
                x = m(x)
                layers.append(Layer("maxpool", stride=2, out_shape=tuple(x.shape[1:])))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                x = m(x)
                layers.append(Layer("gap", out_shape=tuple(x.shape[1:])))
            elif not isinstance(m, nn.ReLU):  # ReLU is recorded on the layer before it
                raise TypeError(f"cannot fold layer {m}")
    return layers


def _f32(a: np.ndarray | torch.Tensor | None) -> np.ndarray | None:
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    return np.asarray(a, np.float32)


def count_params(layers: list[Layer]) -> int:
    return int(
        sum(
            (lay.weights.size if lay.weights is not None else 0)
            + (lay.bias.size if lay.bias is not None else 0)
            for lay in layers
        )
    )


def count_macs(layers: list[Layer]) -> int:
    """Multiply-accumulates of one inference (convs and dense layers)."""
    macs = 0
    for lay in layers:
        if lay.kind == "conv":
            _, i, kh, kw = lay.weights.shape
            macs += int(np.prod(lay.out_shape)) * i * kh * kw
        elif lay.kind == "dense":
            macs += lay.weights.size
    return int(macs)


def neurons_per_layer(layers: list[Layer]) -> list[int]:
    """Output units of each conv/dense layer (the neurons an SNN needs for it)."""
    return [int(np.prod(lay.out_shape)) for lay in layers if lay.kind in ("conv", "dense")]


def to_cnn_spec(layers: list[Layer], input_shape: tuple[int, int, int]) -> CnnSpec:
    """CnnSpec for the SNN converter; only pooling-free nets qualify.

    Layers without a bias get a zero bias array (the spec always carries one).
    """
    specs = []
    for lay in layers:
        if lay.kind in ("maxpool", "gap"):
            raise ValueError("CnnSpec has no pooling: train with downsample='stride'")
        bias = lay.bias if lay.bias is not None else np.zeros(lay.weights.shape[0], np.float32)
        specs.append(
            LayerSpec(
                lay.kind, lay.weights, bias, lay.stride, lay.padding, "relu" if lay.relu else "none"
            )
        )
    return CnnSpec(input_shape=input_shape, layers=tuple(specs))


def forward_numpy(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """Reference forward pass of the folded layers (float32 NCHW in, logits out)."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    with torch.no_grad():
        for lay in layers:
            if lay.kind == "conv":
                b = None if lay.bias is None else torch.from_numpy(lay.bias)
                t = torch.nn.functional.conv2d(
                    t, torch.from_numpy(lay.weights), b, lay.stride, lay.padding
                )
            elif lay.kind == "maxpool":
                t = torch.nn.functional.max_pool2d(t, 2)
            elif lay.kind == "gap":
                t = t.mean((2, 3), keepdim=True)
            else:
                t = t.flatten(1)
                b = None if lay.bias is None else torch.from_numpy(lay.bias)
                t = torch.nn.functional.linear(t, torch.from_numpy(lay.weights), b)
            if lay.relu:
                t = torch.relu(t)
    return t.numpy()
