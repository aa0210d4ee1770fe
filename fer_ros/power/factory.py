"""Choose the power source a profile asks for: measured when readable, else modelled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fer_ros.power.base import PowerSource, PowerUnavailable, UnavailablePowerSource
from fer_ros.power.jetson import Ina3221PowerSource
from fer_ros.power.modelled import POWER_MODELS, ModelledPowerSource
from fer_ros.power.rapl import RaplPowerSource

_log = logging.getLogger(__name__)

SOURCE_CHOICES = ("auto", "measured", "model", "none")
SENSOR_CHOICES = ("auto", "ina3221", "rapl")


@dataclass(frozen=True)
class PowerConfig:
    """The ``power.*`` parameters of an inference profile."""

    source: str = "auto"  # auto | measured | model | none
    model: str = ""  # POWER_MODELS key for the requested device
    fallback_model: str = ""  # POWER_MODELS key when the backend ran its declared CPU fallback
    sensor: str = "auto"  # auto | ina3221 | rapl
    rails: tuple[str, ...] = ()  # INA3221 rails to sum; empty: the module input rail
    domains: tuple[str, ...] = ("package",)  # RAPL zone names
    active_w: float | None = None  # overrides the model's active power (documented source!)
    sysfs_root: str = "/sys"

    def __post_init__(self) -> None:
        if self.source not in SOURCE_CHOICES:
            raise ValueError(f"power.source {self.source!r} not in {SOURCE_CHOICES}")
        if self.sensor not in SENSOR_CHOICES:
            raise ValueError(f"power.sensor {self.sensor!r} not in {SENSOR_CHOICES}")
        for key in (self.model, self.fallback_model):
            if key and key not in POWER_MODELS:
                raise ValueError(f"power model {key!r} not in {tuple(POWER_MODELS)}")


def power_source_for(name: str = "auto", **kwargs: Any) -> PowerSource:
    """A power source by mode (auto/measured/model/none), sensor name or model key.

    Keyword arguments are :class:`PowerConfig` fields (``model``, ``sensor``, ``rails``,
    ``domains``, ``active_w``, ``sysfs_root``). ``auto`` measures with a sensor that covers
    the modelled device (or any sensor when no model is given) if one is readable, else
    models; ``measured`` raises :class:`PowerUnavailable` instead of modelling.
    """
    if name in POWER_MODELS:
        kwargs.setdefault("model", name)
        name = "model"
    elif name in SENSOR_CHOICES[1:]:
        kwargs.setdefault("sensor", name)
        name = "measured"
    return from_config(PowerConfig(source=name, **kwargs))


def power_source_for_backend(config: PowerConfig, fallback: bool, device: str = "") -> PowerSource:
    """The source for what actually ran.

    Without a fallback that is the profile's device. A declared CPU fallback uses the
    host's sensors, else ``fallback_model`` if the profile names one, else gives no figure;
    a fallback onto another accelerator
    (``device``, e.g. an NPU standing in for an NCS2) has no model, so no figure.
    """
    if not fallback:
        return from_config(config)
    if device and not is_cpu_device(device):
        return UnavailablePowerSource(
            f"ran on {device} in place of the profile's device; no power model covers it"
        )
    # The accelerator's sensors and model do not cover the host CPU: measure the host
    # when a sensor is readable, else model it if the profile names the host's model.
    return from_config(
        PowerConfig(
            source=config.source,
            model=config.fallback_model,
            sensor="auto",
            domains=config.domains,
            sysfs_root=config.sysfs_root,
        )
    )


def is_cpu_device(device: str) -> bool:
    """True for the CPU names backends report (``cpu``, ``CPU``, ``CPUExecutionProvider``)."""
    return device.strip().upper().startswith("CPU")


def from_config(config: PowerConfig) -> PowerSource:
    """The source a :class:`PowerConfig` asks for (see :func:`power_source_for`)."""
    if config.source == "none":
        return UnavailablePowerSource("power figures disabled by the profile (power.source none)")
    if config.source == "model":
        return _modelled(config)
    sensors = _sensors_to_try(config)
    reasons = []
    for sensor in sensors:
        try:
            source = _measured(sensor, config)
        except PowerUnavailable as exc:
            reasons.append(f"{sensor}: {exc}")
            continue
        _log.info("power: measuring with %s", source.description)
        return source
    why = "; ".join(reasons) or f"no sensor covers power model {config.model!r}"
    if config.source == "measured":
        raise PowerUnavailable(why)
    if config.model:
        source = _modelled(config)
        _log.info("power: no readable sensor (%s); %s", why, source.description)
        return source
    return UnavailablePowerSource(f"no readable sensor and no power.model ({why})")


def _sensors_to_try(config: PowerConfig) -> tuple[str, ...]:
    if config.sensor != "auto":
        return (config.sensor,)
    if config.model:
        return POWER_MODELS[config.model].sensors
    return ("ina3221", "rapl")


def _measured(sensor: str, config: PowerConfig) -> PowerSource:
    if sensor == "ina3221":
        return Ina3221PowerSource(config.sysfs_root, rails=config.rails)
    return RaplPowerSource(config.sysfs_root, domains=config.domains)


def _modelled(config: PowerConfig) -> PowerSource:
    if not config.model:
        raise ValueError("power.source model needs power.model")
    return ModelledPowerSource(config.model, active_w=config.active_w)
