"""A profile measured through exactly what its inference node builds from config/.

``settings_from_parameters(profile_parameters(profile_path(name)))`` gives the backend,
its settings and the power configuration; ``create_backend`` loads the real runtime and
``power_source_for_backend`` picks the power source for the device that actually ran.
Spiking backends get spike trains encoded as the profile's spike encoding node would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.backends import BackendUnavailable, InputKind, create_backend
from fer_ros.backends.base import BackendSettings
from fer_ros.backends.settings import settings_from_parameters
from fer_ros.compare.accuracy import card_accuracy, measured_accuracy
from fer_ros.compare.faces import Faces, FacesUnavailable, evaluation_faces
from fer_ros.compare.loihi import encode_faces, encoding_settings, mean_us, spike_figures
from fer_ros.compare.measure import Measurement, measure
from fer_ros.compare.peers import Peer, PeerBackend, class_map, installed_version
from fer_ros.compare.provenance import figure_validity
from fer_ros.compare.rows import Row
from fer_ros.core.figures import FigureSource
from fer_ros.core.model_card import ModelCard
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.core.profiles import profile_parameters, profile_path
from fer_ros.power import PowerSource, power_source_for_backend

Tick = Callable[[], None]


def profile_settings(
    profile: str, card: ModelCard | None = None, overrides: dict[str, Any] | None = None
) -> tuple[str, BackendSettings, Any, dict[str, Any]]:
    """(backend, settings, power config, spike encoding parameters) as the nodes read them."""
    path = profile_path(profile)
    params = {**profile_parameters(path), **(overrides or {})}
    name, settings, power = settings_from_parameters(params, card=card)
    try:
        encoder = profile_parameters(path, node="spike_encoding")
    except KeyError:
        encoder = {}
    return name, settings, power, encoder


def capped(settings: BackendSettings, row: Row) -> BackendSettings:
    """More runtime threads than cores only adds queueing on a shared host: cap them."""
    cores = os.cpu_count() or 1
    if settings.num_threads <= cores:
        return settings
    row.notes.append(f"threads capped {settings.num_threads} -> {cores} (host cores)")
    return replace(settings, num_threads=cores)


def run_backend(
    row: Row,
    name: str,
    settings: BackendSettings,
    power_config: Any,
    encoder: dict[str, Any],
    data: Path,
    max_faces: int,
    latency_n: int,
    tick: Tick | None = None,
) -> Faces | None:
    """Fill ``row`` with what the backend measures on the card's held-out faces."""
    card = settings.card
    row.model_id, row.preprocessing = card.model_id, card.preprocessing
    row.backend, row.export = name, settings.model_export
    row.requested = settings.device or f"target {settings.options.get('target', 'default')}"
    row.card = card_accuracy(card, Path(data).stem)
    try:
        faces = evaluation_faces(card, data, max_faces)
    except FacesUnavailable as exc:
        row.notes.append(f"accuracy and latency not measured: {exc}")
        return None
    settings = capped(settings, row)
    try:
        backend = create_backend(name, settings)
    except (BackendUnavailable, ValueError) as exc:
        row.notes.append(f"not measured, backend unavailable here: {exc}")
        return faces
    power: PowerSource | None = None
    try:
        row.runtime, row.device, row.fallback = backend.runtime, backend.device, backend.fallback
        crops = preprocess_crops(faces.images, card.preprocessing, card.canny)
        if backend.input_kind is InputKind.SPIKES:
            steps = int(settings.options.get("timesteps") or 0)
            spike_settings = encoding_settings(encoder, card, steps)
            inputs = encode_faces(crops, spike_settings, int(encoder.get("seed", 0)))
            row.timesteps = spike_settings.timesteps
            params = getattr(backend, "params", None)  # LoihiBackend's SnnParams
            row.cores = int(getattr(params, "n_cores", 0))
            if "emulator" in row.device:  # the host simulating the chip, not the chip
                row.latency_what = "emulator host time per face (not chip time)"
            result = measure(backend, inputs, None, 0, warmup=1, tick=tick)
        else:
            power = power_source_for_backend(power_config, backend.fallback, backend.device)
            result = measure(backend, crops, power, latency_n, warmup=20, tick=tick)
    finally:
        backend.close()
    fill(row, result, faces, power)
    return faces


def fill(row: Row, result: Measurement, faces: Faces, power: PowerSource | None) -> None:
    row.faces = len(faces)
    row.accuracy = measured_accuracy(faces.labels, result.predictions, faces.classes)
    row.p50_ms, row.p95_ms, row.latency_n = result.p(50), result.p(95), len(result.latency_ms)
    row.energy_j, row.power_w = result.energy_mean_j, result.power_mean_w
    row.source, row.figure_model = result.source.name, result.figure_model or "-"
    if power is None and result.source is not FigureSource.UNAVAILABLE:
        row.valid = "yes (the backend's own figure)"  # Loihi: counted activity, or NxSDK probes
    else:
        row.valid = figure_validity(power, row.device)
    row.chip_us = mean_us(result.chip_s)
    row.spikes = spike_figures(result.spike_stats)


def run_profile(
    profile: str, data: Path, max_faces: int, latency_n: int, tick: Tick | None = None
) -> tuple[Row, Faces | None]:
    start = time.monotonic()
    row = Row(kind="profile", name=profile)
    name, settings, power, encoder = profile_settings(profile)
    params = profile_parameters(profile_path(profile))
    row.accelerator = str(params.get("accelerator", profile))
    row.power_model_key = power.model
    if params.get("backend_process") is True:  # same backend; the pipe is the node's concern
        row.notes.append("the node runs this backend in a child process; here in-process")
    faces = run_backend(row, name, settings, power, encoder, data, max_faces, latency_n, tick)
    row.seconds = time.monotonic() - start
    return row, faces


def run_ablation(
    profile: str,
    card: ModelCard,
    timesteps: int,
    data: Path,
    max_faces: int,
    tick: Tick | None = None,
) -> Row:
    """The profile's spiking backend with another card and/or number of timesteps."""
    start = time.monotonic()
    row = Row(kind="ablation", name=f"{card.preprocessing} T={timesteps}")
    name, settings, power, encoder = profile_settings(
        profile, card=card, overrides={"loihi.timesteps": timesteps}
    )
    row.accelerator = profile
    run_backend(row, name, settings, power, encoder, data, max_faces, 0, tick)
    row.seconds = time.monotonic() - start
    return row


def run_peer(
    peer: Peer,
    faces: Faces,
    power_config: Any,
    latency_n: int,
    tick: Tick | None = None,
) -> Row:
    """A peer model on the same faces, on this CPU, with the CPU profile's power source."""
    start = time.monotonic()
    row = Row(kind="peer", name=peer.key, model_id=peer.about, preprocessing="grayscale")
    row.backend, row.export, row.requested = "litert (peer)", peer.model_file, "cpu"
    path = peer.path()
    got = installed_version(peer)
    if path is None:
        row.notes.append(f"not installed: {peer.install_line()}")
        return row
    if got != peer.version:
        row.notes.append(f"{peer.package} {got} installed; layout read from {peer.version}")
    backend = PeerBackend(peer, path)
    row.runtime, row.device = backend.runtime, backend.device
    power = power_source_for_backend(power_config, False, backend.device)
    try:
        result = measure(backend, faces.images, power, latency_n, warmup=5, tick=tick)
    finally:
        backend.close()
    mapping = class_map(peer.classes, faces.classes)
    fill(row, result, faces, power)
    row.accuracy = measured_accuracy(faces.labels, mapping[result.predictions], faces.classes)
    row.notes.append(shared_classes_note(peer, result.scores, mapping, faces))
    row.seconds = time.monotonic() - start
    return row


def shared_classes_note(peer: Peer, scores: np.ndarray, mapping: np.ndarray, faces: Faces) -> str:
    """Accuracy restricted to the classes both sides have, and what the mapping drops."""
    dropped_peer = [c for c, m in zip(peer.classes, mapping, strict=True) if m < 0]
    shared = sorted(set(int(m) for m in mapping if m >= 0))
    missing = [c for i, c in enumerate(faces.classes) if i not in shared]
    keep = np.isin(faces.labels, shared)
    columns = np.flatnonzero(mapping >= 0)
    pred = mapping[columns[scores[keep][:, columns].argmax(axis=1)]]
    acc = float(np.mean(pred == faces.labels[keep])) if keep.any() else float("nan")
    return (
        f"classes mapped by name; counted wrong: peer {', '.join(dropped_peer) or '-'} "
        f"(not a class of the model), ours {', '.join(missing) or '-'} (no peer class, "
        f"{int((~keep).sum())} faces); on the {len(shared)} shared classes only: {acc:.3f}"
    )
