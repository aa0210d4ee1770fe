"""NVIDIA Jetson on-module INA3221 rail monitors, read through sysfs.

Two driver layouts exist (both looked up in energymon's Jetson support,
github.com/energymon/energymon ``jetson/ina3221x.c`` and ``jetson/ina3221.c``, and the
kernel's Documentation/hwmon/ina3221.rst):

* L4T <= 32 (JetPack 4: Nano, TX2, Xavier): NVIDIA's IIO driver ``ina3221x``,
  ``/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceN/`` with ``rail_name_<c>`` and
  ``in_power<c>_input`` (mW), ``in_current<c>_input`` (mA), ``in_voltage<c>_input`` (mV),
  channels c = 0..2.
* L4T >= 34 (JetPack 5/6: Orin, Xavier): mainline hwmon driver ``ina3221``,
  ``/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonN/`` with ``in<c>_label``,
  ``in<c>_input`` (bus voltage, mV) and ``curr<c>_input`` (mA), channels c = 1..3, and
  ``update_interval`` (ms). Unconnected channels are labelled ``NC``.

Rail names per module (energymon ``jetson/JetsonPowerRails.md``): Nano POM_5V_IN /
POM_5V_GPU / POM_5V_CPU; Xavier NX VDD_IN / VDD_CPU_GPU_CV / VDD_SOC; AGX Xavier GPU, CPU,
SOC, CV, VDDRQ, SYS5V (no module input rail). The Jetson Nano 2GB has no INA3221.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fer_ros.power.base import PowerUnavailable
from fer_ros.power.sampled import SampledPowerSource

I2C_DRIVERS_DIR = Path("bus/i2c/drivers")  # relative to the sysfs root
# Rails that carry the whole module's input power, in order of preference.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "5V_IN", "VIN_SYS_5V0")
_BUS_ADDR = re.compile(r"^\d+-[0-9a-fA-F]{4}$")


@dataclass(frozen=True)
class Ina3221Rail:
    """One monitored rail; either a power file or a voltage and a current file."""

    name: str
    power_mw: Path | None = None
    voltage_mv: Path | None = None
    current_ma: Path | None = None
    update_interval_ms: int | None = None

    def read_w(self) -> float:
        if self.power_mw is not None:
            return _read_number(self.power_mw) * 1e-3
        if self.voltage_mv is None or self.current_ma is None:
            raise ValueError(f"rail {self.name} has neither a power nor a V and I file")
        return _read_number(self.voltage_mv) * _read_number(self.current_ma) * 1e-6

    @property
    def files(self) -> str:
        if self.power_mw is not None:
            return str(self.power_mw)
        return f"{self.voltage_mv} x {self.current_ma}"


def find_ina3221_rails(sysfs_root: Path) -> list[Ina3221Rail]:
    """Every connected rail of both driver layouts under ``sysfs_root``."""
    drivers = sysfs_root / I2C_DRIVERS_DIR
    return _iio_rails(drivers / "ina3221x") + _hwmon_rails(drivers / "ina3221")


def _iio_rails(driver_dir: Path) -> list[Ina3221Rail]:
    rails = []
    for device in _bus_addr_dirs(driver_dir):
        for iio in sorted(device.glob("iio:device*")):
            for channel in range(3):
                label = iio / f"rail_name_{channel}"
                if not label.exists():
                    continue  # channel not wired
                power = iio / f"in_power{channel}_input"
                voltage = iio / f"in_voltage{channel}_input"
                current = iio / f"in_current{channel}_input"
                if power.exists():
                    rails.append(Ina3221Rail(_read_text(label), power_mw=power))
                elif voltage.exists() and current.exists():
                    rails.append(Ina3221Rail(_read_text(label), None, voltage, current))
    return rails


def _hwmon_rails(driver_dir: Path) -> list[Ina3221Rail]:
    rails = []
    for device in _bus_addr_dirs(driver_dir):
        for hwmon in sorted((device / "hwmon").glob("hwmon*")):
            interval = hwmon / "update_interval"
            interval_ms = int(_read_number(interval)) if interval.exists() else None
            for channel in (1, 2, 3):
                voltage = hwmon / f"in{channel}_input"
                current = hwmon / f"curr{channel}_input"
                if not (voltage.exists() and current.exists()):
                    continue
                label = hwmon / f"in{channel}_label"
                name = _read_text(label) if label.exists() else f"{device.name}:{channel}"
                if name == "NC":  # not connected
                    continue
                rails.append(Ina3221Rail(name, None, voltage, current, interval_ms))
    return rails


def _bus_addr_dirs(driver_dir: Path) -> list[Path]:
    if not driver_dir.is_dir():
        return []
    return [d for d in sorted(driver_dir.iterdir()) if _BUS_ADDR.match(d.name)]


class Ina3221PowerSource(SampledPowerSource):
    """Instantaneous power of the chosen Jetson rails (default: the module input rail).

    The INA3221 averages over its conversion window (``update_interval``, milliseconds),
    so for an inference shorter than that window the figure is the rail's mean power
    over the window times the busy time.
    """

    def __init__(
        self,
        sysfs_root: str | Path = "/sys",
        rails: tuple[str, ...] = (),
        max_samples: int = 4096,
    ) -> None:
        root = Path(sysfs_root)
        found = find_ina3221_rails(root)
        if not found:
            raise PowerUnavailable(
                f"no INA3221 rails under {root / I2C_DRIVERS_DIR}/ina3221[x] "
                "(only Jetson modules have them; the Jetson Nano 2GB has none)"
            )
        self._rails = _choose(found, rails)
        for rail in self._rails:  # readability check
            try:
                rail.read_w()
            except PermissionError as exc:
                raise PowerUnavailable(f"cannot read {rail.files}: {exc}") from exc
        names = "+".join(r.name for r in self._rails)
        files = "; ".join(r.files for r in self._rails)
        intervals = {r.update_interval_ms for r in self._rails} - {None}
        window = f", sensor window {max(intervals)} ms" if intervals else ""
        scope = (
            ""
            if len(self._rails) == 1 and self._rails[0].name in INPUT_RAILS
            else (" (not the module input rail)")
        )
        super().__init__(
            cumulative=False,
            description=f"INA3221 {names}{scope} ({files}{window})",
            max_samples=max_samples,
        )

    def _read(self) -> float:
        return sum(rail.read_w() for rail in self._rails)


def _choose(found: list[Ina3221Rail], wanted: tuple[str, ...]) -> list[Ina3221Rail]:
    by_name = {r.name: r for r in found}
    if wanted:
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise PowerUnavailable(
                f"INA3221 rails {missing} not found; this module has {sorted(by_name)}"
            )
        return [by_name[w] for w in wanted]
    for name in INPUT_RAILS:
        if name in by_name:
            return [by_name[name]]
    return found  # no input rail (AGX Xavier): the sum of all rails


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _read_number(path: Path) -> float:
    # Some L4T files append a unit, e.g. "5000 ms": keep the leading number.
    return float(_read_text(path).split()[0])
