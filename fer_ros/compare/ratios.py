"""The paper's headline ratios (Coral TPU / Loihi, power and energy) from our figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fer_ros.compare.reference import Claim, headline
from fer_ros.compare.rows import Row
from fer_ros.power import POWER_MODELS


@dataclass(frozen=True)
class Ratio:
    quantity: str  # "power" or "energy"
    paper: Claim
    ours: float  # NaN: not computable here (``why``)
    coral: str  # the Coral figure and where it comes from
    loihi: str
    why: str = ""


def headline_ratios(rows: list[Row]) -> list[Ratio]:
    loihi = next((r for r in rows if r.kind == "profile" and r.backend == "loihi"), None)
    coral = next((r for r in rows if r.kind == "profile" and r.accelerator == "coral"), None)
    return [_power(loihi, coral), _energy(loihi, coral)]


def _power(loihi: Row | None, coral: Row | None) -> Ratio:
    paper = headline("power")
    if loihi is None or not math.isfinite(loihi.power_w):
        return Ratio("power", paper, math.nan, "-", "-", "no Loihi power figure (profile not run)")
    mine = f"{loihi.power_w * 1e3:.1f} mW, {_kind(loihi)}"
    if coral is not None and coral.plottable_energy:
        theirs = f"{coral.power_w:.3g} W, {coral.source.lower()} on {coral.device}"
        return Ratio("power", paper, coral.power_w / loihi.power_w, theirs, mine)
    key = coral.power_model_key if coral is not None else "coral_usb"
    if key not in POWER_MODELS:
        return Ratio("power", paper, math.nan, "-", mine, "no Coral power figure or model")
    model = POWER_MODELS[key]
    theirs = f"{model.active_w:g} W: {model.active_source}; not measured (no Edge TPU here)"
    return Ratio("power", paper, model.active_w / loihi.power_w, theirs, mine)


def _energy(loihi: Row | None, coral: Row | None) -> Ratio:
    paper = headline("energy")
    if loihi is None or not math.isfinite(loihi.energy_j):
        return Ratio("energy", paper, math.nan, "-", "-", "no Loihi energy figure")
    mine = f"{loihi.energy_j * 1e6:.1f} uJ/face, {_kind(loihi)}"
    if coral is not None and coral.plottable_energy:
        theirs = f"{coral.energy_j * 1e3:.3g} mJ, {coral.source.lower()} on {coral.device}"
        return Ratio("energy", paper, coral.energy_j / loihi.energy_j, theirs, mine)
    where = f"ran on {coral.device}{' (fallback)' if coral.fallback else ''}" if coral else "-"
    return Ratio(
        "energy",
        paper,
        math.nan,
        f"not measured ({where})",
        mine,
        "no Edge TPU here, so no Coral latency and no Coral energy; the Coral's rated power "
        "times this CPU's busy time would describe neither device",
    )


def _kind(row: Row) -> str:
    if "emulator" in row.device:
        return f"{row.source.lower()} from the emulator's counted activity"
    return f"{row.source.lower()} on {row.device}"
