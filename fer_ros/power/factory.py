"""Choose the power source a profile asks for: measured when readable, else modelled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fer_ros.power.base import PowerSource, PowerUnavailable, UnavailablePowerSource
from fer_ros.power.host import host_power_model
from fer_ros.power.jetson import Ina3221PowerSource
from fer_ros.power.modelled import POWER_MODELS, ModelledPowerSource
from fer_ros.power.nvml import NvmlPowerSource
from fer_ros.power.rapl import RaplPowerSource

_log = logging.getLogger(__name__)

SOURCE_CHOICES = ("auto", "measured", "model", "none")
SENSOR_CHOICES = ("auto", "ina3221", "nvml", "rapl")


@dataclass(frozen=True)
class PowerConfig:
    """The ``power.*`` parameters of an inference profile."""

    source: str = "auto"  # auto | measured | model | none
    model: str = ""  # POWER_MODELS key for the requested device
    fallback_model: str = ""  # POWER_MODELS key when the backend ran its declared CPU fallback
    sensor: str = "auto"  # auto | ina3221 | nvml | rapl
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
    """The source for what actually ran, on the computer it ran on.

    An accelerator run (no fallback, not a CPU) uses the profile's sensor or model. A CPU
    run uses the host's sensors when readable, else a model of this host: the profile's
    ``power.model`` (a CPU profile such as rpi) or ``power.fallback_model`` (a declared
    fallback) only when that model describes this computer, otherwise this board's own
    model, otherwise no figure. A fallback onto another accelerator (``device``, e.g. an
    NPU standing in for an NCS2) has no model, so no figure.
    """
    on_cpu = fallback or (bool(device) and is_cpu_device(device))
    if not on_cpu:
        return from_config(config)
    if fallback and device and not is_cpu_device(device):
        return UnavailablePowerSource(
            f"ran on {device} in place of the profile's device; no power model covers it"
        )
    parameter = "power.fallback_model" if fallback else "power.model"
    wanted = config.fallback_model if fallback else config.model
    model = host_power_model(config.sysfs_root, prefer=wanted)
    if wanted and model != wanted:
        _log.info(
            "power: %s=%s does not describe this computer; %s",
            parameter,
            wanted,
            f"using its own model {model}" if model else "no model of it",
        )
    # The accelerator's sensors do not cover the host CPU: measure the host with any
    # readable sensor, else model it.
    host = PowerConfig(
        source=config.source,
        model=model,
        sensor="auto" if fallback else config.sensor,
        rails=config.rails,
        domains=config.domains,
        active_w=None if fallback else config.active_w,
        sysfs_root=config.sysfs_root,
    )
    return from_config(host, model_parameter=parameter)


def is_cpu_device(device: str) -> bool:
    """True for the CPU names backends report (``cpu``, ``CPU``, ``CPUExecutionProvider``)."""
    return device.strip().upper().startswith("CPU")


def from_config(config: PowerConfig, model_parameter: str = "power.model") -> PowerSource:
    """The source a :class:`PowerConfig` asks for (see :func:`power_source_for`);
    ``model_parameter`` is the parameter that named ``config.model``, for messages."""
    if config.source == "none":
        return UnavailablePowerSource("power figures disabled by the profile (power.source none)")
    if config.source == "model":
        return _modelled(config, model_parameter)
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
    return UnavailablePowerSource(
        f"no readable sensor and no {model_parameter} for this computer ({why})"
    )


def _sensors_to_try(config: PowerConfig) -> tuple[str, ...]:
    if config.sensor != "auto":
        return (config.sensor,)
    if config.model:
        return POWER_MODELS[config.model].sensors
    return ("ina3221", "rapl")


def _measured(sensor: str, config: PowerConfig) -> PowerSource:
    if sensor == "ina3221":
        return Ina3221PowerSource(config.sysfs_root, rails=config.rails)
    if sensor == "nvml":
        return NvmlPowerSource()
    return RaplPowerSource(config.sysfs_root, domains=config.domains)


def _modelled(config: PowerConfig, model_parameter: str = "power.model") -> PowerSource:
    if not config.model:
        raise ValueError(f"power.source model needs {model_parameter}")
    return ModelledPowerSource(config.model, active_w=config.active_w)
