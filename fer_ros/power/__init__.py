"""Power and energy per inference, measured where a sensor exists, modelled elsewhere."""

from __future__ import annotations

from fer_ros.power.base import (
    PowerSource,
    PowerUnavailable,
    UnavailablePowerSource,
)
from fer_ros.power.factory import (
    PowerConfig,
    from_config,
    is_cpu_device,
    power_source_for,
    power_source_for_backend,
)
from fer_ros.power.jetson import Ina3221PowerSource, find_ina3221_rails
from fer_ros.power.modelled import POWER_MODELS, DevicePowerModel, ModelledPowerSource
from fer_ros.power.rapl import RaplPowerSource, find_rapl_zones

__all__ = [
    "POWER_MODELS",
    "DevicePowerModel",
    "Ina3221PowerSource",
    "ModelledPowerSource",
    "PowerConfig",
    "PowerSource",
    "PowerUnavailable",
    "RaplPowerSource",
    "UnavailablePowerSource",
    "find_ina3221_rails",
    "find_rapl_zones",
    "from_config",
    "is_cpu_device",
    "power_source_for",
    "power_source_for_backend",
]
