"""The on-chip network in PyTorch: folded conv/dense layers, their 8-bit quantisation, and
the conversion to (and from) the SNN parameter file.

Batchnorm is folded into the conv weights and a per-channel bias, which the builder
applies as a neuron bias current (Loihi has no connection biases, but every compartment
has a bias). :class:`FoldedNet` keeps those layers as trainable parameters; its weights
are quantised as nengo-loihi's builder will (:func:`quantise_weights`, per core's rows).
:func:`to_snn_params` writes the file the backend loads, with the converter's own helpers
(:mod:`fer_ros.snn.convert`); :func:`fold_avgpool_into_conv` is a building block of the
search (2x2 average pooling folded into the following conv, no neurons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from fer_ros.snn.convert import activation_scale, assemble, integrator_scale, output_offset
from fer_ros.snn.params import SnnParams
from fer_ros.training import graph
from fer_ros.training.loihi_aware.neuron import (
    DT,
    MAX_RATE,
    SYNOP_J,
    layer_windows,
    smooth_window,
    staircase,
)
from fer_ros.training.model import FerCnn


def quantise_weights(w: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """nengo-loihi's weight discretisation (mixed-sign 8-bit: 7 magnitude bits), STE.

    The grid of a block is ``w_max * 2 / 255`` with ``w_max`` the block's largest |weight|
    (``discretize_compartment``/``discretize_weights``); the largest weight rounds to 128
    and is clipped to 127. ``rows``: output channels (conv) or neurons (dense) per core,
    ``block_shape[0]``; each core's synapses hold only its own rows' weights, so each
    group of rows has its own ``w_max`` (spatial splits of a conv share the kernel).
    """
    flat = w.reshape(w.shape[0], -1)
    n = flat.shape[0]
    size = n if not rows else int(rows)
    out = []
    for start in range(0, n, size):
        block = flat[start : start + size]
        w_max = block.detach().abs().max().clamp_min(1e-12)
        step = 2.0 * w_max / 255.0
        q = torch.clamp(torch.round(block / step), -127, 127) * step
        out.append(block + (q - block).detach())
    return torch.cat(out).reshape(w.shape)


@dataclass
class FoldedLayer:
    kind: str  # conv | dense
    weight: torch.Tensor  # threshold units per presynaptic spike
    bias: torch.Tensor  # threshold units per step
    stride: int = 1
    padding: int = 0
    rows: int | None = None  # output rows per core (block_shape[0]); None: all

    def linear(self, x: torch.Tensor, quantise: bool) -> torch.Tensor:
        w = quantise_weights(self.weight, self.rows) if quantise else self.weight
        if self.kind == "conv":
            return F.conv2d(x, w, self.bias, self.stride, self.padding)
        return F.linear(x.flatten(1), w, self.bias)


class FoldedNet(nn.Module):
    """The on-chip network: conv/dense layers with neuron biases, no batchnorm, no dropout.

    ``layers[-1]`` is the linear read-out (the output integrator).
    """

    def __init__(
        self,
        layers: list[graph.Layer],
        timesteps: int,
        quantise: bool = True,
        delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.timesteps = int(timesteps)
        self.quantise = quantise
        self.delay = float(delay)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.meta: list[tuple[str, int, int, tuple[int, ...]]] = []
        for lay in layers:
            if lay.kind not in ("conv", "dense"):
                raise ValueError(f"no {lay.kind} layer on Loihi: fold or remove it first")
            n_out = lay.weights.shape[0]
            bias = lay.bias if lay.bias is not None else np.zeros(n_out, np.float32)
            self.weights.append(nn.Parameter(torch.tensor(lay.weights, dtype=torch.float32)))
            self.biases.append(nn.Parameter(torch.tensor(bias, dtype=torch.float32)))
            self.meta.append((lay.kind, lay.stride, lay.padding, tuple(lay.out_shape)))
        self.block_rows: list[int | None] = [None] * len(self.meta)
        self.block_shapes: list[tuple[int, ...]] | None = None

    def set_block_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        """Block shapes of the converted network: weights quantise per core's rows."""
        self.block_shapes = [tuple(int(v) for v in b) for b in shapes]
        self.block_rows = [b[0] for b in self.block_shapes]

    def layer(self, i: int) -> FoldedLayer:
        kind, stride, padding, _ = self.meta[i]
        return FoldedLayer(
            kind, self.weights[i], self.biases[i], stride, padding, self.block_rows[i]
        )

    def __len__(self) -> int:
        return len(self.meta)

    def windows(self) -> list[int]:
        return layer_windows(len(self.meta) - 1, self.timesteps, self.delay)

    def rate_forward(
        self,
        x: torch.Tensor,
        counts: list[torch.Tensor] | None = None,
        readout: torch.Tensor | None = None,
        mode: str = "rate",
        return_hidden: bool = False,
    ) -> Any:
        """Logits from the rate model; with simulated ``counts`` (per hidden layer, spikes
        per step) each layer's value is replaced by the simulation's (tandem learning)."""
        h = x
        n = len(self)
        hidden = []
        for i in range(n):
            z = self.layer(i).linear(h, self.quantise)
            if i == n - 1:
                if readout is not None:
                    z = z + (readout - z).detach()
                return (z, hidden) if return_hidden else z
            win = self.windows()[i] if self.delay > 0 else None
            if mode == "relu":
                a = F.relu(z)
            else:
                s = smooth_window(z, self.timesteps, win)
                a = s + (staircase(z, self.timesteps, win) - s).detach() if mode == "rate" else s
            if counts is not None:
                a = a + (counts[i] - a).detach()
            hidden.append(a)
            h = a
        raise AssertionError

    def fan_outs(self) -> list[float]:
        """Mean synapses per presynaptic neuron into each layer (zero taps excluded)."""
        fans = []
        for i, (kind, stride, _, _) in enumerate(self.meta):
            w = self.weights[i]
            fans.append(
                w.shape[0] * w.shape[2] * w.shape[3] / stride**2 if kind == "conv" else w.shape[0]
            )
        return fans

    def synaptic_uj(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """Modelled synaptic energy per face (uJ) of the hidden layers' spikes (spikes per
        step ``hidden``), at :data:`~.neuron.SYNOP_J` per synaptic op."""
        fans = self.fan_outs()
        total = torch.zeros(())
        for i, a in enumerate(hidden):
            total = total + a.flatten(1).sum(1).mean() * self.timesteps * fans[i + 1]
        return total * SYNOP_J * 1e6

    def graph_layers(self, quantised: bool = False) -> list[graph.Layer]:
        """Back to :class:`graph.Layer`; float weights unless ``quantised`` (the SNN file
        needs the float ones: the builder discretises them itself, and a second rounding
        would move each block's grid)."""
        out = []
        with torch.no_grad():
            for i, (kind, stride, padding, shape) in enumerate(self.meta):
                w = self.weights[i]
                if quantised and self.quantise:
                    w = quantise_weights(w, self.block_rows[i])
                out.append(
                    graph.Layer(
                        kind,
                        w.numpy().astype(np.float32),
                        self.biases[i].detach().numpy().astype(np.float32),
                        stride,
                        padding,
                        i < len(self.meta) - 1,
                        shape,
                    )
                )
        return out


def fold_model(model: FerCnn, timesteps: int, delay: float = 0.0) -> FoldedNet:
    layers = graph.fold(model.eval())
    return FoldedNet(layers, timesteps, quantise=True, delay=delay)


@torch.no_grad()
def normalise(net: FoldedNet, x: np.ndarray, percentile: float = 99.9, gain: float = 0.5) -> None:
    """Data-based normalisation (Diehl 2015, Rueckauer 2017) in threshold units, in place:
    layer ``l``'s ``percentile`` ReLU activation becomes a drive of ``gain`` thresholds
    per step. Exact for the ReLU network (positive homogeneity); the read-out only scales."""
    h = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    prev = 1.0
    n = len(net)
    for i in range(n):
        lay = net.layer(i)
        z = lay.linear(h, False)
        if i == n - 1:
            net.weights[i].mul_(prev)
            break
        a = F.relu(z)
        pos = a[a > 0]
        lam = (
            float(torch.quantile(pos[torch.randperm(len(pos))[:2_000_000]], percentile / 100))
            if len(pos)
            else 1.0
        )
        scale = gain / lam
        net.weights[i].mul_(prev * scale)
        net.biases[i].mul_(scale)
        h = a
        prev = 1.0 / scale


def to_snn_params(
    net: FoldedNet,
    model_id: str,
    calibration: np.ndarray,
    timesteps: int | None = None,
    offset_quantile: float = 0.01,
    horizon_factor: int = 4,
    extra: dict[str, Any] | None = None,
) -> SnnParams:
    """SnnParams (fer_ros.snn.params) of the trained net, every hidden scale fixed to 1.

    Hidden layers: ``weights = W * MAX_RATE``, ``bias = b * MAX_RATE`` (rate_scale 1),
    the input relay at 1000 Hz, so one presynaptic spike adds ``W`` thresholds, exactly as
    trained. The read-out layer is made an integrator as :func:`fer_ros.snn.convert.convert`
    does (argmax-neutral offset; the largest calibration logit charges half a threshold
    over ``horizon_factor * T`` steps), and the file is assembled by the same
    :func:`fer_ros.snn.convert.assemble`.
    """
    steps = int(timesteps or net.timesteps)
    layers = net.graph_layers()
    spec = graph.to_cnn_spec(layers, (1, *calibration.shape[2:]))
    with torch.no_grad():
        cal = torch.from_numpy(np.ascontiguousarray(calibration, np.float32))
        logits = net.rate_forward(cal).numpy()
    offset = output_offset(logits, offset_quantile)
    out_scale = integrator_scale(
        activation_scale(logits + offset, 99.9), MAX_RATE, DT, horizon_factor * steps
    )
    scales = [1.0] * (len(layers) - 1) + [out_scale]
    weights, biases = [], []
    for i, lay in enumerate(layers):
        last = i == len(layers) - 1
        bias = lay.bias.astype(np.float64) + (offset if last else 0.0)
        weights.append((lay.weights.astype(np.float64) * MAX_RATE / scales[i]).astype(np.float32))
        biases.append((bias * MAX_RATE / scales[i]).astype(np.float32))
    return assemble(
        spec,
        model_id,
        weights,
        biases,
        scales,
        timesteps=steps,
        dt=DT,
        max_rate=MAX_RATE,
        input_rate=MAX_RATE,
        output_offset=offset,
        extra={
            "conversion": "loihi-aware (fixed unit scales, fer_ros.training.loihi_aware)",
            "calibration_crops": len(calibration),
            "output_horizon": horizon_factor * steps,
            **(extra or {}),
        },
        block_shapes=net.block_shapes,
    )


def block_shapes_of(params: SnnParams) -> list[tuple[int, ...]]:
    return [tuple(lay.block_shape) for lay in params.layers]


def from_snn_params(params: SnnParams, quantise: bool = True) -> FoldedNet:
    """A :class:`FoldedNet` in threshold units from any SNN parameter file (for
    :func:`simulate`): one presynaptic spike adds ``W * amplitude`` thresholds."""
    layers = []
    amp = 1.0 / params.input_rate
    for lay in params.layers:
        layers.append(
            graph.Layer(
                lay.kind,
                (lay.weights.astype(np.float64) * amp).astype(np.float32),
                (lay.bias.astype(np.float64) * params.dt).astype(np.float32),
                lay.stride,
                lay.padding,
                True,
                tuple(lay.output_shape),
            )
        )
        amp = params.amplitude
    net = FoldedNet(layers, params.timesteps, quantise)
    net.set_block_shapes(block_shapes_of(params))
    return net


def fold_avgpool_into_conv(
    weight: np.ndarray, padding: int, pool: int = 2
) -> tuple[np.ndarray, int, int]:
    """``conv(avgpool_k(x))`` as one conv on ``x``: kernel ``k*(K-1)+k``, stride ``k``,
    padding ``k*padding`` (average pooling is linear, so it folds into the next conv and
    costs no neurons). Returns (kernel, stride, padding)."""
    out_c, in_c, kh, kw = weight.shape
    big = np.zeros((out_c, in_c, pool * kh, pool * kw), np.float32)
    for i in range(kh):
        for j in range(kw):
            big[:, :, pool * i : pool * i + pool, pool * j : pool * j + pool] += weight[
                :, :, i : i + 1, j : j + 1
            ] / (pool * pool)
    return big, pool, pool * padding
