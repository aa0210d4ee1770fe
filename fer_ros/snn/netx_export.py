"""Export the converted SNN as a lava-dl NetX HDF5 network (Loihi 2 / Lava users).

Follows the NetX "HDF5 description protocol" of lava-dl (``lava.lib.dl.netx``): a
``layer`` group with one sub-group per block, numbered from the input, each with at least
``type`` and ``shape``; conv and dense blocks carry integer weights, an optional bias and
a ``neuron`` group describing the compartment. Written with h5py only.

Mapping (our IF neurons are Loihi CUBA neurons with no leak and no current filter):

* ``neuron``: ``type=CUBA``, ``iDecay=4096`` (synaptic current lasts one step),
  ``vDecay=0`` (no membrane leak), ``refDelay=1``, ``gradedSpike=False``, and
  ``vThMant = k``, a per-layer integer scale;
* weights ``round(k * w)`` and biases ``round(k * b * dt)``, where ``w`` is the membrane
  step one presynaptic spike causes and ``b * dt`` the bias step, both in units of the
  threshold; ``k`` is the largest integer that keeps |weights| <= 254 (8-bit mantissa),
  biases within 12 bits and ``vThMant`` within 17 bits;
* conv weights in PyTorch layout (out, in, kh, kw) with ``kernelSize``/``stride``/
  ``padding``/``dilation`` as (y, x) pairs and ``shape`` as (C, H, W), as lava-dl's
  SLAYER writes them; a ``flatten`` block precedes the first dense block;
* the input block has only a shape: spikes come from the off-chip rate encoder at
  ``input_rate`` Hz, as in the ROS pipeline;
* the output block integrates without spiking for ``output_horizon`` steps; read its
  membrane voltage (``v``) at the end of a sample, as our backend does.

One difference remains: nengo-loihi clamps these neurons' voltage at 0 from below, while
Lava's ``LIF`` lets it go negative (down to -2**23). Both rate-code ReLU; the Lava
network integrates negative input instead of discarding it, so its spike trains differ
from the emulator's in detail (``test_snn_netx`` simulates the file with Lava's integer
semantics and checks its agreement with the CNN).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fer_ros.snn.params import SnnLayer, SnnParams, load_snn_params

log = logging.getLogger(__name__)

MAX_WEIGHT = 254  # NetX/SLAYER 8-bit weights: even steps in [-256, 254]
MAX_BIAS = 4095  # keep bias mantissas within 12 bits plus sign
MAX_VTH = (1 << 17) - 1  # Loihi threshold mantissa field


@dataclass(frozen=True)
class NetxLayer:
    """Integer parameters of one exported block."""

    name: str
    v_th: int
    weights: np.ndarray  # int
    bias: np.ndarray  # int


def integer_layer(layer: SnnLayer, params: SnnParams, first: bool) -> NetxLayer:
    """Scale one layer to Loihi integers (see the module docstring)."""
    # membrane step (in thresholds) of one presynaptic spike: weight times spike amplitude
    amplitude = params.input_amplitude if first else params.amplitude
    w = layer.weights.astype(np.float64) * amplitude
    b = layer.bias.astype(np.float64) * params.dt
    limits = [MAX_VTH]
    if np.abs(w).max() > 0:
        limits.append(MAX_WEIGHT / np.abs(w).max())
    if np.abs(b).max() > 0:
        limits.append(MAX_BIAS / np.abs(b).max())
    k = int(np.floor(min(limits)))
    if k < 1:
        raise ValueError(f"layer {layer.name!r} cannot be scaled to Loihi integers")
    return NetxLayer(
        name=layer.name,
        v_th=k,
        weights=np.rint(w * k).astype(np.int32),
        bias=np.rint(b * k).astype(np.int32),
    )


def _neuron(group: object, v_th: int) -> None:
    group.create_dataset("type", data=np.bytes_("CUBA"))  # type: ignore[attr-defined]
    for key, value in (
        ("iDecay", 4096),
        ("vDecay", 0),
        ("vThMant", v_th),
        ("refDelay", 1),
        ("gradedSpike", False),
    ):
        group.create_dataset(key, data=value)  # type: ignore[attr-defined]


def _block_type(group: object, name: str) -> None:
    # a (1,) fixed-length ASCII array, as SLAYER writes it and NetX decodes it
    group.create_dataset("type", (1,), "S10", [name.encode("ascii")])  # type: ignore[attr-defined]


def export_netx(params: SnnParams, path: str | Path) -> list[NetxLayer]:
    """Write ``params`` as a NetX HDF5 file; returns the integer layers written."""
    import h5py

    layers = [integer_layer(layer, params, i == 0) for i, layer in enumerate(params.layers)]
    with h5py.File(path, "w") as f:
        f.attrs["model_id"] = params.model_id
        f.attrs["input_rate_hz"] = params.input_rate
        f.attrs["max_rate_hz"] = params.max_rate
        f.attrs["readout"] = "membrane voltage of the last block at the end of a sample"
        sim = f.create_group("simulation")
        sim.create_dataset("Ts", data=1)
        sim.create_dataset("tSample", data=params.timesteps)
        root = f.create_group("layer")
        index = 0

        def block(kind: str, shape: tuple[int, ...]) -> h5py.Group:
            nonlocal index
            group = root.create_group(str(index))
            index += 1
            _block_type(group, kind)
            group.create_dataset("shape", data=np.asarray(shape, np.int64))
            return group

        block("input", tuple(params.input_shape))
        previous = "input"
        for layer, ints in zip(params.layers, layers, strict=True):
            if layer.kind == "conv":
                g = block("conv", tuple(layer.output_shape))
                out_c, in_c, kh, kw = layer.weights.shape
                g.create_dataset("inChannels", data=in_c)
                g.create_dataset("outChannels", data=out_c)
                g.create_dataset("kernelSize", data=np.array([kh, kw]))
                g.create_dataset("stride", data=np.array([layer.stride] * 2))
                g.create_dataset("padding", data=np.array([layer.padding] * 2))
                g.create_dataset("dilation", data=np.array([1, 1]))
                g.create_dataset("groups", data=1)
            else:
                if previous == "conv":
                    block("flatten", (int(np.prod(layer.input_shape)),))
                g = block("dense", tuple(layer.output_shape))
                g.create_dataset("inFeatures", data=layer.weights.shape[1])
                g.create_dataset("outFeatures", data=layer.weights.shape[0])
            g.create_dataset("weight", data=ints.weights)
            if np.any(ints.bias):
                g.create_dataset("bias", data=ints.bias)
            _neuron(g.create_group("neuron"), ints.v_th)
            g.attrs["name"] = layer.name
            previous = layer.kind
    return layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fer_ros.snn.netx_export",
        description="Write a converted SNN as a lava-dl NetX HDF5 network for Loihi 2.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--card", help="model card whose files list an 'snn' export")
    source.add_argument("--snn", type=Path, help="SNN parameter file (.npz)")
    parser.add_argument("--output", type=Path, default=None, help="default: <id>_netx.net")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    card = None
    if args.card:
        from fer_ros.core.model_card import load_model_card

        card = load_model_card(args.card)
        snn_path = card.file("snn")
    else:
        snn_path = args.snn
    params = load_snn_params(snn_path)
    out = args.output or Path(snn_path).with_name(f"{params.model_id}_netx.net")
    layers = export_netx(params, out)
    log.info("wrote %s: %s", out, ", ".join(f"{x.name} vThMant={x.v_th}" for x in layers))
    if card is not None and card.path is not None and out.parent == card.path.parent:
        from fer_ros.core.model_card import save_model_card

        save_model_card(replace(card, files={**card.files, "netx": out.name}), card.path)
        log.info("added 'netx' to %s", card.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
