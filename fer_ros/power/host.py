"""Which computer this is, so that a CPU run is never given another computer's power model.

A Raspberry Pi 4 or Jetson Nano names itself in the device tree; an x86 PC has none and
is told by its architecture. A profile's CPU model (rpi4, jetson_nano_*) describes a run
only on that board: anywhere else the host's own model applies, or none.
"""

from __future__ import annotations

import platform
from pathlib import Path

from fer_ros.power.modelled import POWER_MODELS, DevicePowerModel


def board_name(sysfs_root: str = "/sys") -> str:
    """The device tree's model text ("Raspberry Pi 4 Model B Rev 1.4"), or ""."""
    path = Path(sysfs_root) / "firmware" / "devicetree" / "base" / "model"
    try:
        return path.read_text(errors="ignore").strip("\x00\n ")
    except OSError:
        return ""


def describes_host(model: DevicePowerModel, sysfs_root: str = "/sys") -> bool:
    """True when ``model`` is a model of this computer's CPU."""
    if not model.host:
        return False
    if model.host == "x86":
        return platform.machine().lower() in ("x86_64", "amd64", "i686")
    return model.host in board_name(sysfs_root)


def host_power_model(sysfs_root: str = "/sys", prefer: str = "") -> str:
    """Key of the model of this computer's CPU: ``prefer`` when it describes the host,
    else the first board model that does ("" when none; x86 only when preferred, its
    figure being an assumption rather than a published one)."""
    if prefer and describes_host(POWER_MODELS[prefer], sysfs_root):
        return prefer
    for key, model in POWER_MODELS.items():
        if model.host not in ("", "x86") and describes_host(model, sysfs_root):
            return key
    return ""
