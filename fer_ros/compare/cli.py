"""fer_ros_compare: every profile, the Loihi ablation and the peer models, into one folder.

    fer_ros_compare [--profiles loihi,cpu] [--data PATH] [--max-faces N] [--out DIR]
                    [--ablation-timesteps 10,20,30,50,100] [--no-peers] [--graph]

Writes ``results.md``, ``results.csv`` and three PNG plots to ``--out`` (build/compare/).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from fer_ros.compare import plots
from fer_ros.compare.faces import FacesUnavailable, evaluation_faces
from fer_ros.compare.loihi import CANNY_CARD, GRAY_CARD
from fer_ros.compare.peers import PEERS
from fer_ros.compare.progress import Progress
from fer_ros.compare.provenance import host_description
from fer_ros.compare.ratios import headline_ratios
from fer_ros.compare.report import write_markdown
from fer_ros.compare.results_csv import write_csv
from fer_ros.compare.rows import Row
from fer_ros.compare.runs import profile_settings, run_ablation, run_peer, run_profile
from fer_ros.core.model_card import load_model_card
from fer_ros.core.paths import data_path, share_dir
from fer_ros.core.profiles import NEUROMORPHIC_PROFILE, PROFILES

OUTPUTS = ("results.md", "results.csv", plots.ENERGY_PNG, plots.LATENCY_PNG, plots.TIMESTEPS_PNG)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fer_ros_compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated (default: all)")
    p.add_argument("--data", type=Path, default=data_path(), help="labelled faces (.npz/.csv/dir)")
    p.add_argument("--max-faces", type=int, default=0, help="subsample the faces (0: all)")
    p.add_argument("--out", type=Path, default=Path("build/compare"))
    p.add_argument("--latency-n", type=int, default=300, help="timed calls per CNN backend")
    p.add_argument("--ablation-timesteps", default="10,20,30,50,100", help="'' skips it")
    p.add_argument("--gray-card", default=GRAY_CARD, help="grayscale twin of the Loihi card")
    p.add_argument("--no-peers", action="store_true", help="skip the fer / facex models")
    p.add_argument("--graph", action="store_true", help="also run each profile's whole graph")
    p.add_argument("--graph-seconds", type=float, default=20.0)
    p.add_argument("--graph-source", default="demo", help="camera source for --graph")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="nengo")  # version chatter, see loihi_backend
    warnings.filterwarnings("ignore", module="nengo_loihi")
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    steps = [int(t) for t in args.ablation_timesteps.split(",") if t.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    host, started = host_description(), time.monotonic()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    progress = Progress(_total_faces(args, profiles, steps), enabled=not args.quiet)
    rows, timings, faces = [], [], None
    for profile in profiles:
        progress.stage(profile)
        row, got = run_profile(profile, args.data, args.max_faces, args.latency_n, progress.tick)
        faces = faces or got
        rows.append(row)
        timings.append((f"profile {profile}", row.seconds))
    if NEUROMORPHIC_PROFILE in profiles and steps:
        rows += _ablation(args, steps, progress, timings)
    if not args.no_peers and faces is not None:
        power = profile_settings("cpu")[2] if "cpu" in PROFILES else None
        for peer in PEERS:
            progress.stage(f"peer {peer.key}")
            row = run_peer(peer, faces, power, args.latency_n, progress.tick)
            rows.append(row)
            timings.append((f"peer {peer.key}", row.seconds))
    if args.graph:
        _graphs(args, rows, timings, progress)
    progress.close()
    items = headline_ratios(rows)
    plots.energy_vs_accuracy(rows, args.out / plots.ENERGY_PNG)
    plots.latency(rows, args.out / plots.LATENCY_PNG)
    plots.loihi_energy_vs_timesteps(rows, args.out / plots.TIMESTEPS_PNG)
    timings.append(("total", time.monotonic() - started))
    header = _header(argv, host, load, faces.description if faces else "none (see notes)")
    write_markdown(args.out / "results.md", header, rows, items, host, timings)
    write_csv(args.out / "results.csv", rows, items)
    print(f"fer_ros_compare: wrote {', '.join(OUTPUTS)} to {args.out} in {timings[-1][1]:.0f} s")
    return 0 if any(r.ok for r in rows) else 1


def _ablation(
    args: argparse.Namespace, steps: list[int], progress: Progress, timings: list
) -> list[Row]:
    """The loihi profile's backend on one architecture with Canny and with grayscale input
    (the previous recipe's pair; the profile's own model is grayscale only), per T."""
    cards = [load_model_card(CANNY_CARD)] + (
        [load_model_card(args.gray_card)] if args.gray_card else []
    )
    rows = []
    for each in cards:
        for t in steps:
            progress.stage(f"ablation {each.preprocessing} T={t}")
            row = run_ablation(
                NEUROMORPHIC_PROFILE, each, t, args.data, args.max_faces, progress.tick
            )
            rows.append(row)
            timings.append((f"ablation {each.model_id} T={t}", row.seconds))
    return rows


def _graphs(args: argparse.Namespace, rows: list[Row], timings: list, progress: Progress) -> None:
    from fer_ros.compare.graph import graph_figures

    for row in (r for r in rows if r.kind == "profile"):
        progress.stage(f"graph {row.name}")
        start = time.monotonic()
        try:
            row.graph = graph_figures(row.name, args.graph_seconds, args.graph_source)
        except Exception as exc:  # a graph that cannot start is a result, not a crash
            row.notes.append(f"graph not measured: {type(exc).__name__}: {exc}")
        timings.append((f"graph {row.name}", time.monotonic() - start))


def _total_faces(args: argparse.Namespace, profiles: list[str], steps: list[int]) -> int:
    try:
        card = profile_settings(profiles[0])[1].card if profiles else None
        n = len(evaluation_faces(card, args.data, args.max_faces)) if card else 0
    except (FacesUnavailable, KeyError, ValueError, FileNotFoundError):
        return 0
    runs = len(profiles) + (0 if args.no_peers else len(PEERS))
    if NEUROMORPHIC_PROFILE in profiles:
        runs += len(steps) * (1 + bool(args.gray_card))
    return n * runs


def _header(argv: list[str] | None, host: str, load: str, faces: str) -> list[str]:
    command = shlex.join(["fer_ros_compare", *(sys.argv[1:] if argv is None else argv)])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Generated by `{command}` on {when}: {host}, "
        f"{os.cpu_count()} cores, load average {load} at the start.",
        f"Profiles and models from `{share_dir()}`; faces: {faces} (read at run time, "
        "never stored). Everything is measured on this machine unless it says otherwise: a "
        "device that is not here gets its published figures or *not measured*, never a blend.",
    ]
