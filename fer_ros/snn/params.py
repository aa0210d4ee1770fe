"""The SNN parameter file: a converted network, ready to build for nengo-loihi or Lava.

One ``.npz`` (no pickle) per model, ``models/<model_id>_snn.npz``. It holds everything the
builder needs and nothing it has to recompute from the CNN:

* per layer: scaled weights (PyTorch layout), neuron biases, stride/padding, input and
  output shapes, the firing-rate scale (the CNN activation that maps to ``max_rate``) and
  the block shape used to split the layer over Loihi cores;
* network-wide: input shape, timesteps, dt, spike amplitude, the hidden-layer maximum
  rate, the input (encoder) maximum rate and the output offset added to the logits.

Units (nengo conventions, see :mod:`fer_ros.snn.convert` for the derivation): a neuron's
input current in Hz is ``weights @ y + bias``, where ``y`` is the presynaptic output, which
is ``amplitude / dt`` on a spike step and 0 otherwise; a ``SpikingRectifiedLinear``
neuron with input ``J`` fires at ``J`` Hz.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

FORMAT = "fer_ros.snn/1"
MAX_BLOCK_NEURONS = 1024  # compartments per Loihi core (Davies et al. 2018, p. 86)
MAX_CORES_PER_CHIP = 128  # neuromorphic cores per Loihi chip (Davies et al. 2018, p. 86)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a PyTorch-style convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class SnnLayer:
    """One on-chip layer of spiking rectified-linear neurons.

    Neurons are ordered as the CNN orders activations: ``(C, H, W)`` for conv layers,
    ``(n,)`` for dense ones; neurons of one conv channel share that channel's bias.
    """

    name: str
    kind: Literal["conv", "dense"]
    weights: np.ndarray  # conv (out_c, in_c, kh, kw); dense (out, in); scaled
    bias: np.ndarray  # (out_c,) or (out,); Hz of input current
    input_shape: tuple[int, ...]  # (C, H, W) of the layer's input
    output_shape: tuple[int, ...]  # (C, H, W) for conv, (n,) for dense
    rate_scale: float  # CNN activation that maps to max_rate (data-based normalisation)
    block_shape: tuple[int, ...]  # neurons per core, same rank as output_shape
    stride: int = 1
    padding: int = 0

    @property
    def n_neurons(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def n_blocks(self) -> int:
        """Cores this layer occupies when split by ``block_shape``."""
        return int(
            np.prod([-(-n // b) for n, b in zip(self.output_shape, self.block_shape, strict=True)])
        )


@dataclass(frozen=True)
class SnnParams:
    """A converted spiking network; see the module docstring for units."""

    model_id: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: tuple[SnnLayer, ...]
    timesteps: int = 30  # steps per face presentation
    dt: float = 0.001  # seconds per step
    max_rate: float = 250.0  # Hz of a hidden neuron at its layer's rate_scale
    input_rate: float = 250.0  # Hz of a fully bright input pixel (the spike encoder's max_rate)
    output_offset: float = 0.0  # added to every logit so the winner fires; argmax-neutral
    extra: dict[str, float | int | str] = field(default_factory=dict)  # conversion figures

    @property
    def amplitude(self) -> float:
        """Spike amplitude of hidden neurons: a neuron at ``max_rate`` outputs 1.0."""
        return 1.0 / self.max_rate

    @property
    def input_amplitude(self) -> float:
        """Spike amplitude of the off-chip input relay: a pixel at ``input_rate`` gives 1.0."""
        return 1.0 / self.input_rate

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_neurons

    @property
    def n_cores(self) -> int:
        return sum(layer.n_blocks for layer in self.layers)

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency."""
        _validate(self)


def _validate(p: SnnParams) -> None:
    if not p.layers:
        raise ValueError("an SNN needs at least one layer")
    if p.timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {p.timesteps}")
    if not p.dt > 0:
        raise ValueError(f"dt must be > 0, got {p.dt}")
    for label, rate in (("max_rate", p.max_rate), ("input_rate", p.input_rate)):
        if not 0 < rate * p.dt <= 1:
            raise ValueError(f"{label} * dt must be in (0, 1] (one spike per step), got {rate}")
    names = p.layer_names
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique: {names}")
    shape: tuple[int, ...] = tuple(p.input_shape)
    for layer in p.layers:
        where = f"layer {layer.name!r}"
        if tuple(layer.input_shape) != shape:
            raise ValueError(f"{where}: input shape {layer.input_shape} != previous {shape}")
        if not np.all(np.isfinite(layer.weights)) or not np.all(np.isfinite(layer.bias)):
            raise ValueError(f"{where}: weights or biases are not finite")
        if not layer.rate_scale > 0:
            raise ValueError(f"{where}: rate_scale must be > 0")
        if layer.kind == "conv":
            out_c, in_c, kh, kw = layer.weights.shape
            if len(shape) != 3 or in_c != shape[0]:
                raise ValueError(f"{where}: weights {layer.weights.shape} do not fit input {shape}")
            expect = (
                out_c,
                conv_output_size(shape[1], kh, layer.stride, layer.padding),
                conv_output_size(shape[2], kw, layer.stride, layer.padding),
            )
        elif layer.kind == "dense":
            n_out, n_in = layer.weights.shape
            if n_in != int(np.prod(shape)):
                raise ValueError(f"{where}: weights {layer.weights.shape} do not fit input {shape}")
            expect = (n_out,)
        else:
            raise ValueError(f"{where}: unknown kind {layer.kind!r}")
        if tuple(layer.output_shape) != expect:
            raise ValueError(f"{where}: output shape {layer.output_shape} != computed {expect}")
        if layer.bias.shape != (expect[0],):
            raise ValueError(f"{where}: bias shape {layer.bias.shape} != ({expect[0]},)")
        block = tuple(layer.block_shape)
        if len(block) != len(expect) or any(
            b < 1 or b > n for b, n in zip(block, expect, strict=True)
        ):
            raise ValueError(f"{where}: block shape {block} does not fit {expect}")
        if int(np.prod(block)) > MAX_BLOCK_NEURONS:
            raise ValueError(
                f"{where}: block shape {block} has {int(np.prod(block))} neurons; "
                f"a Loihi core holds at most {MAX_BLOCK_NEURONS}"
            )
        shape = expect
    if p.n_cores > MAX_CORES_PER_CHIP:
        raise ValueError(
            f"the network needs {p.n_cores} cores; one Loihi chip has {MAX_CORES_PER_CHIP}"
        )


def save_snn_params(params: SnnParams, path: str | Path) -> None:
    """Validate and write ``params`` as a plain ``.npz`` (readable with allow_pickle=False)."""
    params.validate()
    meta = {
        "format": FORMAT,
        "model_id": params.model_id,
        "input_shape": list(params.input_shape),
        "timesteps": params.timesteps,
        "dt": params.dt,
        "max_rate": params.max_rate,
        "input_rate": params.input_rate,
        "amplitude": params.amplitude,  # derived; stored so readers need not know the rule
        "output_offset": params.output_offset,
        "extra": params.extra,
        "layers": [
            {
                "name": layer.name,
                "kind": layer.kind,
                "input_shape": list(layer.input_shape),
                "output_shape": list(layer.output_shape),
                "rate_scale": layer.rate_scale,
                "block_shape": list(layer.block_shape),
                "stride": layer.stride,
                "padding": layer.padding,
            }
            for layer in params.layers
        ],
    }
    arrays: dict[str, np.ndarray] = {"meta": np.asarray(json.dumps(meta))}
    for i, layer in enumerate(params.layers):
        arrays[f"layer{i}_weights"] = np.asarray(layer.weights, np.float32)
        arrays[f"layer{i}_bias"] = np.asarray(layer.bias, np.float32)
    with open(path, "wb") as f:  # a file object stops numpy appending ".npz" to the name
        np.savez(f, **arrays)


def load_snn_params(path: str | Path) -> SnnParams:
    """Read and validate a file written by :func:`save_snn_params`; ValueError names the
    file and what is wrong with it."""
    try:
        return _load_snn_params(path)
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(f"SNN file {path} is unreadable or incomplete: {error}") from error


def _load_snn_params(path: str | Path) -> SnnParams:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an SNN parameter file of format {FORMAT}")
        layers = tuple(
            SnnLayer(
                name=m["name"],
                kind=m["kind"],
                weights=data[f"layer{i}_weights"],
                bias=data[f"layer{i}_bias"],
                input_shape=_ints(m["input_shape"]),
                output_shape=_ints(m["output_shape"]),
                rate_scale=float(m["rate_scale"]),
                block_shape=_ints(m["block_shape"]),
                stride=int(m["stride"]),
                padding=int(m["padding"]),
            )
            for i, m in enumerate(meta["layers"])
        )
    params = SnnParams(
        model_id=meta["model_id"],
        input_shape=_ints(meta["input_shape"]),  # type: ignore[arg-type]
        layers=layers,
        timesteps=int(meta["timesteps"]),
        dt=float(meta["dt"]),
        max_rate=float(meta["max_rate"]),
        input_rate=float(meta["input_rate"]),
        output_offset=float(meta["output_offset"]),
        extra=dict(meta.get("extra", {})),
    )
    params.validate()
    return params


def _ints(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)
