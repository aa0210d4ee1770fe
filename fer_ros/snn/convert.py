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
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_ros.core.cnn_spec import CnnSpec, load_cnn_spec
from fer_ros.core.model_card import load_model_card, save_model_card
from fer_ros.snn.params import (
    MAX_BLOCK_NEURONS,
    SnnLayer,
    SnnParams,
    conv_output_size,
    save_snn_params,
)
from fer_ros.snn.reference import forward_activations

log = logging.getLogger(__name__)

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
    c, h, w = shape
    best: tuple[tuple[int, int, int, int], tuple[int, ...]] | None = None
    for bc in range(1, c + 1):
        for bh in range(1, h + 1):
            for bw in range(1, w + 1):
                if bc * bh * bw > limit:
                    break
                blocks = -(-c // bc) * -(-h // bh) * -(-w // bw)
                uneven = (c % bc != 0) + (h % bh != 0) + (w % bw != 0)
                key = (blocks, uneven, -bc, -(bh * bw))
                if best is None or key < best[0]:
                    best = (key, (bc, bh, bw))
    assert best is not None
    return best[1]


def _scale(values: np.ndarray, percentile: float) -> float:
    positive = values[values > 0]
    if positive.size == 0:
        return 1.0  # a dead layer: any scale keeps it silent
    return float(np.percentile(positive, percentile))


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
    logits = acts[-1]
    offset = max(0.0, -float(np.quantile(logits.max(axis=1), offset_quantile)))
    acts[-1] = logits + offset
    horizon = 4 * timesteps if output_horizon is None else int(output_horizon)
    names = layer_names or _default_names(spec)
    layers: list[SnnLayer] = []
    shape: tuple[int, ...] = tuple(spec.input_shape)
    previous_scale = 1.0  # input intensities are in [0, 1]
    for i, (layer, act) in enumerate(zip(spec.layers, acts, strict=True)):
        scale = _scale(act, percentile)
        if i == len(spec.layers) - 1 and horizon > 0:
            scale *= 2.0 * max_rate * dt * horizon  # max drive reaches vth/2 after horizon
        bias = layer.bias.astype(np.float64) + (offset if i == len(spec.layers) - 1 else 0.0)
        if layer.kind == "conv":
            out_c, _, kh, kw = layer.weights.shape
            out_shape: tuple[int, ...] = (
                out_c,
                conv_output_size(shape[1], kh, layer.stride, layer.padding),
                conv_output_size(shape[2], kw, layer.stride, layer.padding),
            )
        else:
            out_shape = (layer.weights.shape[0],)
        layers.append(
            SnnLayer(
                name=names[i],
                kind=layer.kind,
                weights=(layer.weights * (max_rate * previous_scale / scale)).astype(np.float32),
                bias=(bias * max_rate / scale).astype(np.float32),
                input_shape=shape,
                output_shape=out_shape,
                rate_scale=scale,
                block_shape=choose_block_shape(out_shape, n_inputs=int(np.prod(shape))),
                stride=layer.stride,
                padding=layer.padding,
            )
        )
        shape, previous_scale = out_shape, scale
    params = SnnParams(
        model_id=model_id,
        input_shape=tuple(spec.input_shape),  # type: ignore[arg-type]
        layers=tuple(layers),
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
    )
    params.validate()
    return params


def file_digest(path: str | Path) -> str:
    """Short sha1 of a file, stored with the SNN to detect a retrained CNN."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12]


def _default_names(spec: CnnSpec) -> tuple[str, ...]:
    counts = {"conv": 0, "dense": 0}
    names = []
    for layer in spec.layers[:-1]:
        names.append(f"{layer.kind}{counts[layer.kind]}")
        counts[layer.kind] += 1
    return (*names, "output")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fer_ros.snn.convert",
        description="Convert a model card's CnnSpec into a Loihi SNN parameter file, "
        "measure SNN/CNN agreement on the card's held-out crops and record both in the card.",
    )
    parser.add_argument("--card", required=True, help="model card (name in models/ or path)")
    parser.add_argument("--data", type=Path, default=None, help="CK+ npz (default: shared)")
    parser.add_argument("--timesteps", type=int, default=50, help="steps per face")
    parser.add_argument("--max-rate", type=float, default=500.0, help="hidden-layer max Hz")
    parser.add_argument(
        "--input-rate", type=float, default=1000.0, help="spike encoder max_rate (Hz)"
    )
    parser.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    parser.add_argument("--calibration", type=int, default=256, help="training crops used")
    parser.add_argument("--eval-limit", type=int, default=0, help="held-out crops (0: all)")
    parser.add_argument("--no-eval", action="store_true", help="skip the emulator evaluation")
    parser.add_argument("--output", type=Path, default=None, help="default models/<id>_snn.npz")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    from fer_ros.snn.data import DEFAULT_DATA, calibration_subset, card_split

    card = load_model_card(args.card)
    assert card.path is not None
    spec_path = card.file("cnn_spec")
    spec = load_cnn_spec(str(spec_path))
    logging.getLogger("nengo_loihi").setLevel(logging.WARNING)  # one INFO line per run
    train, held_out = card_split(card, args.data or DEFAULT_DATA)
    params = convert(
        spec,
        calibration_subset(train, args.calibration),
        card.model_id,
        max_rate=args.max_rate,
        input_rate=args.input_rate,
        timesteps=args.timesteps,
        percentile=args.percentile,
    )
    params = replace(params, extra={**params.extra, "cnn_spec_sha1": file_digest(spec_path)})
    out = args.output or card.path.parent / f"{card.model_id}_snn.npz"
    save_snn_params(params, out)
    log.info("wrote %s (%d layers, %d cores)", out, len(params.layers), params.n_cores)
    figures: dict[str, object] = {
        "file": out.name,
        "max_rate_hz": params.max_rate,
        "input_rate_hz": params.input_rate,
        "timesteps": params.timesteps,
        "dt": params.dt,
        "percentile": args.percentile,
        "cores": params.n_cores,
        "cores_per_layer": [layer.n_blocks for layer in params.layers],
        "block_shapes": [list(layer.block_shape) for layer in params.layers],
    }
    if not args.no_eval:
        from fer_ros.snn.evaluate import evaluate

        limit = args.eval_limit or len(held_out.x)
        result = evaluate(params, spec, held_out.x[:limit], held_out.y[:limit], args.timesteps)
        figures["held_out_emulator"] = {"target": "nengo-loihi emulator", **result.as_dict()}
        log.info(
            "held-out: agreement %.3f, accuracy %.3f (CNN %.3f), %.1f ms/face",
            result.agreement,
            result.accuracy,
            result.cnn_accuracy,
            result.ms_per_face,
        )
    files = dict(card.files)
    if out.parent == card.path.parent:
        files["snn"] = out.name
    extra = dict(card.extra)
    extra["snn"] = figures
    save_model_card(replace(card, files=files, extra=extra), card.path)
    log.info("updated %s", card.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
