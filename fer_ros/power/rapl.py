"""Intel RAPL energy counters through the Linux powercap sysfs interface.

Layout (kernel Documentation/power/powercap/powercap.rst,
https://docs.kernel.org/power/powercap/powercap.html): ``/sys/class/powercap/intel-rapl:N``
is a package zone, ``intel-rapl:N:M`` its subzones (core, uncore, dram); each has ``name``,
``energy_uj`` (cumulative micro-joules) and ``max_energy_range_uj`` (the value at which
``energy_uj`` wraps to zero). Since Linux 5.10 ``energy_uj`` is readable by root only
(CVE-2020-8694), so readability is checked, not assumed.

What it measures: the whole CPU package (every process on it), not one inference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fer_ros.power.base import PowerUnavailable
from fer_ros.power.sampled import SampledPowerSource

POWERCAP_DIR = Path("class/powercap")  # relative to the sysfs root
_ZONE_DIR = re.compile(r"^intel-rapl(:\d+)+$")


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str  # "package-0", "core", "dram", "psys" ...
    max_range_uj: int


def find_rapl_zones(sysfs_root: Path, domains: tuple[str, ...] = ("package",)) -> list[RaplZone]:
    """Zones whose ``name`` starts with one of ``domains`` (``package`` = package-N)."""
    base = sysfs_root / POWERCAP_DIR
    if not base.is_dir():
        return []
    zones = []
    for entry in sorted(base.iterdir()):
        if not _ZONE_DIR.match(entry.name) or not (entry / "energy_uj").exists():
            continue
        name = _read_text(entry / "name")
        if not any(name.startswith(d) for d in domains):
            continue
        zones.append(RaplZone(entry, name, int(_read_text(entry / "max_energy_range_uj"))))
    return zones


class RaplPowerSource(SampledPowerSource):
    """Cumulative package energy from RAPL, corrected for counter wraparound.

    A wrap is detected as a counter that went down; more than one wrap between two
    readings cannot be seen, so sample at least once per wrap period (minutes at
    tens of watts); the inference node samples around every inference.
    """

    def __init__(
        self,
        sysfs_root: str | Path = "/sys",
        domains: tuple[str, ...] = ("package",),
        max_samples: int = 4096,
    ) -> None:
        root = Path(sysfs_root)
        zones = find_rapl_zones(root, domains)
        if not zones:
            raise PowerUnavailable(
                f"no RAPL zone named {'/'.join(domains)}* under {root / POWERCAP_DIR} "
                "(needs an x86 CPU with RAPL and the intel_rapl_common driver; "
                "virtual machines usually expose none)"
            )
        self._zones = zones
        self._last_uj = [self._read_raw(z) for z in zones]  # also the readability check
        self._total_uj = 0
        paths = ", ".join(str(z.path / "energy_uj") for z in zones)
        super().__init__(
            cumulative=True,
            description=f"RAPL {'+'.join(z.name for z in zones)} ({paths}); whole package",
            max_samples=max_samples,
        )

    @staticmethod
    def _read_raw(zone: RaplZone) -> int:
        path = zone.path / "energy_uj"
        try:
            return int(_read_text(path))
        except PermissionError as exc:
            raise PowerUnavailable(
                f"{path} is not readable by this user (root-only since Linux 5.10); "
                "run as root or grant read access with a udev rule / chmod"
            ) from exc

    def _read(self) -> float:
        for i, zone in enumerate(self._zones):
            raw = self._read_raw(zone)
            delta = raw - self._last_uj[i]
            if delta < 0:  # the counter passed max_energy_range_uj and restarted at 0
                delta += zone.max_range_uj
            self._total_uj += delta
            self._last_uj[i] = raw
        return self._total_uj * 1e-6


def _read_text(path: Path) -> str:
    return path.read_text().strip()
