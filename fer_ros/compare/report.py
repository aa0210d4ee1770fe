"""results.md: the comparison as markdown tables, with provenance beside every figure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from fer_ros.compare.plots import ENERGY_PNG, LATENCY_PNG, TIMESTEPS_PNG
from fer_ros.compare.provenance import device_absent
from fer_ros.compare.ratios import Ratio
from fer_ros.compare.reference import CLAIMS, NOT_FOUND
from fer_ros.compare.rows import Row
from fer_ros.power import POWER_MODELS


def num(value: float, digits: int = 3, scale: float = 1.0) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value * scale:.{digits}g}"


def table(head: str, lines: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table; ``head`` is the column names separated by ``|``."""
    headers = head.split("|")
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in line) + " |" for line in lines]
    return [*out, ""]


def devices(rows: list[Row]) -> list[str]:
    lines = []
    for r in rows:
        card = r.card
        cv = "-"
        if card and card.cv_folds:
            spread = "(pooled)" if math.isnan(card.cv_std) else f"± {card.cv_std:.3f}"
            cv = f"{card.cv_mean:.3f} {spread}"
        ran = r.device + (" (fallback)" if r.fallback else "")
        lines.append(
            (
                r.name,
                f"{r.model_id} ({r.preprocessing})",
                f"{r.backend} [{r.export}]",
                r.requested,
                ran,
                r.faces or "-",
                num(r.accuracy.accuracy if r.accuracy else math.nan),
                num(card.held_out) if card else "-",
                cv,
                num(r.p50_ms),
                num(r.p95_ms),
                num(r.power_w),
                num(r.energy_j, scale=1e3),
                r.source,
                r.valid,
            )
        )
    head = (
        "profile|model (input)|backend [export]|requested|ran on|faces|accuracy (measured)|"
        "card held-out|card 5-fold CV|p50 ms|p95 ms|power W|mJ / inference|figure|"
        "describes what ran?"
    )
    out = table(head, lines)
    for r in rows:
        out += [f"* **{r.name}**: latency is {r.latency_what}; " + "; ".join(r.notes or ["-"])]
    return [*out, ""]


def recall(rows: list[Row]) -> list[str]:
    measured = [r for r in rows if r.accuracy is not None]
    if not measured:
        return ["No accuracy was measured.", ""]
    classes = list(measured[0].accuracy.recall)
    lines = [
        (
            r.name,
            *(num(r.accuracy.recall.get(c, math.nan)) for c in classes),
            num(r.accuracy.balanced_accuracy),
            r.accuracy.n,
        )
        for r in measured
    ]
    return table("|".join(("row", *classes, "balanced", "faces")), lines)


def provenance(rows: list[Row]) -> list[str]:
    """One line per distinct figure source, naming the rows that share it."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        groups.setdefault((r.source, r.figure_model), []).append(r.name)
    return [f"* **{', '.join(n)}** ({s}): {m}" for (s, m), n in groups.items()] + [""]


def absent(rows: list[Row], host: str) -> list[str]:
    """Profiles whose device is not this machine: its published power, nothing measured."""
    lines = []
    for r in rows:
        if r.backend == "loihi" and "emulator" in r.device:
            lines.append(
                (
                    r.name,
                    "Intel Loihi (NxSDK not importable here)",
                    "modelled per face from counted activity (Loihi section)",
                    "chip time and energy modelled; the emulator's host time measured",
                )
            )
            continue
        model = POWER_MODELS.get(r.power_model_key)
        if model is not None and (not r.ok or device_absent(model, r.device, r.fallback)):
            power = f"{model.active_w:g} W ({model.active_source})"
            lines.append((r.name, model.device, power, "not measured on that device"))
    if not lines:
        return ["Every profile's device is on this machine.", ""]
    head = "profile|device (not on this machine)|published power|latency, energy"
    return [f"This computer: {host}.", "", *table(head, lines)]


def loihi(rows: list[Row]) -> list[str]:
    runs = [r for r in rows if r.spikes is not None]
    if not runs:
        return ["No spiking run.", ""]
    layers = runs[0].spikes.layers
    lines = [
        (
            f"{r.kind} {r.name}",
            r.model_id,
            r.preprocessing,
            r.timesteps,
            r.faces,
            num(r.accuracy.accuracy if r.accuracy else math.nan),
            num(r.card.snn_held_out) if r.card else "-",
            num(r.p50_ms),
            num(r.chip_us),
            num(r.energy_j, scale=1e6),
            num(r.power_w, scale=1e3),
            f"{r.spikes.total_spikes_per_face:.0f}",
            f"{r.spikes.synops_per_face:.0f}",
            r.cores,
            " / ".join(f"{s:.0f}" for s in r.spikes.spikes_per_face),
            " / ".join(f"{s:.3f}" for s in r.spikes.sparsity),
        )
        for r in runs
    ]
    head = (
        "run|model|input|T|faces|SNN accuracy|card SNN (T as converted)|host ms/face (p50)|"
        "chip us/face (modelled)|"
        f"uJ/face|mW|spikes/face|synaptic ops/face|cores|spikes/face ({', '.join(layers)})|"
        "sparsity per layer"
    )
    model = runs[0].figure_model
    return [*table(head, lines), f"Energy, power and chip time: {model}.", ""]


def peers(rows: list[Row]) -> list[str]:
    found = [r for r in rows if r.kind == "peer"]
    if not found:
        return ["Peers not run (--no-peers).", ""]
    lines = [
        (
            r.name,
            r.model_id,
            r.export,
            r.faces or "-",
            num(r.accuracy.accuracy if r.accuracy else math.nan),
            num(r.p50_ms),
            num(r.p95_ms),
            r.runtime,
            "; ".join(r.notes),
        )
        for r in found
    ]
    head = "peer|model|file|faces|accuracy|p50 ms|p95 ms|runtime|notes"
    return table(head, lines)


def reference() -> list[str]:
    lines = [
        (
            c.subject,
            c.quantity,
            "-" if math.isnan(c.value) else f"{c.value:g} {c.unit}".strip(),
            c.statement,
            f"[{c.citation.key}]({c.citation.url}), {c.where}",
        )
        for c in CLAIMS
    ]
    cites = sorted({(c.citation.key, c.citation.text) for c in CLAIMS})
    out = table("subject|quantity|value|the source says (paraphrased)|source", lines)
    return [*out, f"*{NOT_FOUND}*", "", *(f"* [{k}] {t}" for k, t in cites), ""]


def ratios(items: list[Ratio]) -> list[str]:
    lines = [
        (
            f"{r.quantity}: Coral / Loihi",
            f"~{r.paper.value:g}x ({r.paper.statement}) [{r.paper.citation.key}]",
            num(r.ours, 3) + ("x" if math.isfinite(r.ours) else ""),
            r.coral,
            r.loihi,
            r.why or "-",
        )
        for r in items
    ]
    head = "ratio|paper|ours|Coral figure (ours)|Loihi figure (ours)|why not"
    return table(head, lines)


def graph(rows: list[Row]) -> list[str]:
    found = [r for r in rows if r.graph is not None]
    if not found:
        return ["Not measured (run with --graph).", ""]
    lines = [
        (
            r.name,
            r.graph.source,
            num(r.graph.seconds),
            num(r.graph.results_per_s),
            num(r.graph.labelled_per_s),
            num(r.graph.e2e_p50_ms),
            num(r.graph.e2e_p95_ms),
        )
        for r in found
    ]
    head = "profile|source|s|results/s|labelled frames/s|e2e p50 ms|p95 ms"
    return table(head, lines)


def write_markdown(
    path: Path,
    header: list[str],
    rows: list[Row],
    items: list[Ratio],
    host: str,
    timings: list[tuple[str, float]],
) -> None:
    edge = [r for r in rows if r.kind == "profile"]
    peer_rows = [r for r in rows if r.kind == "peer"]
    sections = (
        ("Devices (measured on this machine)", devices(edge)),
        ("Per-class recall (measured)", recall(edge + peer_rows)),
        ("Where each power and energy figure comes from", provenance(edge + peer_rows)),
        ("Devices that are not here", absent(edge, host)),
        ("Loihi: activity, chip time, cores and the grayscale vs Canny ablation", loihi(rows)),
        ("Peer models on the same faces", peers(rows)),
        ("Whole graph", graph(rows)),
        ("The paper's figures (reference, cited)", reference()),
        ("The paper's headline ratios next to ours", ratios(items)),
        ("Plots", plots()),
        ("Timings", table("step|s", ((k, f"{v:.1f}") for k, v in timings))),
    )
    parts = ["# fer_ros: Loihi and edge accelerators compared", "", *header, ""]
    for title, lines in sections:
        parts += [f"## {title}", "", *lines]
    path.write_text("\n".join(parts))


def plots() -> list[str]:
    return [
        f"![energy per inference vs accuracy]({ENERGY_PNG})",
        "",
        f"![latency per device]({LATENCY_PNG})",
        "",
        f"![Loihi energy vs timesteps]({TIMESTEPS_PNG})",
        "",
    ]
