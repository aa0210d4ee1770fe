"""Does a power figure describe the hardware that actually ran? Labelled, never blended.

The node's power source already refuses another computer's CPU model for a CPU run
(fer_ros.power.host); this re-checks each figure with the same functions, so a modelled
figure is only plotted and compared when its model describes the device that ran, and
says so when its power is an assumption rather than a published figure.
"""

from __future__ import annotations

import platform

from fer_ros.core.figures import FigureSource
from fer_ros.power import DevicePowerModel, ModelledPowerSource, PowerSource, is_cpu_device
from fer_ros.power.host import board_name, describes_host


def host_description() -> str:
    """This computer as the power models see it: its board name, else its architecture."""
    return board_name() or platform.machine()


def figure_validity(source: PowerSource | None, device: str) -> str:
    """``yes`` (with a caveat), ``-`` (no figure), or ``no: why`` it describes something else."""
    if source is None or source.kind is FigureSource.UNAVAILABLE:
        return "-"
    if source.kind is FigureSource.MEASURED or not isinstance(source, ModelledPowerSource):
        return "yes"
    model = source.model
    if is_cpu_device(device) and not describes_host(model):
        return f"no: {model.device} power x this computer's busy time"
    return "yes (assumed power)" if "ASSUMPTION" in model.active_source else "yes"


def device_absent(model: DevicePowerModel, device: str, fallback: bool) -> bool:
    """The profile's device (described by ``model``) did not run here."""
    return fallback or (is_cpu_device(device) and not describes_host(model))
