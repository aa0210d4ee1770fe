"""Shared machinery of measured sources: a reading history and its integral over time.

Two kinds of sensor exist. Counters (RAPL) give cumulative energy, so the energy of an
interval is the counter difference. Rail monitors (INA3221) give instantaneous power,
so the energy is the integral of the power readings. Both are treated as piecewise
linear between readings and held constant outside the readings taken.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque

import numpy as np

from fer_ros.core.figures import EnergyFigure, FigureSource


class SampledPowerSource(ABC):
    """Base of measured sources; subclasses implement :meth:`_read`."""

    clock = staticmethod(time.monotonic)  # the timeline of start_s / end_s

    def __init__(self, *, cumulative: bool, description: str, max_samples: int = 4096) -> None:
        self._cumulative = cumulative  # True: _read gives joules so far; False: watts now
        self._description = description
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    @abstractmethod
    def _read(self) -> float:
        """Cumulative joules (counters) or instantaneous watts (rail monitors)."""

    @property
    def kind(self) -> FigureSource:
        return FigureSource.MEASURED

    @property
    def description(self) -> str:
        return self._description

    def sample(self) -> None:
        with self._lock:
            value = self._read()
            self._samples.append((self.clock(), value))

    def energy(self, start_s: float, end_s: float) -> EnergyFigure:
        if end_s < start_s:
            raise ValueError(f"interval ends before it starts: {start_s} > {end_s}")
        # The interval must be covered by readings: take one now if the last is older.
        if not self._samples or self._samples[-1][0] < end_s:
            self.sample()
        with self._lock:
            times = np.fromiter((t for t, _ in self._samples), float)
            values = np.fromiter((v for _, v in self._samples), float)
        duration = end_s - start_s
        if self._cumulative:
            joules = float(np.interp(end_s, times, values) - np.interp(start_s, times, values))
            watts = joules / duration if duration > 0 else _mean_rate(times, values)
        else:
            joules = _integral(times, values, start_s, end_s)
            watts = joules / duration if duration > 0 else float(np.interp(end_s, times, values))
        return EnergyFigure(joules, watts, FigureSource.MEASURED, self._description)

    def close(self) -> None:
        with self._lock:
            self._samples.clear()


def _integral(times: np.ndarray, values: np.ndarray, start: float, end: float) -> float:
    """Integral of the piecewise-linear signal through the readings over [start, end]."""
    inner = times[(times > start) & (times < end)]
    knots = np.concatenate(([start], inner, [end]))
    heights = np.interp(knots, times, values)
    return float(np.sum((heights[1:] + heights[:-1]) * np.diff(knots)) / 2.0)


def _mean_rate(times: np.ndarray, values: np.ndarray) -> float:
    """Mean power over the whole history (for a zero-length interval); NaN if unknown."""
    span = float(times[-1] - times[0])
    return float(values[-1] - values[0]) / span if span > 0 else float("nan")
