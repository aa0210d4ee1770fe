"""One inference call with its energy figure, as the inference node and the comparison
tool both measure it: the backend's own figure when it has one (Loihi), else the power
source sampled right before and after the call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fer_ros.backends.base import InferenceResult
from fer_ros.core.figures import EnergyFigure
from fer_ros.power import PowerSource


class MeteredCall:
    """Runs a backend call between two power samples and returns its energy figure."""

    def __init__(self, power: PowerSource | None) -> None:
        self.power = power

    def __call__(
        self, infer: Callable[[Any], InferenceResult], batch: Any
    ) -> tuple[InferenceResult, EnergyFigure | None, float]:
        """(result, energy, busy seconds); the backend's own figure wins when it has one."""
        if self.power is not None:
            self.power.sample()
        begin = time.perf_counter()
        result = infer(batch)
        busy_s = time.perf_counter() - begin
        energy = result.energy
        if energy is None and self.power is not None:
            self.power.sample()
            now = time.monotonic()  # power sources work on the monotonic clock
            energy = self.power.energy(now - busy_s, now)
        return result, energy, busy_s
