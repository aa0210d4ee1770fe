"""Loihi-aware training of the Loihi CNN in PyTorch (NengoDL's LoihiSpikingRectifiedLinear
method without TensorFlow) and its conversion to an SNN parameter file.

Units. Everything here is in *threshold units*: a hidden neuron's pre-activation ``z`` is
the drive it receives per timestep as a fraction of its firing threshold, and its
activation is its spike count divided by the presentation's ``T`` steps. With
``max_rate * dt = 1`` (1000 Hz at dt = 1 ms) and every layer scale fixed to 1, the SNN's
weights are the CNN's (times ``max_rate``, see :func:`to_snn_params`), so what is trained
is what runs; no data-based normalisation is needed afterwards.

The neuron (Loihi 1, nengo-loihi's emulator, :mod:`fer_ros.snn.neurons`): no leak, the
membrane is reset *to zero* after a spike and a spike needs ``v > 1``, so under a constant
drive ``u`` it fires every ``floor(1/u) + 1`` steps, i.e. ``T`` steps give
``floor(T / (floor(1/u) + 1))`` spikes. :class:`LoihiRate` uses that staircase in the
forward pass and the smooth ``u / (1 + u/2)`` (the staircase's mid-line) for the gradient.

Three stages (:func:`train_loihi_aware`):

1. *rate* training: a :class:`~fer_ros.training.model.FerCnn` (stride-2 downsampling,
   batchnorm) whose ReLUs are :class:`LoihiRate`; batchnorm is then folded into the conv
   weights and a per-channel bias, which the builder applies as a neuron bias current
   (Loihi has no connection biases, but every compartment has a bias);
2. *spike-in-the-loop* fine-tuning of the folded network (:class:`FoldedNet`) with weights
   under the builder's 8-bit quantisation: the forward pass is a time-stepped simulation
   of the emulator's neuron (:func:`simulate`), the backward pass goes through each
   layer's rate model fed with the simulated counts (tandem learning, Wu et al. 2021);
3. conversion (:func:`to_snn_params`) to the existing SNN file format, then evaluation in
   nengo-loihi's emulator (:func:`emulator_predict`).

Building blocks for the search: :func:`fold_avgpool_into_conv` (2x2 average pooling
folded into the following conv as a 4x4 / stride-2 kernel...), :func:`snn_cost` (neurons,
cores with automatic block shapes, synapse memory, modelled energy from counts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from fer_ros.training import graph
from fer_ros.training.model import ArchConfig, FerCnn

if TYPE_CHECKING:
    from fer_ros.core.model_card import CannySettings
    from fer_ros.snn.params import SnnParams

MAX_RATE = 1000.0  # Hz; max_rate * dt = 1 spike per step, so threshold units = CNN units
DT = 0.001
INPUT_DELAY = 1  # the encoder train reaches conv0 one step later (matches the emulator exactly)
VMIN = -64.0  # membrane floor in thresholds (IntegratingRectifiedLinear)
VMIN_ABS = 64.0


# --------------------------------------------------------------------------- neuron


def staircase(u: torch.Tensor, timesteps: int, window: int | None = None) -> torch.Tensor:
    """Spikes per step of a reset-to-zero IF neuron at constant drive ``u``, over T steps.

    ``window`` (default T): the steps in which the layer's input actually arrives (T minus
    its delay); the layer's total charge ``T * u`` then falls into that window, so the
    count is ``floor(window * stair(u * T / window))``, still divided by T.
    """
    steps = int(timesteps)
    win = steps if window is None else int(window)
    if 0 < win < steps:
        u = u * (steps / win)
    pos = u > 0
    period = torch.floor(1.0 / torch.where(pos, u, torch.ones_like(u))) + 1.0
    rate = torch.where(pos, 1.0 / period, torch.zeros_like(u))
    if steps > 0:
        rate = torch.floor(rate * win + 1e-6) / steps
    return rate


def smooth_window(u: torch.Tensor, timesteps: int, window: int | None = None) -> torch.Tensor:
    """:func:`smooth_rate` with the same delay window as :func:`staircase`."""
    steps = int(timesteps)
    win = steps if window is None else int(window)
    if 0 < win < steps:
        return smooth_rate(u * (steps / win)) * (win / steps)
    return smooth_rate(u)


def layer_windows(n_hidden: int, timesteps: int, delay: float) -> list[int]:
    """Steps of input each hidden layer integrates: ``T - delay * (l + 1)`` (>= 1)."""
    return [max(1, round(timesteps - delay * (i + 1))) for i in range(n_hidden)]


def smooth_rate(u: torch.Tensor) -> torch.Tensor:
    """Differentiable mid-line of the staircase: ``u / (1 + u/2)``, flat above u = 2."""
    u = torch.clamp(u, 0.0, 2.0)
    return u / (1.0 + 0.5 * u)


class LoihiRate(nn.ReLU):
    """ReLU replacement with Loihi's rate in the forward pass (``mode``):

    * ``"relu"``: plain ReLU (pretraining, and what the ONNX export computes);
    * ``"rate"``: the T-step staircase, gradient of :func:`smooth_rate`;
    * ``"smooth"``: :func:`smooth_rate` itself.

    Subclasses ``nn.ReLU`` so that :func:`fer_ros.training.graph.fold` still recognises it.
    """

    def __init__(self, timesteps: int = 50, mode: str = "rate", window: int | None = None) -> None:
        super().__init__()
        self.timesteps = int(timesteps)
        self.mode = mode
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "relu":
            return F.relu(x)
        smooth = smooth_window(x, self.timesteps, self.window)
        if self.mode == "smooth":
            return smooth
        return smooth + (staircase(x, self.timesteps, self.window) - smooth).detach()

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}, window={self.window}, mode={self.mode}"


def loihi_cnn(
    cfg: ArchConfig, n_classes: int, timesteps: int, mode: str = "rate", delay: float = 0.0
) -> FerCnn:
    """A :class:`FerCnn` whose hidden ReLUs are :class:`LoihiRate` (layer ``l`` integrating
    ``T - delay * (l + 1)`` steps of input)."""
    model = FerCnn(cfg, n_classes)
    mods = list(model.net)
    hidden = [i for i, m in enumerate(mods) if type(m) is nn.ReLU]
    windows = layer_windows(len(hidden), timesteps, delay)
    for i, w in zip(hidden, windows, strict=True):
        mods[i] = LoihiRate(timesteps, mode, w if delay > 0 else None)
    model.net = nn.Sequential(*mods)
    return model


def set_mode(model: nn.Module, mode: str) -> None:
    for m in model.modules():
        if isinstance(m, LoihiRate):
            m.mode = mode


# --------------------------------------------------------------------------- quantisation


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


# --------------------------------------------------------------------------- folded net


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
        step ``hidden``), 23.6 pJ per synaptic op (fer_ros.snn.energy)."""
        fans = self.fan_outs()
        total = torch.zeros(())
        for i, a in enumerate(hidden):
            total = total + a.flatten(1).sum(1).mean() * self.timesteps * fans[i + 1]
        return total * 23.6e-12 * 1e6

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


# --------------------------------------------------------------------------- discretisation

VTH_MAX = (2**17 - 1) * 2**6  # nengo_loihi.builder.discretize
BIAS_MAX = (2**12 - 1) * 2**7
Q_BITS, U_BITS = 21, 23


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


def _discretise_block(w: np.ndarray, b: np.ndarray, vth: float, vmin: float) -> tuple:
    """nengo-loihi 1.1 ``discretize_compartment`` + ``discretize_weights`` for a block of
    non-decaying (synapse=None) IF neurons with one synapse; float64 SNN units in."""
    w_max = float(np.abs(w).max())
    mixed = bool((w > 0).any() and (w < 0).any())
    shift = 1 if mixed else 0
    m = 2 ** (8 - shift) - 1
    if w_max <= 1e-8:
        raise ValueError("a block without weights is not supported here")
    w_scale = 255.0 / w_max
    for w_exp in range(0, -8, -1):
        v_scale = w_scale * 2.0 ** (6 + w_exp) * _current_scale()
        vth_r = np.round(vth * v_scale)
        bias_r = np.round(b * v_scale)
        if vth_r <= VTH_MAX and np.all(np.abs(bias_r) <= BIAS_MAX):
            break
    else:
        raise ValueError("no weight exponent fits")
    vth_int = np.round(vth_r / 2**6) * 2**6
    r = np.maximum(np.abs(bias_r) / (2**12 - 1), 1)
    bexp = np.ceil(np.log2(r))
    bias_int = np.round(bias_r / 2**bexp) * 2**bexp
    q = np.clip(np.round(w * w_scale / 2.0**shift), -m, m)
    s2 = shift + w_exp
    if s2 < 0:
        q = np.clip(np.round(q * 2.0**s2) / 2.0**s2, -m, m)
        q = np.floor(q * 2.0**s2)  # the right shift
        w_int = q * 2**6
    else:
        w_int = q * 2.0**s2 * 2**6
    vmin_s = v_scale * vmin
    vmine = np.clip(np.round(np.log2(-vmin_s + 1)), 0, 2**5 - 1)
    return w_int, bias_int, vth_int, -(2.0**vmine) + 1


_S_SCALE: list[float] = []


def _current_scale() -> float:
    """``1 / u_infactor`` of a current that lasts one step (decay_u 4094 after
    discretisation), from nengo-loihi's own ``decay_magnitude``: 1.000244."""
    if not _S_SCALE:
        try:
            import warnings

            from nengo_loihi.builder.discretize import decay_magnitude

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mag = decay_magnitude(np.array([4094.0]), x0=2097152, offset=1)
            _S_SCALE.append(float(mag[0]))
        except ImportError:
            _S_SCALE.append(1.0002437674)
    return _S_SCALE[0]


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
            w_int, b_int, vth_int, vmin_int = _discretise_block(
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


def _wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """nengo-loihi's ``overflow_signed`` on int tensors: wrap to ``bits`` bits plus sign."""
    lim = 2**bits
    return ((x + lim) & (2 * lim - 1)) - lim


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
    vmax = 2**23 - 1
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
                carry = carry + _wrap(q.round().int(), Q_BITS)
            cur[i] = _wrap(carry, U_BITS)
            vi = v[i] + _wrap(cur[i] + bias[i], U_BITS)
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


# --------------------------------------------------------------------------- simulation


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


# --------------------------------------------------------------------------- conversion


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
    over ``horizon_factor * T`` steps).
    """
    from fer_ros.snn.convert import _default_names, choose_block_shape
    from fer_ros.snn.params import SnnLayer, SnnParams

    steps = int(timesteps or net.timesteps)
    layers = net.graph_layers()
    spec = graph.to_cnn_spec(layers, (1, *calibration.shape[2:]))
    with torch.no_grad():
        cal = torch.from_numpy(np.ascontiguousarray(calibration, np.float32))
        logits = net.rate_forward(cal).numpy()
    offset = max(0.0, -float(np.quantile(logits.max(axis=1), offset_quantile)))
    shifted = logits + offset
    positive = shifted[shifted > 0]
    out_scale = float(np.percentile(positive, 99.9)) if positive.size else 1.0
    out_scale *= 2.0 * MAX_RATE * DT * horizon_factor * steps
    names = _default_names(spec)
    shape: tuple[int, ...] = tuple(spec.input_shape)
    snn_layers = []
    for i, lay in enumerate(layers):
        last = i == len(layers) - 1
        scale = out_scale if last else 1.0
        bias = lay.bias.astype(np.float64) + (offset if last else 0.0)
        out_shape = tuple(int(s) for s in lay.out_shape)
        snn_layers.append(
            SnnLayer(
                name=names[i],
                kind=lay.kind,
                weights=(lay.weights.astype(np.float64) * MAX_RATE / scale).astype(np.float32),
                bias=(bias * MAX_RATE / scale).astype(np.float32),
                input_shape=shape,
                output_shape=out_shape,
                rate_scale=scale,
                block_shape=(
                    net.block_shapes[i]
                    if net.block_shapes
                    else choose_block_shape(out_shape, n_inputs=int(np.prod(shape)))
                ),
                stride=lay.stride,
                padding=lay.padding,
            )
        )
        shape = out_shape
    params = SnnParams(
        model_id=model_id,
        input_shape=tuple(spec.input_shape),  # type: ignore[arg-type]
        layers=tuple(snn_layers),
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
    )
    params.validate()
    return params


def block_shapes_of(params: SnnParams) -> list[tuple[int, ...]]:
    return [tuple(lay.block_shape) for lay in params.layers]


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


# --------------------------------------------------------------------------- emulator


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
    from fer_ros.core.spike_encoding import EncodingSettings, encode
    from fer_ros.snn.activity import ActivityCounter
    from fer_ros.snn.energy import LoihiEnergyModel
    from fer_ros.snn.runner import SnnRunner

    steps = int(timesteps or params.timesteps)
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
        if hasattr(runner, "run_batch"):  # the layered emulator: many faces per call
            for b in range(0, len(crops), 32):
                trains = np.stack([encode(c[0], settings) for c in crops[b : b + 32]])
                shown_all.extend(runner.run_batch(trains))
        else:
            shown_all = [runner.run(encode(c[0], settings)) for c in crops]
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
    from fer_ros.snn.activity import ActivityCounter
    from fer_ros.snn.energy import LoihiEnergyModel

    counter = ActivityCounter(params)
    model = LoihiEnergyModel()
    total = 0.0
    for f in range(len(input_counts)):
        act = counter.count(input_counts[f], tuple(c[f] for c in layer_counts), params.timesteps)
        total += model.breakdown(act).total
    return 1e6 * total / max(len(input_counts), 1)


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


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class AwareSettings:
    """Loihi-aware training recipe (on top of the usual CNN recipe's choices)."""

    preprocessing: str = "canny"
    timesteps: int = 50
    epochs: int = 60  # stage 1, rate model
    smooth_epochs: float = 0.0  # fraction of stage 1 trained with the smooth rate first
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    mixup_alpha: float = 0.0
    augment: bool = True
    finetune_epochs: int = 4  # stage 2, simulated spikes in the loop
    finetune_lr: float = 3e-4
    finetune_batch: int = 32
    finetune_energy_weight: float = 0.0  # loss per uJ of synaptic energy (simulated spikes)
    energy_weight: float = 0.0  # loss per uJ of modelled synaptic energy (rate model)
    delay: float = 0.0  # steps of latency per layer in the rate model (0: none)
    energy_target_uj: float = 0.0  # the energy terms only charge synaptic uJ above this
    stage1_mode: str = "rate"  # "relu": ordinary CNN first, then normalised (see normalise)
    gain: float = 0.5  # normalise: drive (thresholds/step) at the percentile activation
    percentile: float = 99.9
    rate_epochs: int = 0  # stage 1b: rate-model (staircase) fine-tuning of the folded net
    distill: float = 0.0  # stage 2: weight of the KL to the stage-1 CNN's (ReLU) logits
    distill_temp: float = 2.0  # 0: match logits (MSE) instead of softened probabilities
    finetune_augment: bool = True
    exact: bool = True  # stage 2 simulates the emulator's integers (simulate_exact)
    class_weight_power: float = 1.0  # fit.class_weights: 1 balanced, 0.5 square root
    camera_augment: bool = False  # augment.ROBOT_CAMERA on top of the usual augmentation
    finetune_subset: int = 0  # stage 2 on this many seeded samples (0: all); CPU cost
    device: str = "cpu"  # stage 1 may train on a GPU; stage 2 and conversion run on CPU
    stage1_checkpoint: str = ""  # a saved stage-1 CNN (--stage1-only) instead of training
    seed: int = 0
    progress: bool = False


def _fan_outs(model_layers: list[graph.Layer]) -> list[float]:
    """Mean structural fan-out of each layer's *input* neurons into that layer."""
    fans = []
    for lay in model_layers:
        if lay.kind == "conv":
            o, _, kh, kw = lay.weights.shape
            fans.append(o * kh * kw / (lay.stride**2))
        else:
            fans.append(float(lay.weights.shape[0]))
    return fans


def _loss_fn(labels: np.ndarray, n_classes: int, smoothing: float, power: float = 1.0) -> nn.Module:
    from fer_ros.training.fit import class_weights

    return nn.CrossEntropyLoss(
        weight=class_weights(labels, n_classes, power), label_smoothing=smoothing
    )


def _epoch_inputs(
    images: np.ndarray, s: AwareSettings, canny: CannySettings, rng: np.random.Generator
) -> torch.Tensor:
    from fer_ros.core.preprocessing import preprocess_crops
    from fer_ros.training.augment import ROBOT_CAMERA, AugmentSettings, augment_crops

    settings = AugmentSettings(**(ROBOT_CAMERA if s.camera_augment else {}))
    crops = augment_crops(images, rng, settings) if s.augment else images
    return torch.from_numpy(preprocess_crops(crops, s.preprocessing, canny))


def train_rate(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: ArchConfig,
    s: AwareSettings,
    canny: CannySettings,
) -> FerCnn:
    """Stage 1: the CNN with :class:`LoihiRate` activations (batchnorm still separate)."""
    from torch.optim.swa_utils import update_bn

    from fer_ros.core.preprocessing import preprocess_crops
    from fer_ros.training.fit import seed_everything

    seed_everything(s.seed)
    rng = np.random.default_rng(s.seed)
    first = (
        s.stage1_mode if s.stage1_mode != "rate" else ("smooth" if s.smooth_epochs > 0 else "rate")
    )
    dev = torch.device(s.device)
    model = loihi_cnn(cfg, n_classes, s.timesteps, first, s.delay).to(dev)
    loss_fn = _loss_fn(labels, n_classes, s.label_smoothing, s.class_weight_power).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    per_epoch = int(np.ceil(len(labels) / s.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, s.lr, total_steps=max(s.epochs * per_epoch, 1))
    y_all = torch.from_numpy(labels).to(dev)
    fans = None
    for epoch in range(s.epochs):
        if (
            s.stage1_mode == "rate"
            and s.smooth_epochs > 0
            and epoch == int(s.smooth_epochs * s.epochs)
        ):
            set_mode(model, "rate")
        model.train()
        x_all = _epoch_inputs(images, s, canny, rng).to(dev)
        order = torch.from_numpy(rng.permutation(len(labels))).to(dev)
        for start in range(0, len(labels), s.batch_size):
            idx = order[start : start + s.batch_size]
            if len(idx) < 2:
                continue
            x, y = x_all[idx], y_all[idx]
            opt.zero_grad()
            if s.mixup_alpha > 0:
                lam = float(rng.beta(s.mixup_alpha, s.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(len(y))).to(dev)
                out = model(lam * x + (1 - lam) * x[perm])
                loss = lam * loss_fn(out, y) + (1 - lam) * loss_fn(out, y[perm])
            else:
                out = model(x)
                loss = loss_fn(out, y)
            if s.energy_weight > 0:
                if fans is None:
                    fans = _fan_outs(graph.fold(model))
                excess = F.relu(_synaptic_uj(model, x, fans, s.timesteps) - s.energy_target_uj)
                loss = loss + s.energy_weight * excess
            loss.backward()
            opt.step()
            sched.step()
    clean = torch.from_numpy(preprocess_crops(images, s.preprocessing, canny))
    update_bn([clean[i : i + 64] for i in range(0, len(clean), 64)], model, device=dev)
    return model.cpu().eval()


def load_stage1(path: str, cfg: ArchConfig, n_classes: int, s: AwareSettings) -> FerCnn:
    """A stage-1 CNN saved by ``--stage1-only`` (e.g. trained on a GPU machine)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    model = loihi_cnn(cfg, n_classes, s.timesteps, "relu", s.delay)
    model.load_state_dict(data["state_dict"])
    return model.eval()


def _synaptic_uj(model: FerCnn, x: torch.Tensor, fans: list[float], timesteps: int) -> torch.Tensor:
    """Rate-model synaptic energy per face (uJ) of the hidden layers' spikes."""
    total = torch.zeros(())
    h = x
    j = 0
    for m in model.net:
        h = m(h)
        if isinstance(m, LoihiRate):
            j += 1
            if j < len(fans):
                total = total + h.flatten(1).sum(1).mean() * timesteps * fans[j]
    return total * 23.6e-12 * 1e6


def finetune_spiking(
    net: FoldedNet,
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    s: AwareSettings,
    canny: CannySettings,
) -> FoldedNet:
    """Stage 2: simulated spikes forward, rate model backward, quantised weights; with
    ``s.distill`` the loss also pulls the SNN's read-out towards the stage-1 CNN's logits
    (knowledge distillation), so that the SNN agrees with the CNN it came from."""
    if s.finetune_epochs <= 0:
        return net
    import copy

    teacher = copy.deepcopy(net) if s.distill > 0 else None
    rng = np.random.default_rng(s.seed + 1)
    loss_fn = _loss_fn(labels, n_classes, s.label_smoothing, s.class_weight_power)
    if 0 < s.finetune_subset < len(labels):
        keep = np.sort(rng.permutation(len(labels))[: s.finetune_subset])
        images, labels = images[keep], labels[keep]
    opt = torch.optim.Adam(net.parameters(), lr=s.finetune_lr)
    per_epoch = int(np.ceil(len(labels) / s.finetune_batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(s.finetune_epochs * per_epoch, 1))
    y_all = torch.from_numpy(labels)
    for _ in range(s.finetune_epochs):
        x_all = _epoch_inputs(
            images, replace(s, augment=s.augment and s.finetune_augment), canny, rng
        )
        order = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(labels), s.finetune_batch):
            idx = order[start : start + s.finetune_batch]
            x, y = x_all[idx], y_all[idx]
            sim = simulate_exact if s.exact else simulate
            counts, readout = sim(net, encode_rate(x, net.timesteps))
            opt.zero_grad()
            out, hidden = net.rate_forward(x, counts, readout, return_hidden=True)
            loss = loss_fn(out, y)
            if teacher is not None:
                with torch.no_grad():
                    target = F.softmax(
                        teacher.rate_forward(x, mode="relu") / max(s.distill_temp, 1e-6), 1
                    )
                    logits = teacher.rate_forward(x, mode="relu")
                if s.distill_temp > 0:
                    kl = F.kl_div(
                        F.log_softmax(out / s.distill_temp, 1), target, reduction="batchmean"
                    )
                    loss = (1 - s.distill) * loss + s.distill * s.distill_temp**2 * kl
                else:  # logit matching (read-out / T against the CNN's logits)
                    loss = (1 - s.distill) * loss + s.distill * F.mse_loss(out, logits)
            if s.finetune_energy_weight > 0:
                excess = F.relu(net.synaptic_uj(hidden) - s.energy_target_uj)
                loss = loss + s.finetune_energy_weight * excess
            loss.backward()
            opt.step()
            sched.step()
    return net


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


def finetune_rate(
    net: FoldedNet,
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    s: AwareSettings,
    canny: CannySettings,
) -> FoldedNet:
    """Stage 1b: the folded, quantised net trained with the staircase rate model."""
    if s.rate_epochs <= 0:
        return net
    rng = np.random.default_rng(s.seed + 2)
    loss_fn = _loss_fn(labels, n_classes, s.label_smoothing)
    opt = torch.optim.Adam(net.parameters(), lr=s.finetune_lr)
    y_all = torch.from_numpy(labels)
    for _ in range(s.rate_epochs):
        x_all = _epoch_inputs(images, s, canny, rng)
        order = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(labels), s.batch_size):
            idx = order[start : start + s.batch_size]
            opt.zero_grad()
            out, hidden = net.rate_forward(x_all[idx], return_hidden=True)
            loss = loss_fn(out, y_all[idx])
            if s.finetune_energy_weight > 0:
                excess = F.relu(net.synaptic_uj(hidden) - s.energy_target_uj)
                loss = loss + s.finetune_energy_weight * excess
            loss.backward()
            opt.step()
    return net


def fold_model(model: FerCnn, timesteps: int, delay: float = 0.0) -> FoldedNet:
    layers = graph.fold(model.eval())
    return FoldedNet(layers, timesteps, quantise=True, delay=delay)


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
class AwareModel:
    cfg: ArchConfig
    settings: AwareSettings
    cnn: FerCnn  # stage-1 model (batchnorm, LoihiRate)
    net: FoldedNet  # folded, fine-tuned, quantised on-chip network
    stage1_net: FoldedNet = field(repr=False, default=None)  # type: ignore[assignment]


def train_loihi_aware(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: ArchConfig,
    s: AwareSettings,
    canny: CannySettings | None = None,
    calibration: np.ndarray | None = None,
) -> AwareModel:
    """Stages 1 and 2 on uint8 crops (n, 48, 48) with labels; returns the model."""
    import copy

    from fer_ros.core.model_card import CannySettings

    canny = canny or CannySettings()
    cnn = (
        load_stage1(s.stage1_checkpoint, cfg, n_classes, s)
        if s.stage1_checkpoint
        else train_rate(images, labels, n_classes, cfg, s, canny)
    )
    net = fold_model(cnn, s.timesteps, s.delay)
    if calibration is None:
        from fer_ros.core.preprocessing import preprocess_crops

        calibration = preprocess_crops(images[:256], s.preprocessing, canny)
    if s.stage1_mode == "relu":
        normalise(net, calibration, s.percentile, s.gain)
    net.set_block_shapes(
        block_shapes_of(auto_block_shapes(to_snn_params(net, "probe", calibration)))
    )
    net = finetune_rate(net, images, labels, n_classes, s, canny)
    stage1 = copy.deepcopy(net)
    net = finetune_spiking(net, images, labels, n_classes, s, canny)
    return AwareModel(cfg, s, cnn, net, stage1)


# --------------------------------------------------------------------------- block shapes


def block_candidates(shape: tuple[int, ...], limit: int = 1024) -> list[tuple[int, ...]]:
    """Block shapes of a conv layer (C, H, W) in the converter's order of preference
    (fewest cores, exact tilings, whole channels, wide blocks); dense: (n,) splits."""
    if len(shape) == 1:
        n = shape[0]
        return [(-(-n // k),) for k in range(1, n + 1) if -(-n // k) <= limit]
    c, h, w = shape
    keyed = []
    for bc in range(1, c + 1):
        for bh in range(1, h + 1):
            for bw in range(1, w + 1):
                if bc * bh * bw > limit:
                    break
                blocks = -(-c // bc) * -(-h // bh) * -(-w // bw)
                uneven = (c % bc != 0) + (h % bh != 0) + (w % bw != 0)
                keyed.append(((blocks, uneven, -bc, -(bh * bw)), (bc, bh, bw)))
    keyed.sort()
    return [b for _, b in keyed]


def auto_block_shapes(params: SnnParams, max_tries: int = 40) -> SnnParams:
    """Block shapes that nengo-loihi's builder validates (neurons, input/output axons and
    synapse memory per core), found by building the network and, for the block named in a
    ``BuildError``, moving that layer to its next shape with more cores."""
    import warnings

    import nengo_loihi
    from nengo.exceptions import BuildError

    from fer_ros.snn.builder import build_network

    names = [lay.name for lay in params.layers]
    cands = {}
    for _ in range(max_tries):
        net = build_network(params)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sim = nengo_loihi.Simulator(
                    net.network, dt=params.dt, precompute=True, target="sim"
                )
            sim.close()
            return params
        except BuildError as exc:
            msg = str(exc)
            hit = [n for n in names if f"'{n}'" in msg]
            if not hit:
                raise
            i = names.index(hit[0])
            lay = params.layers[i]
            options = cands.setdefault(i, block_candidates(tuple(lay.output_shape)))
            now = lay.n_blocks
            nxt = next(
                b
                for b in options
                if int(np.prod([-(-n // k) for n, k in zip(lay.output_shape, b, strict=True)]))
                > now
            )
            layers = list(params.layers)
            layers[i] = replace(lay, block_shape=nxt)
            params = replace(params, layers=tuple(layers))
    raise RuntimeError("no valid block shapes found")


# --------------------------------------------------------------------------- CLI


def _evaluate_fold(
    m: AwareModel, x: np.ndarray, y: np.ndarray, params: SnnParams
) -> dict[str, Any]:
    """CNN (ReLU stage 1) and SNN (emulator) predictions on one set of crops."""
    with torch.no_grad():
        set_mode(m.cnn, "relu")
        cnn = m.cnn(torch.from_numpy(x)).argmax(1).numpy()
    emu = emulator_predict(params, x, params.timesteps)
    return {"cnn": cnn, "snn": emu.predictions, "emu": emu}


def cross_validate_snn(
    ds: Any, cfg: ArchConfig, s: AwareSettings, folds: int, canny: CannySettings | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Group k-fold CV of the CNN and of its Loihi-aware SNN run in the emulator.

    ``ds`` is a :class:`~fer_ros.training.data.FaceDataset` (the development split). Returns
    (CNN block, SNN block) in the format of :func:`fer_ros.training.fit.cross_validate`; the
    SNN block adds agreement with the CNN, modelled energy per face, emulator ms per face
    and cores. This is the objective the Loihi search should maximise.
    """
    from fer_ros.core.model_card import CannySettings
    from fer_ros.core.preprocessing import preprocess_crops
    from fer_ros.training.metrics import summary
    from fer_ros.training.splits import assert_group_disjoint, group_kfold

    canny = canny or CannySettings()
    x = preprocess_crops(ds.images, s.preprocessing, canny)
    acc: dict[str, list[float]] = {"cnn": [], "snn": []}
    pooled: dict[str, tuple[list, list]] = {"cnn": ([], []), "snn": ([], [])}
    agree, energy, ms, cores = [], [], [], 0
    for k, (tr, te) in enumerate(group_kfold(ds.labels, ds.groups, folds, s.seed)):
        assert_group_disjoint(ds.groups, tr, te)
        m = train_loihi_aware(
            ds.images[tr], ds.labels[tr], len(ds.classes), cfg, s, canny, x[tr][:256]
        )
        params = to_snn_params(m.net, "cv", x[tr][:256])
        cores = params.n_cores
        r = _evaluate_fold(m, x[te], ds.labels[te], params)
        for key in ("cnn", "snn"):
            acc[key].append(float(np.mean(r[key] == ds.labels[te])))
            pooled[key][0].append(ds.labels[te])
            pooled[key][1].append(r[key])
        agree.append(float(np.mean(r["cnn"] == r["snn"])))
        energy.append(r["emu"].energy_uj)
        ms.append(r["emu"].ms_per_face)
        if s.progress:
            print(f"fold {k + 1}/{folds}: CNN {acc['cnn'][-1]:.3f} SNN {acc['snn'][-1]:.3f}")

    def block(key: str) -> dict[str, Any]:
        return {
            "folds": folds,
            "fold_accuracy": [round(a, 4) for a in acc[key]],
            "accuracy_mean": round(float(np.mean(acc[key])), 4),
            "accuracy_std": round(float(np.std(acc[key])), 4),
            "pooled": summary(
                np.concatenate(pooled[key][0]), np.concatenate(pooled[key][1]), ds.classes
            ),
        }

    snn = {
        **block("snn"),
        "target": "nengo-loihi emulator",
        "agreement_with_cnn_mean": round(float(np.mean(agree)), 4),
        "modelled_energy_uj_per_face_mean": round(float(np.mean(energy)), 2),
        "emulator_ms_per_face_mean": round(float(np.mean(ms)), 2),
        "cores": cores,
    }
    return block("cnn"), snn


def search_objective(
    snn_cv: dict[str, Any],
    energy_budget_uj: float = 100.0,
    energy_cost: float = 0.5,
    core_cost: float = 0.01,
) -> float:
    """SNN CV accuracy (emulator) minus costs: ``energy_cost`` times the fraction by which
    the modelled energy per face exceeds the budget (0.5: -5 points at 10 % over), and
    ``core_cost`` per chip's worth (128) of cores."""
    e = float(snn_cv["modelled_energy_uj_per_face_mean"])
    over = max(0.0, e / energy_budget_uj - 1.0)
    return float(snn_cv["accuracy_mean"]) - energy_cost * over - core_cost * snn_cv["cores"] / 128


def run_card(
    data: str,
    cfg: ArchConfig,
    s: AwareSettings,
    model_id: str,
    out_dir: Any,
    folds: int = 5,
    test_fraction: float = 0.2,
    workdir: Any = None,
    description: str = "",
) -> Any:
    """Loihi-aware counterpart of :func:`fer_ros.training.pipeline.run`: group-disjoint
    hold-out, k-fold CV of CNN *and* emulated SNN, final model on all development data,
    held-out evaluation, then ``<id>_cnn.npz``, ``<id>.onnx``, ``<id>_snn.npz``, the card
    (``<id>.json``/``.md``) and the confusion PNGs in ``out_dir``."""
    from pathlib import Path

    from fer_ros.core.cnn_spec import save_cnn_spec
    from fer_ros.core.model_card import CannySettings, ModelCard
    from fer_ros.core.preprocessing import preprocess_crops
    from fer_ros.snn.convert import file_digest
    from fer_ros.snn.evaluate import evaluate
    from fer_ros.snn.params import save_snn_params
    from fer_ros.training.card import write_card
    from fer_ros.training.data import load_dataset
    from fer_ros.training.export import agreement, onnx_runner, spec_runner
    from fer_ros.training.loihi import loihi_report
    from fer_ros.training.metrics import save_confusion_png, summary_by_domain
    from fer_ros.training.onnx_export import onnx_ops, save_onnx
    from fer_ros.training.pipeline import (
        LICENCE,
        dataset_names,
        describe_layers,
        split_dataset,
    )

    started = time.time()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    canny = CannySettings()
    ds = load_dataset(data)
    dev, test, split = split_dataset(ds, test_fraction, s.seed)
    if s.stage1_checkpoint:
        saved = torch.load(s.stage1_checkpoint, map_location="cpu", weights_only=True)
        if saved["test_groups_sha1"] != split["test_groups_sha1"]:
            raise ValueError(f"{s.stage1_checkpoint}: trained on another split of {data}")
    x_dev = preprocess_crops(dev.images, s.preprocessing, canny)
    x_test = preprocess_crops(test.images, s.preprocessing, canny)
    n_classes = len(ds.classes)
    extra: dict[str, Any] = {"description": description} if description else {}
    cv_snn: dict[str, Any] = {}
    if folds >= 2:
        extra["cross_validation"], cv_snn = cross_validate_snn(
            dev, cfg, replace(s, progress=True), folds, canny
        )
    m = train_loihi_aware(dev.images, dev.labels, n_classes, cfg, s, canny, x_dev[:256])
    layers = graph.fold(m.cnn.eval())
    spec = graph.to_cnn_spec(layers, (1, *ds.images.shape[1:]))
    files = {
        "cnn_spec": f"{model_id}_cnn.npz",
        "onnx": f"{model_id}.onnx",
        "snn": f"{model_id}_snn.npz",
    }
    save_cnn_spec(spec, str(out_dir / files["cnn_spec"]))
    save_onnx(layers, (1, *ds.images.shape[1:]), out_dir / files["onnx"])
    with torch.no_grad():
        set_mode(m.cnn, "relu")
        ref = m.cnn(torch.from_numpy(x_test)).numpy()
    export_agreement = {
        "cnn_spec": {
            "runtime": "numpy/torch reference",
            **agreement(spec_runner(out_dir / files["cnn_spec"]), x_test, ref, test.labels),
        },
        "onnx": {
            "runtime": "onnxruntime",
            **agreement(onnx_runner(out_dir / files["onnx"]), x_test, ref, test.labels),
        },
    }
    params = to_snn_params(
        m.net,
        model_id,
        x_dev[:256],
        extra={"cnn_spec_sha1": file_digest(out_dir / files["cnn_spec"])},
    )
    save_snn_params(params, out_dir / files["snn"])
    held = summary_by_domain(test.labels, ref.argmax(1), ds.classes, test.domains)
    png = f"{model_id}_confusion.png"
    save_confusion_png(
        np.asarray(held["confusion_matrix"]),
        ds.classes,
        out_dir / png,
        f"{model_id} CNN held-out n={held['n']} acc={held['accuracy']:.3f}",
    )
    ev = evaluate(params, spec, x_test, test.labels, params.timesteps)
    emu = emulator_predict(params, x_test, params.timesteps)
    held_snn = summary_by_domain(test.labels, emu.predictions, ds.classes, test.domains)
    snn_png = f"{model_id}_snn_confusion.png"
    save_confusion_png(
        np.asarray(held_snn["confusion_matrix"]),
        ds.classes,
        out_dir / snn_png,
        f"{model_id} SNN (emulator) held-out n={held_snn['n']} acc={held_snn['accuracy']:.3f}",
    )
    report = loihi_report(cfg, layers)
    # batchnorm folds into conv weights and per-channel biases, which the builder applies as
    # neuron bias currents (every compartment has one): not connection biases
    report["violations"] = [
        v for v in report["violations"] if "batchnorm" not in v and "biases" not in v
    ]
    report["fits_one_chip"] = not report["violations"]
    report["biases"] = (
        "batchnorm folded into conv weights and a per-channel neuron bias current "
        "(no connection biases); output bias applied at the read-out"
    )
    report["cores_total_built"] = params.n_cores
    report["cores_per_layer_built"] = [lay.n_blocks for lay in params.layers]
    extra.update(
        {
            "architecture": {
                "name": cfg.name,
                "config": cfg.to_json(),
                "layers": describe_layers(layers),
                "parameters": graph.count_params(layers),
                "macs": graph.count_macs(layers),
                "neurons_per_layer": graph.neurons_per_layer(layers),
            },
            "data": {
                "dataset": dataset_names(data),
                "samples": len(ds),
                "groups": int(np.unique(ds.groups).size),
                "class_counts": dict(
                    zip(
                        ds.classes,
                        np.bincount(ds.labels, minlength=n_classes).tolist(),
                        strict=True,
                    )
                ),
                "subset": None,
                "split": split,
            },
            "held_out": held,
            "confusion_png": png,
            "export_notes": {
                "cnn_spec": {
                    "layout": "PyTorch (out, in, kh, kw); dense input flattened C,H,W",
                    "biases": "batchnorm folded: conv biases are neuron bias currents on Loihi",
                },
                "onnx": {
                    "layout": "NCHW float32, dynamic batch",
                    "opset": 13,
                    "ops": onnx_ops(out_dir / files["onnx"]),
                },
            },
            "export_agreement": export_agreement,
            "training": {
                "recipe": "loihi-aware (fer_ros.training.loihi_aware): CNN, batchnorm folded, "
                "data-based "
                "normalisation, then spikes-in-the-loop fine-tuning on the integer-exact emulator",
                **{k: v for k, v in asdict_settings(s).items()},
                "wall_time_s": round(time.time() - started, 1),
            },
            "licence": LICENCE,
            "loihi": report,
            "snn": {
                "file": files["snn"],
                "max_rate_hz": params.max_rate,
                "input_rate_hz": params.input_rate,
                "timesteps": params.timesteps,
                "dt": params.dt,
                "percentile": s.percentile,
                "cores": params.n_cores,
                "cores_per_layer": [lay.n_blocks for lay in params.layers],
                "block_shapes": [list(lay.block_shape) for lay in params.layers],
                "conversion": "loihi-aware: SNN weights fine-tuned with the "
                "emulator's own spikes in "
                "the forward pass; CNN = the stage-1 network (cnn_spec/onnx)",
                "cross_validation_emulator": cv_snn,
                "held_out_emulator": {
                    "target": "nengo-loihi emulator",
                    **ev.as_dict(),
                    "per_class_recall": held_snn["per_class_recall"],
                    "balanced_accuracy": held_snn["balanced_accuracy"],
                    **({"by_dataset": held_snn["by_dataset"]} if "by_dataset" in held_snn else {}),
                    "confusion_png": snn_png,
                },
            },
        }
    )
    card = ModelCard(
        model_id=model_id,
        classes=ds.classes,
        input_height=ds.images.shape[1],
        input_width=ds.images.shape[2],
        preprocessing=s.preprocessing,
        canny=canny,
        files=files,
        extra=extra,
    )
    write_card(card, out_dir)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "cnn": m.cnn.state_dict(),
                "snn": m.net.state_dict(),
                "cfg": cfg.to_json(),
                "settings": asdict_settings(s),
            },
            Path(workdir) / f"{model_id}_aware.pt",
        )
    return card


def save_stage1(data: str, cfg: ArchConfig, s: AwareSettings, path: Any) -> None:
    """Stage 1 alone on the development split of ``data``, saved for ``--stage1``."""
    from fer_ros.core.model_card import CannySettings
    from fer_ros.training.data import load_dataset
    from fer_ros.training.pipeline import split_dataset

    dev, _, split = split_dataset(load_dataset(data), 0.2, s.seed)
    cnn = train_rate(dev.images, dev.labels, len(dev.classes), cfg, s, CannySettings())
    torch.save(
        {
            "state_dict": cnn.state_dict(),
            "classes": list(dev.classes),
            "test_groups_sha1": split["test_groups_sha1"],
        },
        path,
    )


def asdict_settings(s: AwareSettings) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(s).items() if k != "progress"}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import logging
    import warnings
    from pathlib import Path

    p = argparse.ArgumentParser(
        prog="python -m fer_ros.training.loihi_aware",
        description="Loihi-aware training of a Loihi SNN with its card.",
    )
    p.add_argument("--data", required=True)
    p.add_argument(
        "--arch",
        required=True,
        help='inline JSON, e.g. {"blocks": [[16],[32],[64],[128]], "dense": [64]}',
    )
    p.add_argument("--preprocessing", choices=("grayscale", "canny"), default="grayscale")
    p.add_argument("--timesteps", type=int, default=25)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--mixup-alpha", type=float, default=0.2)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument(
        "--energy-weight", type=float, default=0.03, help="loss per synaptic uJ above the target"
    )
    p.add_argument(
        "--energy-target", type=float, default=30.0, help="synaptic uJ per face not charged"
    )
    p.add_argument("--gain", type=float, default=0.5)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-id", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workdir", type=Path, default=Path("build/training"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--description", default="")
    p.add_argument("--class-weight-power", type=float, default=1.0)
    p.add_argument("--camera-augment", action="store_true")
    p.add_argument("--finetune-subset", type=int, default=0)
    p.add_argument("--device", default="cpu", help="stage 1's torch device: cpu, cuda")
    p.add_argument(
        "--stage1-only",
        type=Path,
        default=None,
        help="train stage 1 on the development split, save it here and stop",
    )
    p.add_argument("--stage1", default="", help="a --stage1-only file instead of stage 1")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")
    logging.getLogger("nengo_loihi").setLevel(logging.WARNING)
    d = json.loads(a.arch)
    cfg = ArchConfig(
        blocks=tuple(tuple(b) for b in d["blocks"]),
        dense=tuple(d["dense"]),
        dropout=d.get("dropout", a.dropout),
        downsample="stride",
        batchnorm=True,
        conv_bias=False,
    )
    s = AwareSettings(
        preprocessing=a.preprocessing,
        timesteps=a.timesteps,
        epochs=a.epochs,
        lr=a.lr,
        mixup_alpha=a.mixup_alpha,
        finetune_epochs=a.finetune_epochs,
        finetune_lr=a.finetune_lr,
        finetune_energy_weight=a.energy_weight,
        energy_target_uj=a.energy_target,
        stage1_mode="relu",
        gain=a.gain,
        class_weight_power=a.class_weight_power,
        camera_augment=a.camera_augment,
        finetune_subset=a.finetune_subset,
        device=a.device,
        stage1_checkpoint=a.stage1,
        seed=a.seed,
    )
    if a.stage1_only is not None:
        save_stage1(a.data, cfg, s, a.stage1_only)
        return 0
    card = run_card(
        a.data, cfg, s, a.model_id, a.out, a.folds, workdir=a.workdir, description=a.description
    )
    e = card.extra
    if "cross_validation" in e:
        cv, cvs = e["cross_validation"], e["snn"]["cross_validation_emulator"]
        print(
            f"CV CNN {cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f}; "
            f"SNN {cvs['accuracy_mean']:.4f} ± {cvs['accuracy_std']:.4f}"
        )
    h = e["snn"]["held_out_emulator"]
    print(
        f"held-out CNN {e['held_out']['accuracy']:.4f} SNN {h['accuracy']:.4f} agreement "
        f"{h['agreement_with_cnn']:.4f} energy {h['modelled_energy_uj_per_face']} uJ"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
