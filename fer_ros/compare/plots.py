"""The three plots: energy vs accuracy, latency per device, Loihi energy vs timesteps."""

from __future__ import annotations

import math
from pathlib import Path

from fer_ros.compare.chart import GREY, PALETTE, Chart, padded_range
from fer_ros.compare.rows import Row

ENERGY_PNG, LATENCY_PNG, TIMESTEPS_PNG = (
    "energy_vs_accuracy.png",
    "latency.png",
    "loihi_energy_vs_timesteps.png",
)


def energy_vs_accuracy(rows: list[Row], path: Path) -> None:
    """Energy per inference (log) against measured accuracy; only figures that describe
    the hardware that ran (measured: filled, modelled: hollow); the rest listed below."""
    profiles = [r for r in rows if r.kind == "profile"]
    twins = [  # the ablation's other input at the profile's timesteps (grayscale twin)
        r
        for r in rows
        if r.kind == "ablation"
        and any(r.timesteps == p.timesteps and r.model_id != p.model_id for p in profiles)
    ]
    candidates = [r for r in rows if r.kind != "ablation"] + twins
    shown = [r for r in candidates if r.plottable_energy and r.accuracy is not None]
    left_out = [r.name for r in candidates if r not in shown]
    ylim = padded_range([r.energy_j * 1e3 for r in shown], log=True)
    chart = Chart(
        "Energy per inference vs accuracy (this machine, held-out faces)",
        "accuracy (measured)",
        "mJ / inference (log)",
        (0.0, 1.0),
        ylim,
        ylog=True,
    )
    for i, row in enumerate(shown):
        kind = "filled" if row.source == "MEASURED" else "hollow"
        color = PALETTE[i % len(PALETTE)]
        chart.marker(row.accuracy.accuracy, row.energy_j * 1e3, kind, color, _label(row))
    chart.legend([("filled", "measured", GREY), ("hollow", "modelled (published constants)", GREY)])
    if not shown:
        chart.text("no energy figure here describes the hardware that ran", (140, 300), 0.6)
    if left_out:
        note = "not plotted (no figure for the hardware that ran): " + ", ".join(left_out)
        chart.text(note[:150], (10, chart.h - 6), 0.4, GREY)
    chart.save(path)


def latency(rows: list[Row], path: Path) -> None:
    """p50 bars with p95 ticks, log scale, one bar per profile and peer that ran."""
    shown = [r for r in rows if r.kind != "ablation" and math.isfinite(r.p50_ms)]
    xlim = padded_range([r.p50_ms for r in shown] + [r.p95_ms for r in shown], log=True)
    chart = Chart(
        "Per-face latency on this machine: bar p50, tick p95",
        "ms per face (log)",
        "",
        xlim,
        (0.0, 1.0),
        xlog=True,
        size=(1000, 120 + 46 * max(len(shown), 1)),
        left=330,
        yticks=False,
    )
    for i, row in enumerate(shown):
        where = row.device + (" (fallback)" if row.fallback else "")
        if "emulator" in row.latency_what:
            where = f"{row.device}: host time"
        color = PALETTE[i % len(PALETTE)]
        chart.hbar(i, len(shown), row.p50_ms, row.p95_ms, color, f"{row.name}: {where}"[:44])
    chart.save(path)


def loihi_energy_vs_timesteps(rows: list[Row], path: Path) -> None:
    """Modelled energy per face against timesteps, one line per input (Canny, grayscale),
    accuracy written at each point."""
    series: dict[str, list[Row]] = {}
    for row in rows:
        if row.kind == "ablation" and math.isfinite(row.energy_j):
            series.setdefault(f"{row.preprocessing} ({row.model_id})", []).append(row)
    points = [r for s in series.values() for r in s]
    xlim = padded_range([float(r.timesteps) for r in points], log=False, pad=0.05)
    ylim = (0.0, 1.1 * max((r.energy_j * 1e6 for r in points), default=1.0))
    chart = Chart(
        "Loihi: modelled energy per face vs timesteps (label: SNN accuracy)",
        "timesteps per face",
        "uJ / face",
        xlim,
        ylim,
    )
    legend = []
    for i, (name, line) in enumerate(series.items()):
        line.sort(key=lambda r: r.timesteps)
        color = PALETTE[i % len(PALETTE)]
        chart.polyline([r.timesteps for r in line], [r.energy_j * 1e6 for r in line], color)
        for r in line:
            acc = f"{r.accuracy.accuracy:.2f}" if r.accuracy else ""
            chart.marker(r.timesteps, r.energy_j * 1e6, "hollow", color, acc)
        legend.append(("line", name, color))
    chart.legend(legend or [("line", "no ablation run", GREY)])
    chart.save(path)


def _label(row: Row) -> str:
    if row.kind == "ablation":
        return f"loihi {row.name}"
    return f"{row.name} ({row.preprocessing} T={row.timesteps})" if row.timesteps else row.name
