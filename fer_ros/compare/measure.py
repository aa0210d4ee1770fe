"""One face per call through a backend: predictions, latency and the energy of each call.

Energy comes from where the inference node takes it, through the same
:class:`~fer_ros.backends.metered.MeteredCall`: the backend's own figure when it has one
(Loihi), else the node's power source sampled around the call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_ros.backends.base import InferenceResult, SpikeStats
from fer_ros.backends.metered import MeteredCall
from fer_ros.core.figures import EnergyFigure, FigureSource
from fer_ros.power import PowerSource


@dataclass
class Measurement:
    scores: np.ndarray  # (faces, classes) of the first pass, in the backend's class order
    latency_ms: np.ndarray  # one entry per timed call (first pass, then repeats)
    energy_j: np.ndarray  # per call; NaN where unavailable
    power_w: np.ndarray
    source: FigureSource = FigureSource.UNAVAILABLE
    figure_model: str = ""  # the sensor or model behind every figure
    spike_stats: SpikeStats | None = None  # all faces of the first pass together
    chip_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per face (energy / power)

    @property
    def predictions(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q)) if len(self.latency_ms) else math.nan

    @property
    def energy_mean_j(self) -> float:
        finite = self.energy_j[np.isfinite(self.energy_j)]
        return float(finite.mean()) if len(finite) else math.nan

    @property
    def power_mean_w(self) -> float:
        finite = self.power_w[np.isfinite(self.power_w)]
        return float(finite.mean()) if len(finite) else math.nan


def measure(
    backend: Any,
    inputs: np.ndarray,
    power: PowerSource | None,
    latency_n: int = 0,
    warmup: int = 5,
    tick: Callable[[], None] | None = None,
) -> Measurement:
    """Every face once (predictions), then repeats until ``latency_n`` timed calls."""
    for i in range(min(warmup, len(inputs))):  # caches, lazy allocation, engine builds
        backend.infer(inputs[i : i + 1])
    scores, latency, energy, watts, stats, chip = [], [], [], [], [], []
    figure: EnergyFigure | None = None
    calls = max(latency_n, len(inputs))
    for k in range(calls):
        i = k % len(inputs)
        result, figure, seconds = _timed(backend.infer, inputs[i : i + 1], power)
        latency.append(seconds * 1e3)
        energy.append(figure.energy_j if figure else math.nan)
        watts.append(figure.power_w if figure else math.nan)
        if k < len(inputs):
            scores.append(result.scores[0])
            if result.spike_stats is not None:
                stats.append(result.spike_stats)
            if result.energy is not None and result.energy.power_w > 0:
                chip.append(result.energy.energy_j / result.energy.power_w)
            if tick is not None:
                tick()
    return Measurement(
        scores=np.asarray(scores, np.float32),
        latency_ms=np.asarray(latency),
        energy_j=np.asarray(energy, float),
        power_w=np.asarray(watts, float),
        source=figure.source if figure else FigureSource.UNAVAILABLE,
        figure_model=figure.model if figure else (power.description if power else ""),
        spike_stats=merge_stats(stats),
        chip_s=np.asarray(chip, float),
    )


def _timed(
    infer: Callable[[np.ndarray], InferenceResult], batch: np.ndarray, power: PowerSource | None
) -> tuple[InferenceResult, EnergyFigure | None, float]:
    return MeteredCall(power)(infer, batch)


def merge_stats(parts: list[SpikeStats]) -> SpikeStats | None:
    """Spike counts of several inference calls as one (same network, same timesteps)."""
    if not parts:
        return None
    first = parts[0]
    return SpikeStats(
        layer_names=first.layer_names,
        layer_spikes=tuple(
            int(sum(col)) for col in zip(*(p.layer_spikes for p in parts), strict=True)
        ),
        layer_neurons=first.layer_neurons,
        timesteps=first.timesteps,
        presentations=sum(p.presentations for p in parts),
        synaptic_ops=sum(p.synaptic_ops for p in parts),
        neuron_updates=sum(p.neuron_updates for p in parts),
    )
