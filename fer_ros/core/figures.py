"""Power and energy figures and their provenance, shared by power models, sensors and SNNs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FigureSource(int, Enum):
    """Provenance of a power or energy figure (values match fer_msgs/Telemetry)."""

    UNAVAILABLE = 0
    MEASURED = 1
    MODELLED = 2


@dataclass(frozen=True)
class EnergyFigure:
    """Energy of one inference, with its provenance."""

    energy_j: float
    power_w: float
    source: FigureSource
    model: str  # sensor path, or model name and the constants it uses
