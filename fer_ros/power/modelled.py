"""Modelled power: a published device power times the measured busy time.

Used where no sensor covers the device (USB sticks, a Raspberry Pi 4 without a power
meter). Every constant carries its source beside it; a value without one is marked as an
assumption. Ratings and power budgets are upper bounds for a small CNN that does not
saturate the device, so modelled energies are conservative, and never measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from fer_ros.core.figures import EnergyFigure, FigureSource


@dataclass(frozen=True)
class DevicePowerModel:
    """Power of one device while busy (and idle, where a source gives it)."""

    key: str  # value of the profile's power.model
    device: str
    active_w: float
    active_source: str
    idle_w: float | None  # None: no published figure found; not used in energy
    idle_source: str
    sensors: tuple[str, ...] = ()  # measured sources that cover this device, if present
    # A model of a computer's own CPU (not of a USB or PCIe accelerator) describes a run on
    # the CPU only on that computer: the device-tree model text that identifies the board,
    # or "x86" for the generic x86 package. Empty for accelerators.
    host: str = ""


POWER_MODELS: dict[str, DevicePowerModel] = {
    m.key: m
    for m in (
        DevicePowerModel(
            key="coral_usb",
            device="Google Coral USB Accelerator (Edge TPU)",
            # Coral Accelerator Module datasheet v1.4 and M.2 Accelerator datasheet
            # (coral.ai/docs/m2/datasheet): the Edge TPU performs 4 TOPS using 2 W
            # (0.5 W per TOPS). Chip rating at peak, excludes the stick's USB bridge.
            active_w=2.0,
            active_source="Coral Edge TPU datasheets: 4 TOPS at 2 W (rating)",
            idle_w=None,
            idle_source="no published idle figure found",
        ),
        DevicePowerModel(
            key="ncs2",
            device="Intel Neural Compute Stick 2 (Myriad X VPU)",
            # Tom's Hardware, "Intel Unveils Movidius Myriad X Vision Processing Unit"
            # (2017): up to 4 TOPS "within a slim 1.5W power envelope"; AnandTech's
            # launch report cites "within 1W" -- the higher envelope is used.
            active_w=1.5,
            active_source="Movidius Myriad X launch: 1.5 W power envelope (rating)",
            idle_w=None,
            idle_source="no published idle figure found",
        ),
        DevicePowerModel(
            key="jetson_nano_5w",
            device="NVIDIA Jetson Nano module, nvpmodel mode 1 (5W)",
            # NVIDIA L4T Development Guide 32.1, "Power Management for Jetson Nano
            # Devices", Supported Modes: mode ID 1 "5W" power budget 5 W, 2 CPUs online,
            # CPU <= 918 MHz, GPU <= 640 MHz. A budget (cap), not a measurement.
            active_w=5.0,
            active_source="L4T 32.1 Power Management for Jetson Nano: 5W mode budget",
            idle_w=None,
            idle_source="no published idle figure found",
            sensors=("ina3221",),
            host="Jetson Nano",
        ),
        DevicePowerModel(
            key="jetson_nano_10w",
            device="NVIDIA Jetson Nano module, nvpmodel mode 0 (MAXN, 10W)",
            # Same source: mode ID 0 "MaxN" power budget 10 W, 4 CPUs online,
            # CPU <= 1479 MHz, GPU <= 921.6 MHz. A budget (cap), not a measurement.
            active_w=10.0,
            active_source="L4T 32.1 Power Management for Jetson Nano: MaxN budget",
            idle_w=None,
            idle_source="no published idle figure found",
            sensors=("ina3221",),
            host="Jetson Nano",
        ),
        DevicePowerModel(
            key="rpi4",
            device="Raspberry Pi 4 Model B (whole board at the USB-C input)",
            # linuxhint.com/power-consumption-raspberry-pi, current table for the Pi 4B
            # at 5 V: 1280 mA with 400 % CPU load, 575 mA idle. Corroborated by
            # chipwired.com/raspberry-pi-power-use (high load 5.1-6.3 W, idle 2.2-3.0 W).
            active_w=6.4,
            active_source="linuxhint Pi 4B table: 1280 mA x 5 V at 400 % CPU (measured)",
            idle_w=2.9,
            idle_source="linuxhint Pi 4B table: 575 mA x 5 V idle (measured)",
            host="Raspberry Pi 4",
        ),
        DevicePowerModel(
            key="x86_cpu",
            device="generic x86-64 CPU package",
            # ASSUMPTION, no citation: 15 W, the usual TDP class of mobile x86 parts.
            # Override with power.active_w for a known CPU; prefer RAPL when readable.
            active_w=15.0,
            active_source="ASSUMPTION: 15 W mobile-class TDP, not this host's figure",
            idle_w=None,
            idle_source="ASSUMPTION: not modelled",
            sensors=("rapl",),
            host="x86",
        ),
    )
}


class ModelledPowerSource:
    """Energy = the model's active power x the busy time; figures marked MODELLED."""

    def __init__(self, model: DevicePowerModel | str, active_w: float | None = None) -> None:
        if isinstance(model, str):
            if model not in POWER_MODELS:
                raise ValueError(
                    f"unknown power model {model!r}; choose one of {', '.join(POWER_MODELS)}"
                )
            model = POWER_MODELS[model]
        self._model = model
        self._active_w = model.active_w if active_w is None else float(active_w)
        source = model.active_source if active_w is None else "user-supplied power.active_w"
        self._description = f"model {model.key}: {self._active_w:g} W active x busy time ({source})"

    @property
    def model(self) -> DevicePowerModel:
        return self._model

    @property
    def kind(self) -> FigureSource:
        return FigureSource.MODELLED

    @property
    def description(self) -> str:
        return self._description

    def sample(self) -> None:
        pass

    def energy(self, start_s: float, end_s: float) -> EnergyFigure:
        if end_s < start_s:
            raise ValueError(f"interval ends before it starts: {start_s} > {end_s}")
        joules = self._active_w * (end_s - start_s)
        return EnergyFigure(joules, self._active_w, FigureSource.MODELLED, self._description)

    def close(self) -> None:
        pass
