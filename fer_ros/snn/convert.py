"""CNN -> SNN conversion by data-based normalisation (Diehl et al. 2015; Rueckauer et al. 2017).

For layer ``l`` with CNN activation ``a_l = relu(W_l a_{l-1} + b_l)`` pick a scale
``lambda_l`` (the ``percentile``-th percentile of its positive activations on calibration
crops). The SNN neuron should fire at ``r_l = max_rate * a_l / lambda_l``. Hidden neurons
emit spikes of amplitude ``1 / max_rate``, so a neuron's filtered output is
``r / max_rate = a / lambda``, and a ``SpikingRectifiedLinear`` neuron fires at its input
current, so::

    weights_l = W_l * max_rate * lambda_{l-1} / lambda_l
    bias_l    = b_l * max_rate / lambda_l            (Hz; Loihi neuron bias)

The input layer sees the encoder's spikes through a relay of amplitude ``1 / input_rate``,
i.e. pixel intensity ``x`` in [0, 1], so ``lambda_0 = 1``. Only the top 0.1 % of
activations saturate, keeping rates below ``max_rate`` (<= 1 spike per step).

The output layer carries logits, which can be negative; a spiking neuron cannot. A
constant ``output_offset`` is added to every logit (argmax-neutral) so that the winning
class is positive on nearly all calibration crops. By default the output neurons then
act as integrators: their scale is set so that the largest calibration logit charges
the membrane to only half the threshold over ``output_horizon`` steps. They never spike
within a presentation, so the read-out (membrane voltage, see the backend) is the exact
integral of the logit drive, free of the reset-to-zero loss of a spiking read-out.

Loihi-aware training (:mod:`fer_ros.training.loihi_aware`) converts with fixed unit scales
instead and shares the rest: :func:`output_offset`, :func:`integrator_scale`,
:func:`layer_names`, :func:`assemble`, the block shapes (:func:`choose_block_shape`,
:func:`block_candidates`, :func:`auto_block_shapes`) and the card's ``snn`` section
(:func:`card_section`). The command line that converts a model card, which needs the
card's training split, is :mod:`fer_ros.training.snn_convert`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.core.cnn_spec import CnnSpec
from fer_ros.snn.params import MAX_BLOCK_NEURONS, SnnLayer, SnnParams, conv_output_size
from fer_ros.snn.reference import forward_activations

DEFAULT_PERCENTILE = 99.9
DEFAULT_MAX_RATE = 250.0  # Hz; matches the spike encoder's default (fer_ros.core.spike_encoding)
DEFAULT_TIMESTEPS = 30


MAX_SYNAPSE_BITS = 16384 * 64  # synaptic memory per core: 128 KB (Davies et al. 2018, p. 89)


def dense_block_bits(n_inputs: int, n_block: int) -> int:
    """Estimated synapse memory (bits) of a dense block, following nengo-loihi's layout.

    Each input axon stores ``n_block`` 8-bit weights with their target indices, in
    64-bit words, with a small header per group of 64 synapses.
    """
    idx_bits = max(6, int(np.ceil(np.log2(max(n_block, 2)))))
    per_axon = n_block * (8 + idx_bits) + 10 * -(-n_block // 64)
    return n_inputs * 64 * -(-per_axon // 64)


def choose_block_shape(
    shape: tuple[int, ...], limit: int = MAX_BLOCK_NEURONS, n_inputs: int = 0
) -> tuple[int, ...]:
    """Fewest cores for a layer of ``shape``; among those, exact tilings, then wide blocks.

    Dense layers (``(n,)``) are also split until each block's synapses fit one core's
    synaptic memory (``n_inputs`` presynaptic neurons each).

    Conv layers ``(C, H, W)`` keep all channels of a band of rows together where possible:
    a block then needs input axons only from the rows its receptive fields cover (Loihi
    allows 4096 input axons per core), whereas a channel split needs the whole input.
    """
    total = int(np.prod(shape))
    if len(shape) == 1:
        n_blocks = -(-total // limit)
        while dense_block_bits(n_inputs, -(-total // n_blocks)) > MAX_SYNAPSE_BITS:
            n_blocks += 1
            if n_blocks > total:
                raise ValueError(f"{n_inputs} inputs per neuron exceed one core's synapses")
        return (-(-total // n_blocks),)
    if total <= limit:
        return tuple(shape)
    return min(_conv_blocks(shape, limit))[1]


def _conv_blocks(
    shape: tuple[int, ...], limit: int
) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int]]]:
    """(preference key, block shape) of every block of a conv layer (C, H, W) within
    ``limit`` neurons: fewest cores, exact tilings, whole channels, wide blocks first."""
    c, h, w = shape
    for bc in range(1, c + 1):
        for bh in range(1, h + 1):
            for bw in range(1, w + 1):
                if bc * bh * bw > limit:
                    break
                blocks = -(-c // bc) * -(-h // bh) * -(-w // bw)
                uneven = (c % bc != 0) + (h % bh != 0) + (w % bw != 0)
                yield (blocks, uneven, -bc, -(bh * bw)), (bc, bh, bw)


def block_candidates(
    shape: tuple[int, ...], limit: int = MAX_BLOCK_NEURONS
) -> list[tuple[int, ...]]:
    """Every block shape of a layer in :func:`choose_block_shape`'s order of preference
    (conv ``(C, H, W)``); a dense layer's ``(n,)`` splits into 1, 2, ... row groups."""
    if len(shape) == 1:
        n = shape[0]
        return [(-(-n // k),) for k in range(1, n + 1) if -(-n // k) <= limit]
    return [b for _, b in sorted(_conv_blocks(shape, limit))]


def auto_block_shapes(params: SnnParams, max_tries: int = 40) -> SnnParams:
    """Block shapes that nengo-loihi's builder validates (neurons, input/output axons and
    synapse memory per core), found by building the network and, for the block named in a
    ``BuildError``, moving that layer to its next shape (:func:`block_candidates`) with
    more cores. Needs nengo-loihi."""
    import nengo_loihi  # optional dependency, as in the builder
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


def activation_scale(values: np.ndarray, percentile: float) -> float:
    """A layer's scale: the ``percentile`` of its positive activations (1 if none)."""
    positive = values[values > 0]
    if positive.size == 0:
        return 1.0  # a dead layer: any scale keeps it silent
    return float(np.percentile(positive, percentile))


def output_offset(logits: np.ndarray, offset_quantile: float) -> float:
    """The argmax-neutral offset that makes the winning logit positive on all but
    ``offset_quantile`` of the calibration crops."""
    return max(0.0, -float(np.quantile(logits.max(axis=1), offset_quantile)))


def integrator_scale(scale: float, max_rate: float, dt: float, horizon: int) -> float:
    """The output layer's scale as an integrator: the drive at ``scale`` charges half a
    threshold over ``horizon`` steps, so it never spikes within a presentation."""
    return scale * (2.0 * max_rate * dt * horizon)


def layer_names(spec: CnnSpec) -> tuple[str, ...]:
    """``conv0, conv1, ..., dense0, ..., output``: the SNN's layer names."""
    counts = {"conv": 0, "dense": 0}
    names = []
    for layer in spec.layers[:-1]:
        names.append(f"{layer.kind}{counts[layer.kind]}")
        counts[layer.kind] += 1
    return (*names, "output")


def output_shapes(spec: CnnSpec) -> list[tuple[int, ...]]:
    """Each layer's output shape: (C, H, W) of a conv, (n,) of a dense layer."""
    shape: tuple[int, ...] = tuple(spec.input_shape)
    shapes = []
    for layer in spec.layers:
        if layer.kind == "conv":
            out_c, _, kh, kw = layer.weights.shape
            shape = (
                out_c,
                conv_output_size(shape[1], kh, layer.stride, layer.padding),
                conv_output_size(shape[2], kw, layer.stride, layer.padding),
            )
        else:
            shape = (layer.weights.shape[0],)
        shapes.append(shape)
    return shapes


def assemble(
    spec: CnnSpec,
    model_id: str,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    scales: Sequence[float],
    *,
    timesteps: int,
    dt: float,
    max_rate: float,
    input_rate: float,
    output_offset: float,
    extra: dict[str, Any],
    names: Sequence[str] | None = None,
    block_shapes: Sequence[tuple[int, ...]] | None = None,
) -> SnnParams:
    """Validated :class:`SnnParams` of ``spec``'s geometry with SNN ``weights`` and
    ``biases`` per layer (float32, already scaled) and their ``rate_scale``; block shapes
    by :func:`choose_block_shape` unless given. Both converters (:func:`convert` and
    Loihi-aware training) end here."""
    names = names or layer_names(spec)
    layers: list[SnnLayer] = []
    shape: tuple[int, ...] = tuple(spec.input_shape)
    for i, (layer, out_shape) in enumerate(zip(spec.layers, output_shapes(spec), strict=True)):
        layers.append(
            SnnLayer(
                name=names[i],
                kind=layer.kind,
                weights=weights[i],
                bias=biases[i],
                input_shape=shape,
                output_shape=out_shape,
                rate_scale=scales[i],
                block_shape=(
                    tuple(block_shapes[i])
                    if block_shapes
                    else choose_block_shape(out_shape, n_inputs=int(np.prod(shape)))
                ),
                stride=layer.stride,
                padding=layer.padding,
            )
        )
        shape = out_shape
    params = SnnParams(
        model_id=model_id,
        input_shape=tuple(spec.input_shape),  # type: ignore[arg-type]
        layers=tuple(layers),
        timesteps=timesteps,
        dt=dt,
        max_rate=max_rate,
        input_rate=input_rate,
        output_offset=output_offset,
        extra=extra,
    )
    params.validate()
    return params


def convert(
    spec: CnnSpec,
    calibration: np.ndarray,
    model_id: str,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    input_rate: float = DEFAULT_MAX_RATE,
    timesteps: int = DEFAULT_TIMESTEPS,
    dt: float = 0.001,
    percentile: float = DEFAULT_PERCENTILE,
    offset_quantile: float = 0.01,
    output_horizon: int | None = None,
    layer_names: tuple[str, ...] | None = None,
) -> SnnParams:
    """Convert ``spec`` into SNN parameters, normalising on ``calibration`` crops.

    Parameters
    ----------
    spec : CnnSpec
        Loihi-compatible CNN (ReLU hidden layers, linear output layer).
    calibration : ndarray
        float32 (n, C, H, W) crops in [0, 1], preprocessed as the model card says.
    model_id : str
        Stored in the parameter file.
    max_rate, input_rate : float
        Hz of a hidden neuron at its layer scale, and of a fully bright input pixel.
    timesteps : int
        Default steps per presentation stored with the network.
    dt : float
        Seconds per step (Loihi's algorithmic timestep; 1 ms is the nengo-loihi default).
    percentile : float
        Percentile of positive activations used as each layer's scale.
    offset_quantile : float
        The output offset makes the winning logit positive on all but this fraction of
        calibration crops.
    output_horizon : int, optional
        Steps over which the output layer integrates without spiking; defaults to
        ``4 * timesteps``. ``0`` makes the output an ordinary spiking layer.
    layer_names : tuple of str, optional
        Defaults to ``conv0, conv1, ..., dense0, ..., output``.

    Returns
    -------
    SnnParams
    """
    if not spec.layers or spec.layers[-1].activation != "none":
        raise ValueError("the last CNN layer must be linear (logits)")
    for i, layer in enumerate(spec.layers[:-1]):
        if layer.activation != "relu":
            raise ValueError(f"hidden layer {i} must use ReLU for rate conversion")
    acts = forward_activations(spec, calibration)
    offset = output_offset(acts[-1], offset_quantile)
    acts[-1] = acts[-1] + offset
    horizon = 4 * timesteps if output_horizon is None else int(output_horizon)
    scales = [activation_scale(act, percentile) for act in acts]
    if horizon > 0:  # max drive reaches vth/2 after horizon
        scales[-1] = integrator_scale(scales[-1], max_rate, dt, horizon)
    previous = [1.0, *scales[:-1]]  # input intensities are in [0, 1]
    last = len(spec.layers) - 1
    weights, biases = [], []
    for i, layer in enumerate(spec.layers):
        bias = layer.bias.astype(np.float64) + (offset if i == last else 0.0)
        weights.append((layer.weights * (max_rate * previous[i] / scales[i])).astype(np.float32))
        biases.append((bias * max_rate / scales[i]).astype(np.float32))
    return assemble(
        spec,
        model_id,
        weights,
        biases,
        scales,
        timesteps=timesteps,
        dt=dt,
        max_rate=max_rate,
        input_rate=input_rate,
        output_offset=offset,
        extra={
            "percentile": percentile,
            "calibration_crops": len(calibration),
            "output_horizon": horizon,
        },
        names=layer_names,
    )


def file_digest(path: str | Path) -> str:
    """Short sha1 of a file, stored with the SNN to detect a retrained CNN."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12]


def card_section(params: SnnParams, file: str, percentile: float) -> dict[str, Any]:
    """The model card's ``snn`` section as both converters start it: the file, its
    timing, rates and cores (the writers add how it was converted and its evaluation)."""
    return {
        "file": file,
        "max_rate_hz": params.max_rate,
        "input_rate_hz": params.input_rate,
        "timesteps": params.timesteps,
        "dt": params.dt,
        "percentile": percentile,
        "cores": params.n_cores,
        "cores_per_layer": [layer.n_blocks for layer in params.layers],
        "block_shapes": [list(layer.block_shape) for layer in params.layers],
    }
