"""What a power source is: something that turns a busy interval into an energy figure.

A measured source reads a sensor (a rail monitor, an energy counter); a modelled source
multiplies a published device power by the measured busy time. Both answer with an
:class:`~fer_ros.core.figures.EnergyFigure` whose ``source`` says which it is, so a model
is never presented as a measurement.

Times are ``time.monotonic()`` seconds. Measured sources only know the past: call
:meth:`PowerSource.sample` right before and right after the work, then ask for
:meth:`PowerSource.energy` of that interval.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from fer_ros.core.figures import EnergyFigure, FigureSource


class PowerUnavailable(RuntimeError):
    """The requested power sensor does not exist or cannot be read; says why."""


@runtime_checkable
class PowerSource(Protocol):
    """Energy of busy intervals on one device."""

    @property
    def kind(self) -> FigureSource:
        """MEASURED, MODELLED or UNAVAILABLE: what every figure from this source is."""

    @property
    def description(self) -> str:
        """Sensor paths, or model name with its constants and citation."""

    def sample(self) -> None:
        """Take a sensor reading now (no-op for modelled sources)."""

    def energy(self, start_s: float, end_s: float) -> EnergyFigure:
        """Energy and mean power of the device over ``[start_s, end_s]`` (monotonic s)."""

    def close(self) -> None:
        """Release files and threads."""


class UnavailablePowerSource:
    """Used when neither a sensor nor a power model applies; figures are NaN."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    @property
    def kind(self) -> FigureSource:
        return FigureSource.UNAVAILABLE

    @property
    def description(self) -> str:
        return self._reason

    def sample(self) -> None:
        pass

    def energy(self, start_s: float, end_s: float) -> EnergyFigure:
        return EnergyFigure(math.nan, math.nan, FigureSource.UNAVAILABLE, self._reason)

    def close(self) -> None:
        pass
