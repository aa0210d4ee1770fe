"""Spike trains as the spike encoding node makes them, and the Loihi figures of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_ros.backends.base import SpikeStats
from fer_ros.core.model_card import ModelCard
from fer_ros.core.profiles import flatten
from fer_ros.core.spike_encoding import EncodingSettings, converted_settings, encode

# One architecture with either input, for the Canny-versus-grayscale ablation (docs/loihi.md)
CANNY_CARD = "fer_snn_loihi_canny.json"
GRAY_CARD = "fer_snn_loihi.json"  # the loihi profile's own model is grayscale


def encoding_settings(
    params: Mapping[str, Any], card: ModelCard, timesteps: int = 0
) -> EncodingSettings:
    """The spike encoding node's settings for ``params`` (its profile section), through the
    same function the node uses; ``timesteps`` overrides the profile's (the ablation)."""
    flat = flatten(params)
    return converted_settings(
        card,
        str(flat.get("encoding", "rate")),
        timesteps or int(flat.get("timesteps", 0)),
        float(flat.get("dt", 0.0)),
        float(flat.get("max_rate", 0.0)),
    )


def encode_faces(crops: np.ndarray, settings: EncodingSettings, seed: int = 0) -> np.ndarray:
    """Preprocessed crops (n, 1, H, W) -> bool spikes (n, T, H, W), one train per face.

    Poisson trains are seeded per face like the node's (seed, face id, stamp 0)."""
    trains = []
    for face_id, pixels in enumerate(crops[:, 0]):
        rng = None
        if settings.encoding == "poisson":
            rng = np.random.default_rng([seed, face_id, 0, 0])
        trains.append(encode(pixels, settings, rng))
    return np.stack(trains)


@dataclass(frozen=True)
class SpikeFigures:
    """Per-face activity of one run (faces averaged)."""

    layers: tuple[str, ...]
    spikes_per_face: tuple[float, ...]  # per layer, "input" first
    sparsity: tuple[float, ...]  # per layer: share of neuron-steps without a spike
    total_spikes_per_face: float
    synops_per_face: float
    timesteps: int


def spike_figures(stats: SpikeStats | None) -> SpikeFigures | None:
    if stats is None or stats.presentations == 0:
        return None
    faces = stats.presentations
    return SpikeFigures(
        layers=stats.layer_names,
        spikes_per_face=tuple(s / faces for s in stats.layer_spikes),
        sparsity=stats.layer_sparsity(),
        total_spikes_per_face=stats.spikes / faces,
        synops_per_face=stats.synaptic_ops / faces,
        timesteps=stats.timesteps,
    )


def mean_us(seconds: np.ndarray) -> float:
    return float(seconds.mean() * 1e6) if len(seconds) else math.nan
