"""What one face did in the network: the result every emulator path returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Presentation:
    """What one face did in the network."""

    output_spikes: np.ndarray  # (timesteps, classes) bool
    output_voltage: np.ndarray  # (timesteps, classes) voltage / threshold
    input_counts: np.ndarray  # (pixels,) spikes sent into the chip per input pixel
    layer_counts: tuple[np.ndarray, ...]  # per layer, spikes per neuron (CNN order)
    timesteps: int
    output_start: np.ndarray | float = 0.0  # output voltage / threshold before step 1

    @property
    def output_counts(self) -> np.ndarray:
        return self.output_spikes.sum(axis=0).astype(np.float64)

    def readout(self, start: int = 0) -> np.ndarray:
        """Output integrated over steps ``start..end``, in spikes (count + voltage change).

        Skipping the first steps drops the transient in which the biases are already
        integrated but the face's spikes have not yet crossed every layer.
        """
        start = min(max(int(start), 0), self.timesteps - 1)
        before = self.output_voltage[start - 1] if start > 0 else self.output_start
        late = self.output_spikes[start:].sum(axis=0)
        return late + self.output_voltage[-1] - before
