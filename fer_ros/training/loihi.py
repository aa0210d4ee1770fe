"""Loihi mapping constraints and the core-count rule the architecture search enforces.

Rule (an estimate for Loihi 1 as nengo-loihi maps feed-forward nets; documented in
docs/training.md):

- no pooling layers (Loihi has none): downsample with stride-2 convolutions;
- no conv biases on chip and hence no batchnorm (folding it would create biases); dense
  layers keep a bias, which becomes a per-neuron bias current;
- a core holds at most 1024 neurons (compartments), so a layer of N neurons needs
  ``ceil(N / 1024)`` cores;
- dense weights are not shared, so a dense layer also needs
  ``ceil(fan_in * units / 65536)`` cores for its synapses (64 Ki 8-bit synapses per core's
  128 KB synaptic memory, ignoring compression); conv weights are shared per channel
  and not charged;
- cores per layer = the larger of the two; the network must fit one chip (128 cores).
"""

from __future__ import annotations

import math
from typing import Any

from fer_ros.training.graph import Layer
from fer_ros.training.model import ArchConfig

NEURONS_PER_CORE = 1024
SYNAPSES_PER_CORE = 65536
CORES_PER_CHIP = 128


def layer_cores(layer: Layer) -> int:
    neurons = math.prod(layer.out_shape)
    cores = math.ceil(neurons / NEURONS_PER_CORE)
    if layer.kind == "dense":
        cores = max(cores, math.ceil(layer.weights.size / SYNAPSES_PER_CORE))
    return cores


def loihi_report(cfg: ArchConfig, layers: list[Layer]) -> dict[str, Any]:
    """Neurons, cores and constraint violations of a folded network."""
    violations = []
    if cfg.downsample != "stride" or any(lay.kind in ("maxpool", "gap") for lay in layers):
        violations.append("uses pooling")
    if cfg.batchnorm:
        violations.append("uses batchnorm (folds into conv biases)")
    if cfg.conv_bias or any(lay.kind == "conv" and lay.bias is not None for lay in layers):
        violations.append("conv layers have biases")
    mapped = [lay for lay in layers if lay.kind in ("conv", "dense")]
    cores = [layer_cores(lay) for lay in mapped]
    if sum(cores) > CORES_PER_CHIP:
        violations.append(f"needs {sum(cores)} cores > {CORES_PER_CHIP}")
    neurons = [math.prod(lay.out_shape) for lay in mapped]
    return {
        "neurons_per_layer": neurons,
        "neurons_total": sum(neurons),
        "cores_per_layer": cores,
        "cores_total": sum(cores),
        "core_rule": "per layer max(ceil(neurons/1024), dense: ceil(synapses/65536)); "
        "chip limit 128 cores",
        "biases": "none on conv layers; dense-layer biases become neuron bias currents; "
        "output-layer bias applies to the read-out",
        "fits_one_chip": not violations,
        "violations": violations,
    }
