"""Simulations of the chip: float and integer-exact in PyTorch, and nengo-loihi's emulator.

* :func:`simulate`: the emulator's dynamics in float threshold units (one step per layer,
  reset to zero, membrane floor), on the quantised weights;
* :func:`simulate_exact`: the same in the emulator's integers, so the same spikes as
  nengo-loihi's emulator: every block discretised as nengo-loihi does
  (:func:`fer_ros.snn.emulator.integers.discretise_block`), its 1/4096 synaptic-current
  carry-over and overflow wraps (:mod:`fer_ros.snn.emulator.integers`). Stage 2 of
  training runs it forward in the loop (:mod:`.train`);
* :func:`emulator_predict`: the converted file presented to nengo-loihi's emulator through
  :class:`~fer_ros.snn.runner.SnnRunner` (the layered emulator), with modelled energy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from fer_ros.core.spike_encoding import ConvertedTiming, EncodingSettings, encode
from fer_ros.snn.activity import ActivityCounter
from fer_ros.snn.emulator.integers import Q_BITS, U_BITS, discretise_block, wrap_int
from fer_ros.snn.energy import LoihiEnergyModel
from fer_ros.snn.params import SnnParams
from fer_ros.snn.runner import SnnRunner
from fer_ros.training.loihi_aware.folded import FoldedNet, quantise_weights
from fer_ros.training.loihi_aware.neuron import DT, INPUT_DELAY, MAX_RATE, VMIN, VMIN_ABS


@dataclass
class IntLayer:
    """One layer as nengo-loihi discretises it: integer weights, biases and thresholds in
    each block's own voltage units (blocks of a conv layer share one kernel and scale;
    a dense layer's blocks are row groups with their own scales)."""

    kind: str
    weight: torch.Tensor  # integer-valued float32, same layout as the float weights
    bias: torch.Tensor  # (out,) integer-valued, per output channel / neuron
    vth: torch.Tensor  # (out,)
    vmin: torch.Tensor  # (out,)
    stride: int
    padding: int


def discretise(net: FoldedNet, params: SnnParams | None = None) -> list[IntLayer]:
    """Integer parameters of every layer, as the builder will give them to the chip.

    Float weights are in thresholds per spike, i.e. SNN weights ``W * MAX_RATE`` with
    spike amplitude ``1 / MAX_RATE`` and threshold ``1 / dt``. With ``params`` the SNN
    file's own float32 arrays are used (bit-exact with the emulator).
    """
    out = []
    for i in range(len(net)):
        lay = net.layer(i)
        if params is not None:
            amp = 1.0 / params.input_rate if i == 0 else params.amplitude
            w = params.layers[i].weights.astype(np.float64) * (amp / params.dt)
            b = params.layers[i].bias.astype(np.float64)
        else:
            w = (lay.weight.detach().double().numpy() * MAX_RATE).astype(np.float32)
            b = (lay.bias.detach().double().numpy() * MAX_RATE).astype(np.float32)
            w, b = w.astype(np.float64), b.astype(np.float64)
        n = w.shape[0]
        size = lay.rows or n
        wi, bi, vi, mi = [], [], [], []
        for start in range(0, n, size):
            sl = slice(start, start + size)
            w_int, b_int, vth_int, vmin_int = discretise_block(
                w[sl], b[sl], 1.0 / DT, -VMIN_ABS / DT
            )
            wi.append(w_int)
            bi.append(b_int)
            vi.append(np.full(len(b[sl]), vth_int))
            mi.append(np.full(len(b[sl]), vmin_int))
        out.append(
            IntLayer(
                lay.kind,
                torch.from_numpy(np.concatenate(wi)).float(),
                torch.from_numpy(np.concatenate(bi)).float(),
                torch.from_numpy(np.concatenate(vi)).double(),
                torch.from_numpy(np.concatenate(mi)).double(),
                lay.stride,
                lay.padding,
            )
        )
    return out


@torch.no_grad()
def simulate_exact(
    net: FoldedNet,
    spikes: torch.Tensor,
    input_delay: int = INPUT_DELAY,
    params: SnnParams | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """:func:`simulate` in the emulator's integers: nengo-loihi's discretisation of every
    block, its 1/4096 synaptic-current carry-over and overflow wraps, so the same spikes
    as nengo-loihi's emulator. Synaptic sums are float32 convolutions of integers (exact
    below 2**24), the state is int32."""
    layers = discretise(net, params)
    steps, batch = spikes.shape[0], spikes.shape[1]
    n = len(layers)
    shapes = [(batch, *net.meta[i][3]) for i in range(n)]
    v = [torch.zeros(sh, dtype=torch.int32) for sh in shapes]
    cur = [torch.zeros(sh, dtype=torch.int32) for sh in shapes]
    counts = [torch.zeros(sh, dtype=torch.int32) for sh in shapes[:-1]]
    prev: list[torch.Tensor | None] = [None] * n
    # float32 sums of integers are exact below 2**24; wider layers sum in float64
    wide = [float(lay.weight.abs().flatten(1).sum(1).max()) >= 2**24 for lay in layers]
    w32 = [
        lay.weight.double() if w else lay.weight.float()
        for lay, w in zip(layers, wide, strict=True)
    ]

    def per(t: torch.Tensor, sh: tuple[int, ...]) -> torch.Tensor:
        return t.reshape(1, -1, *([1] * (len(sh) - 2)))

    bias = [per(lay.bias.round().int(), sh) for lay, sh in zip(layers, shapes, strict=True)]
    vth = [per(lay.vth.round().int(), sh) for lay, sh in zip(layers, shapes, strict=True)]
    vmin = [per(lay.vmin.round().int(), sh) for lay, sh in zip(layers, shapes, strict=True)]
    vmax = 2**U_BITS - 1
    for t in range(steps):
        k = t - input_delay
        inp = spikes[k].float() if k >= 0 else None
        new: list[torch.Tensor | None] = [None] * n
        for i, lay in enumerate(layers):
            src = inp if i == 0 else prev[i - 1]
            if src is not None and wide[i]:
                src = src.double()
            if src is None:
                q = None
            elif lay.kind == "conv":
                q = F.conv2d(src, w32[i], None, lay.stride, lay.padding)
            else:
                q = F.linear(src.flatten(1), w32[i])
            carry = torch.div(cur[i], 4096, rounding_mode="trunc")
            if q is not None:
                carry = carry + wrap_int(q.round().int(), Q_BITS)
            cur[i] = wrap_int(carry, U_BITS)
            vi = v[i] + wrap_int(cur[i] + bias[i], U_BITS)
            if i < n - 1 or params is not None:
                # the converted read-out stays within half a threshold: no clamp on chip;
                # the training net's unscaled read-out must not be clamped either
                vi = torch.clamp(torch.maximum(vi, vmin[i]), max=vmax)
            if i < n - 1:
                spk = vi > vth[i]
                vi = vi.masked_fill(spk, 0)
                new[i] = spk.float()  # cast per consumer above when it sums wide
                counts[i] += spk
            v[i] = vi
        prev = new
    read = v[-1].double() / vth[-1].reshape(1, -1).double()
    return [c.float() / steps for c in counts], read.float() / steps


def encode_rate(x: torch.Tensor, timesteps: int, rate_dt: float = 1.0) -> torch.Tensor:
    """The spike encoder's deterministic accumulator (fer_ros.core.spike_encoding.encode),
    for a batch: float (B, C, H, W) -> (T, B, C, H, W) float 0/1."""
    p = torch.clamp(x, 0.0, 1.0).double() * rate_dt
    steps = torch.arange(1, timesteps + 1, dtype=torch.float64).reshape(-1, *([1] * x.dim()))
    counts = torch.floor(steps * p + 0.5)
    previous = torch.floor((steps - 1) * p + 0.5)
    return (counts > previous).float()


@torch.no_grad()
def simulate(
    net: FoldedNet,
    spikes: torch.Tensor,
    input_delay: int = INPUT_DELAY,
    vmin: float = VMIN,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Time-stepped simulation of the emulator's dynamics (float, threshold units).

    Per step every layer integrates the previous layer's spikes of the previous step
    (one step per layer, as nengo-loihi delivers them) plus its bias; ``v > 1`` spikes and
    resets to 0; the membrane is floored at ``vmin``. The input train reaches conv0
    ``input_delay`` steps after it is emitted. The last layer only integrates (the read-out).

    Returns per hidden layer spikes per step (count / T) and the read-out / T.
    """
    steps = spikes.shape[0]
    n = len(net)
    layers = [net.layer(i) for i in range(n)]
    weights = [
        quantise_weights(lay.weight, lay.rows) if net.quantise else lay.weight for lay in layers
    ]
    v: list[torch.Tensor | None] = [None] * n
    prev: list[torch.Tensor | None] = [None] * n  # spikes of the previous step
    counts: list[torch.Tensor | None] = [None] * (n - 1)
    for t in range(steps):
        k = t - input_delay
        inp = spikes[k] if k >= 0 else torch.zeros_like(spikes[0])
        new: list[torch.Tensor | None] = [None] * n
        for i, lay in enumerate(layers):
            src = inp if i == 0 else prev[i - 1]
            if src is None:  # nothing emitted yet: bias only
                drive = None
            elif lay.kind == "conv":
                drive = F.conv2d(src, weights[i], None, lay.stride, lay.padding)
            else:
                drive = F.linear(src.flatten(1), weights[i])
            if v[i] is None:
                shape = (spikes.shape[1], *net.meta[i][3])
                v[i] = torch.zeros(shape)
            b = lay.bias.reshape(1, -1, *([1] * (v[i].dim() - 2)))
            vi = v[i] + b + (drive if drive is not None else 0.0)
            if i == n - 1:
                v[i] = vi
                continue
            vi = torch.clamp(vi, min=vmin)
            s = (vi > 1.0).float()
            v[i] = vi * (1.0 - s)
            new[i] = s
            counts[i] = s if counts[i] is None else counts[i] + s
        prev = new
    return [c / steps for c in counts], v[-1] / steps  # type: ignore[operator]


def predict_sim(
    net: FoldedNet, x: np.ndarray, batch: int = 64, exact: bool = True
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Read-out (n, classes) and per-layer spike counts (n, neurons) of the simulation."""
    outs, counts = [], []
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch], np.float32))
        c, r = (simulate_exact if exact else simulate)(net, encode_rate(xb, net.timesteps))
        outs.append(r.numpy())
        counts.append([ci.flatten(1).numpy() * net.timesteps for ci in c])
    per_layer = [np.concatenate([c[i] for c in counts]) for i in range(len(counts[0]))]
    return np.concatenate(outs), per_layer


def predict_rate(net: FoldedNet, x: np.ndarray, mode: str = "rate") -> np.ndarray:
    with torch.no_grad():
        return net.rate_forward(
            torch.from_numpy(np.ascontiguousarray(x, np.float32)), mode=mode
        ).numpy()


@dataclass
class EmulatorResult:
    predictions: np.ndarray
    layer_counts: list[np.ndarray]  # mean spikes per face per layer (input first)
    energy_uj: float
    dynamic_uj: float
    ms_per_face: float
    synops: float


def emulator_predict(
    params: SnnParams, crops: np.ndarray, timesteps: int | None = None
) -> EmulatorResult:
    """Present every crop to nengo-loihi's emulator (fast spike delivery); argmax read-out."""
    steps = ConvertedTiming.of_params(params).resolve(timesteps).timesteps
    runner = SnnRunner(params, target="sim")
    counter = ActivityCounter(params)
    model = LoihiEnergyModel()
    settings = EncodingSettings("rate", steps, params.dt, runner.input_rate)
    pred = np.zeros(len(crops), np.int64)
    energies, dyn, synops = [], [], []
    spikes = np.zeros(len(params.layers) + 1)
    try:
        start = time.perf_counter()
        shown_all = []
        for b in range(0, len(crops), 32):  # the layered emulator: many faces per call
            trains = np.stack([encode(c[0], settings) for c in crops[b : b + 32]])
            shown_all.extend(runner.run_batch(trains))
        for i, shown in enumerate(shown_all):
            pred[i] = int(np.argmax(shown.readout()))
            act = counter.count(shown.input_counts, shown.layer_counts, steps)
            br = model.breakdown(act)
            energies.append(br.total)
            dyn.append(br.dynamic)
            synops.append(act.synaptic_ops)
            spikes[0] += shown.input_counts.sum()
            for j, c in enumerate(shown.layer_counts):
                spikes[j + 1] += c.sum()
        elapsed = time.perf_counter() - start
    finally:
        runner.close()
    n = max(len(crops), 1)
    return EmulatorResult(
        pred,
        list(spikes / n),
        float(np.mean(energies) * 1e6),
        float(np.mean(dyn) * 1e6),
        1e3 * elapsed / n,
        float(np.mean(synops)),
    )


def modelled_energy(
    params: SnnParams, input_counts: np.ndarray, layer_counts: list[np.ndarray]
) -> float:
    """Mean modelled energy (uJ/face) from per-face, per-neuron spike counts (n, neurons)."""
    counter = ActivityCounter(params)
    model = LoihiEnergyModel()
    total = 0.0
    for f in range(len(input_counts)):
        act = counter.count(input_counts[f], tuple(c[f] for c in layer_counts), params.timesteps)
        total += model.breakdown(act).total
    return 1e6 * total / max(len(input_counts), 1)
