"""Edge profiles on this machine: latency, the device that ran, power and energy per inference.

Usage::

    python benchmarks/bench_edge.py [--profiles cpu,jetson,rpi,coral,ncs2] [-n 300]
                                    [--json results.json]

Each profile's inference parameters come from ``config/<profile>.yaml``, read through the
same function the inference node's settings use (profiles in config/ are the only source).
One face per inference, as the robot sees them: held-out-style
CK+ crops from shared/data when present (read at run time, never stored), else smooth
synthetic crops (said so in the output).

Power follows what actually ran, chosen by the same function as the inference node
(``fer_ros.power.power_source_for_backend``): on the profile's accelerator its sensor or
published model; on a CPU (a declared fallback, or a CPU profile on another computer) a
sensor of this host, else the model of this host's board, else no figure -- the
Raspberry Pi's power times this machine's latency would describe nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

# Run from a checkout: import it, and read its config/ and models/ (not an install's).
_CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_CHECKOUT))
os.environ.setdefault("FER_ROS_SHARE", str(_CHECKOUT))

from fer_ros.backends import BackendUnavailable, create_backend  # noqa: E402
from fer_ros.backends.base import InputKind  # noqa: E402
from fer_ros.backends.settings import profile_parameters, settings_from_parameters  # noqa: E402
from fer_ros.core.model_card import ModelCard  # noqa: E402
from fer_ros.core.preprocessing import preprocess_crops  # noqa: E402
from fer_ros.core.profiles import EDGE_PROFILES, profile_path  # noqa: E402
from fer_ros.power import (  # noqa: E402
    power_source_for_backend,
)
from fer_ros.power.host import host_power_model  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ck_plus_48_dev.npz"


@dataclass
class Row:
    profile: str
    backend: str
    export: str
    requested: str
    device: str = "-"
    fallback: bool = False
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    power_w: float = math.nan
    energy_mj: float = math.nan
    source: str = "-"
    power_model: str = "-"
    note: str = ""


def load_parameters(profile: str) -> tuple[dict[str, Any], str]:
    """A profile's inference parameters, read as the node reads them (config/ only)."""
    path = profile_path(profile)
    return profile_parameters(path), str(path)


def face_crops(card: ModelCard, count: int) -> tuple[np.ndarray, str]:
    if DATA.is_file():
        with np.load(DATA) as data:
            images = data["images"][:count]
        return preprocess_crops(images, card.preprocessing, card.canny), f"CK+ ({DATA.name})"
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (count, 6, 6), dtype=np.uint8)
    images = np.kron(coarse, np.ones((8, 8), np.uint8))
    return preprocess_crops(images, card.preprocessing, card.canny), "synthetic crops"


def run_profile(profile: str, args: argparse.Namespace) -> tuple[Row, str]:
    params, origin = load_parameters(profile)
    name, settings, power_config = settings_from_parameters(params)
    row = Row(profile, name, settings.model_export, settings.device or "(default)")
    cores = os.cpu_count() or 1
    capped = ""
    if settings.num_threads > cores:  # more threads than cores only adds queueing here
        capped = f"threads capped {settings.num_threads}->{cores} (host cores)"
        settings = replace(settings, num_threads=cores)
    try:
        backend = create_backend(name, settings)
    except (BackendUnavailable, ValueError) as exc:
        row.note = f"unavailable: {exc}"
        return row, origin
    if backend.input_kind is not InputKind.CROPS:
        backend.close()
        row.note = "not a CNN backend"
        return row, origin
    power = power_source_for_backend(power_config, backend.fallback, backend.device)
    crops, row.note = face_crops(settings.card, 256)
    row.note = "; ".join(filter(None, (row.note, capped)))
    try:
        for i in range(args.warmup):  # TensorRT builds its engine here; caches fill
            backend.infer(crops[i % len(crops)][None])
        latencies, joules, watts = [], [], []
        for i in range(args.n):
            face = crops[i % len(crops)][None]
            power.sample()
            start = time.monotonic()
            backend.infer(face)
            end = time.monotonic()
            power.sample()
            figure = power.energy(start, end)
            latencies.append(end - start)
            joules.append(figure.energy_j)
            watts.append(figure.power_w)
    finally:
        backend.close()
        power.close()
    row.device, row.fallback = backend.device, backend.fallback
    row.p50_ms, row.p95_ms = (float(np.percentile(latencies, q)) * 1e3 for q in (50, 95))
    row.power_w = float(np.mean(watts))
    row.energy_mj = float(np.mean(joules)) * 1e3
    row.source = power.kind.name
    row.power_model = power.description
    return row, origin


def print_table(rows: list[Row]) -> None:
    header = (
        "profile",
        "backend",
        "export",
        "requested",
        "ran on",
        "fallback",
        "p50 ms",
        "p95 ms",
        "power W",
        "mJ/inf",
        "source",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.profile,
                r.backend,
                r.export,
                r.requested,
                r.device,
                "yes" if r.fallback else "no",
                _num(r.p50_ms, 3),
                _num(r.p95_ms, 3),
                _num(r.power_w, 2),
                _num(r.energy_mj, 4),
                r.source,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for k, line in enumerate(lines):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for r in rows:
        print(f"[{r.profile}] power: {r.power_model}")
        if r.note:
            print(f"[{r.profile}] {r.note}")


def _num(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default=",".join(EDGE_PROFILES))
    parser.add_argument("-n", type=int, default=300, help="timed inferences per profile")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())  # others share this machine
    rows = []
    for profile in args.profiles.split(","):
        row, origin = run_profile(profile.strip(), args)
        row.note = f"parameters: {origin}" + (f"; {row.note}" if row.note else "")
        rows.append(row)
    print(
        f"host: {platform.machine()}, {os.cpu_count()} cores, load average {load} at start; "
        f"CPU power model {host_power_model() or 'none'}; {args.n} inferences of one face\n"
    )
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
