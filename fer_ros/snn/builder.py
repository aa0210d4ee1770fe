"""Build a nengo network for nengo-loihi from :class:`~fer_ros.snn.params.SnnParams`.

Layout (Smith et al. 2024: rate encoding off chip, the converted CNN on chip)::

    Node(SpikeBuffer) -> relay Ensemble (off chip) =spikes=> layer 0 -> ... -> output layer

* The input node cannot feed an on-chip convolution directly, so an off-chip ensemble of
  ``SpikingRectifiedLinear`` neurons relays the encoder's spike train one-to-one: the node
  drives each relay neuron with ``1/dt`` on a spike step, which is exactly one spike.
* Every CNN layer is an on-chip ensemble of integrate-and-fire ReLU neurons
  (:class:`~fer_ros.snn.neurons.IntegratingRectifiedLinear`: gain 1, the converted bias
  as neuron bias since Loihi has no connection biases, membrane allowed below zero)
  connected neuron to neuron with ``synapse=None`` so that each neuron integrates
  weighted spikes directly.
* Layers are split over cores with ``BlockShape`` (<= 1024 neurons per core) and the
  total is checked against the 128 cores of one chip.
* Probes: each layer's spikes and the output layer's voltage (used to break ties).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_ros.snn.params import (
    MAX_BLOCK_NEURONS,
    MAX_CORES_PER_CHIP,
    SnnLayer,
    SnnParams,
    conv_output_size,
)

INSTALL_HINT = 'pip install nengo-loihi==1.1.0 "numpy<2"'


class SpikeBuffer:
    """Node output function that replays one preset spike train, a row per step.

    ``nengo_loihi`` precomputes the off-chip part for all steps of a run before the chip
    part, so setting the train before each run is enough; no rebuild per face.
    """

    def __init__(self, n_inputs: int, dt: float) -> None:
        self.n_inputs = n_inputs
        # 1/dt for one step is one relay spike; the tiny excess guards against a float
        # product just below 1.0 (it would need ~1e9 spikes to add a spurious one)
        self._scale = (1.0 + 1e-9) / dt
        self._rows = np.zeros((1, n_inputs))
        self._zero = np.zeros(n_inputs)
        self._step = 0

    def set(self, spikes: np.ndarray) -> None:
        """Queue ``spikes`` (timesteps, n_inputs) bool for the next run; rewinds."""
        self._rows = spikes.reshape(len(spikes), -1).astype(np.float64) * self._scale
        self._step = 0

    def __call__(self, t: float) -> np.ndarray:
        i = self._step
        self._step += 1
        return self._rows[i] if i < len(self._rows) else self._zero


@dataclass
class SnnNetwork:
    """A built (not yet simulated) nengo network and handles into it."""

    network: object  # nengo.Network
    params: SnnParams
    buffer: SpikeBuffer
    relay: object  # the off-chip nengo.Ensemble relaying input spikes
    ensembles: list[object]  # one nengo.Ensemble per layer
    spike_probes: list[object]  # nengo.Probe on each layer's spikes
    output_voltage_probe: object
    n_cores: int


def conv_geometry(size: int, kernel: int, stride: int, padding: int) -> tuple[str, int, int]:
    """Express a PyTorch conv axis as nengo ``padding`` plus zero taps before/after the kernel.

    nengo's ``"same"`` pads ``total // 2`` before (TensorFlow style), PyTorch pads
    ``padding`` on both sides; appending or prepending zero taps shifts nengo's alignment
    onto PyTorch's. Returns ``(mode, zeros_before, zeros_after)``.
    """
    out = conv_output_size(size, kernel, stride, padding)
    if padding == 0:
        return "valid", 0, 0
    if out != math.ceil(size / stride):
        raise ValueError(
            f"conv with kernel {kernel}, stride {stride}, padding {padding} on {size} pixels "
            f"gives {out} outputs; nengo-loihi can only express 'valid' or 'same' outputs"
        )
    for extra in range(0, 2 * kernel + 2 * padding + 1):
        k2 = kernel + extra
        pad_before = max((out - 1) * stride + k2 - size, 0) // 2
        before = pad_before - padding  # taps in front shift the window forward
        if 0 <= before <= extra:
            return "same", before, extra - before
    raise ValueError(f"no nengo 'same' layout matches PyTorch padding {padding}")


def nengo_conv_kernel(layer: SnnLayer) -> tuple[np.ndarray, str]:
    """The layer's kernel in nengo layout (kh, kw, in_c, out_c) and the nengo padding mode."""
    _, h, w = layer.input_shape
    out_c, in_c, kh, kw = layer.weights.shape
    mode_h, bh, ah = conv_geometry(h, kh, layer.stride, layer.padding)
    mode_w, bw, aw = conv_geometry(w, kw, layer.stride, layer.padding)
    if mode_h != mode_w:
        raise ValueError(f"layer {layer.name!r}: rows need {mode_h!r}, columns {mode_w!r}")
    kernel = np.zeros((bh + kh + ah, bw + kw + aw, in_c, out_c), np.float64)
    kernel[bh : bh + kh, bw : bw + kw] = layer.weights.transpose(2, 3, 1, 0)
    return kernel, mode_h


def neuron_biases(layer: SnnLayer) -> np.ndarray:
    """Per-neuron bias: a conv channel's bias repeated over its pixels."""
    reps = layer.n_neurons // len(layer.bias)
    return np.repeat(layer.bias.astype(np.float64), reps)


def check_limits(params: SnnParams) -> int:
    """Cores used; raises ValueError when a block or the chip is over its limit."""
    for layer in params.layers:
        if int(np.prod(layer.block_shape)) > MAX_BLOCK_NEURONS:
            raise ValueError(f"layer {layer.name!r}: block {layer.block_shape} exceeds 1024")
    if params.n_cores > MAX_CORES_PER_CHIP:
        raise ValueError(f"{params.n_cores} cores needed; one Loihi chip has 128")
    return params.n_cores


def build_network(
    params: SnnParams, input_rate: float | None = None, seed: int = 0, integrating: bool = True
) -> SnnNetwork:
    """Build the nengo network for ``params``.

    Parameters
    ----------
    params : SnnParams
        The converted network.
    input_rate : float, optional
        Maximum rate (Hz) of the spike encoder that feeds the network; the relay amplitude
        is ``1 / input_rate``. Defaults to ``params.input_rate``.
    seed : int
        Network seed (nothing is random here; set for reproducible builds).
    integrating : bool
        Membranes may go below zero (:mod:`.neurons`); False gives nengo's clamped
        ``SpikingRectifiedLinear``, which forgets its state when left without input.

    Returns
    -------
    SnnNetwork
    """
    try:
        import nengo
        import nengo_loihi
    except ImportError as exc:  # the backend turns this into BackendUnavailable
        raise ImportError(f"nengo-loihi is not installed: {INSTALL_HINT}") from exc

    from fer_ros.snn.neurons import IntegratingRectifiedLinear

    neuron = IntegratingRectifiedLinear if integrating else nengo.SpikingRectifiedLinear
    n_cores = check_limits(params)
    rate_in = params.input_rate if input_rate is None else float(input_rate)
    n_in = int(np.prod(params.input_shape))
    buffer = SpikeBuffer(n_in, params.dt)
    ensembles: list[object] = []
    probes: list[object] = []
    with nengo.Network(seed=seed, label=f"snn {params.model_id}") as net:
        nengo_loihi.add_params(net)
        node = nengo.Node(buffer, size_out=n_in, label="input spikes")
        relay = nengo.Ensemble(
            n_in,
            1,
            neuron_type=nengo.SpikingRectifiedLinear(amplitude=1.0 / rate_in),
            gain=np.ones(n_in),
            bias=np.zeros(n_in),
            label="input relay",
        )
        net.config[relay].on_chip = False
        nengo.Connection(node, relay.neurons, synapse=None)
        pre = relay
        for layer in params.layers:
            ens = nengo.Ensemble(
                layer.n_neurons,
                1,
                neuron_type=neuron(amplitude=params.amplitude),
                gain=np.ones(layer.n_neurons),
                bias=neuron_biases(layer),
                label=layer.name,
            )
            net.config[ens].block_shape = nengo_loihi.BlockShape(
                tuple(layer.block_shape), tuple(layer.output_shape)
            )
            nengo.Connection(pre.neurons, ens.neurons, transform=_transform(layer), synapse=None)
            probes.append(nengo.Probe(ens.neurons, "output", label=f"{layer.name} spikes"))
            ensembles.append(ens)
            pre = ens
        voltage = nengo.Probe(pre.neurons, "voltage", label="output voltage")
    return SnnNetwork(net, params, buffer, relay, ensembles, probes, voltage, n_cores)


def _transform(layer: SnnLayer) -> object:
    import nengo

    if layer.kind == "dense":
        return nengo.Dense(layer.weights.shape, init=layer.weights.astype(np.float64))
    kernel, mode = nengo_conv_kernel(layer)
    return nengo.Convolution(
        n_filters=layer.weights.shape[0],
        input_shape=tuple(layer.input_shape),
        kernel_size=kernel.shape[:2],
        strides=(layer.stride, layer.stride),
        padding=mode,
        channels_last=False,  # keep the CNN's (C, H, W) neuron order
        init=kernel,
    )
