"""The interface every inference backend implements, and what it reports back.

Backends are device runtimes (ONNX Runtime, LiteRT, OpenVINO, nengo-loihi) wrapped so
that the inference node never needs to know which one it drives. A backend is built
once from :class:`BackendSettings` (in the node's ``on_configure``), called per frame
with a batch of faces, and closed on the way down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from fer_ros.core.figures import EnergyFigure
from fer_ros.core.model_card import ModelCard
from fer_ros.core.options import Param


class BackendUnavailable(RuntimeError):
    """The runtime library, the device or the model file is missing.

    The message names what is missing and how to install or attach it.
    """


class InputKind(StrEnum):
    """What a backend consumes."""

    CROPS = "crops"  # float32 (n, 1, H, W) in [0, 1], preprocessed per the model card
    SPIKES = "spikes"  # bool (n, timesteps, H, W) spike trains from the spike encoder


@dataclass(frozen=True)
class SpikeStats:
    """Activity of a spiking network during one inference (all faces together)."""

    layer_names: tuple[str, ...]
    layer_spikes: tuple[int, ...]
    layer_neurons: tuple[int, ...]
    timesteps: int
    presentations: int  # faces presented
    synaptic_ops: int
    neuron_updates: int

    @property
    def spikes(self) -> int:
        return int(sum(self.layer_spikes))

    def layer_sparsity(self) -> tuple[float, ...]:
        """Fraction of neuron-timesteps without a spike, per layer."""
        steps = max(self.timesteps * self.presentations, 1)
        return tuple(
            1.0 - s / max(n * steps, 1)
            for s, n in zip(self.layer_spikes, self.layer_neurons, strict=True)
        )


@dataclass(frozen=True)
class InferenceResult:
    scores: np.ndarray  # float32 (n, classes), each row sums to 1
    spike_stats: SpikeStats | None = None
    energy: EnergyFigure | None = None  # set by backends that know their own energy


@dataclass(frozen=True)
class BackendSettings:
    """Everything a backend needs to load; filled from the inference node's parameters."""

    card: ModelCard
    model_export: str  # key into card.files, e.g. "onnx", "tflite_int8", "snn"
    device: str = ""  # requested device; "" means the backend's default
    num_threads: int = 1
    allow_cpu_fallback: bool = False  # only profiles that declare it may fall back
    options: Mapping[str, Any] = field(default_factory=dict)  # backend-specific


@runtime_checkable
class InferenceBackend(Protocol):
    """A loaded model on a device."""

    name: ClassVar[str]  # backend parameter value, e.g. "onnxruntime"
    input_kind: ClassVar[InputKind]
    options: ClassVar[tuple[Param, ...]]  # tunables, declared as <name>.<option> parameters

    @property
    def runtime(self) -> str:
        """Runtime library and version, e.g. ``onnxruntime 1.23.2``."""

    @property
    def device(self) -> str:
        """The device that actually runs the model."""

    @property
    def fallback(self) -> bool:
        """True when ``device`` is a declared fallback, not the requested device."""

    def infer(self, batch: np.ndarray) -> InferenceResult:
        """Classify a batch (see :class:`InputKind` for its layout)."""

    def close(self) -> None:
        """Free the device; the backend is unusable afterwards."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (runtimes return logits)."""
    z = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_crops(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """The crop batch as contiguous float32 (n, 1, H, W); ValueError on another shape."""
    if batch.ndim != 4 or batch.shape[1:] != (1, height, width):
        raise ValueError(f"expected crops (n, 1, {height}, {width}), got {batch.shape}")
    return np.ascontiguousarray(batch, dtype=np.float32)


def run_in_chunks(
    run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, size: int, classes: int
) -> np.ndarray:
    """Run a fixed-batch model over any batch, zero-padding the last chunk."""
    outputs = [np.zeros((0, classes), np.float32)]
    for i in range(0, len(batch), size):
        chunk = batch[i : i + size]
        padding = np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)
        outputs.append(run(np.concatenate([chunk, padding]))[: len(chunk)])
    return np.concatenate(outputs)
