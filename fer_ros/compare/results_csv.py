"""results.csv: one line per measured row, reference claim and ratio, for programs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from fer_ros.compare.ratios import Ratio
from fer_ros.compare.reference import CLAIMS
from fer_ros.compare.rows import Row

CSV_FIELDS = tuple(
    """kind name accelerator model_id preprocessing backend runtime export requested device
    fallback faces accuracy balanced_accuracy recall card_held_out card_cv_mean card_cv_std
    p50_ms p95_ms latency_n latency_what power_w energy_mj figure_source figure_valid
    figure_model timesteps chip_us cores spikes_per_face synops_per_face layer_spikes
    layer_sparsity graph_results_per_s value unit citation notes""".split()
)


def write_csv(path: Path, rows: list[Row], items: list[Ratio]) -> None:
    with path.open("w", newline="") as handle:
        out = csv.DictWriter(handle, CSV_FIELDS, extrasaction="ignore")
        out.writeheader()
        for r in rows:
            out.writerow(_csv_row(r))
        for c in CLAIMS:
            out.writerow(
                {
                    "kind": "reference",
                    "name": f"{c.subject}: {c.quantity}",
                    "notes": c.statement,
                    "value": "" if math.isnan(c.value) else c.value,
                    "unit": c.unit,
                    "citation": c.citation.text,
                }
            )
        for r in items:
            out.writerow(
                {
                    "kind": "ratio",
                    "name": f"{r.quantity} Coral/Loihi",
                    "value": "" if math.isnan(r.ours) else round(r.ours, 4),
                    "unit": "x",
                    "citation": r.paper.citation.text,
                    "notes": f"paper ~{r.paper.value:g}x; Coral: {r.coral}; Loihi: {r.loihi}; "
                    f"{r.why}",
                }
            )


def _csv_row(r: Row) -> dict[str, object]:
    acc, card, spikes = r.accuracy, r.card, r.spikes
    return {
        "kind": r.kind,
        "name": r.name,
        "accelerator": r.accelerator,
        "model_id": r.model_id,
        "preprocessing": r.preprocessing,
        "backend": r.backend,
        "runtime": r.runtime,
        "export": r.export,
        "requested": r.requested,
        "device": r.device,
        "fallback": r.fallback,
        "faces": r.faces,
        "accuracy": _f(acc.accuracy if acc else math.nan),
        "balanced_accuracy": _f(acc.balanced_accuracy if acc else math.nan),
        "recall": _pairs(tuple(acc.recall), tuple(acc.recall.values())) if acc else "",
        "card_held_out": _f(card.held_out if card else math.nan),
        "card_cv_mean": _f(card.cv_mean if card else math.nan),
        "card_cv_std": _f(card.cv_std if card else math.nan),
        "p50_ms": _f(r.p50_ms),
        "p95_ms": _f(r.p95_ms),
        "latency_n": r.latency_n,
        "latency_what": r.latency_what,
        "power_w": _f(r.power_w),
        "energy_mj": _f(r.energy_j * 1e3),
        "figure_source": r.source,
        "figure_valid": r.valid,
        "figure_model": r.figure_model,
        "timesteps": r.timesteps or "",
        "chip_us": _f(r.chip_us),
        "cores": r.cores or "",
        "spikes_per_face": _f(spikes.total_spikes_per_face) if spikes else "",
        "synops_per_face": _f(spikes.synops_per_face) if spikes else "",
        "layer_spikes": _pairs(spikes.layers, spikes.spikes_per_face) if spikes else "",
        "layer_sparsity": _pairs(spikes.layers, spikes.sparsity) if spikes else "",
        "graph_results_per_s": _f(r.graph.results_per_s) if r.graph else "",
        "notes": "; ".join(r.notes),
    }


def _f(value: float) -> object:
    return "" if value is None or not math.isfinite(value) else round(float(value), 6)


def _pairs(names: tuple[str, ...], values: tuple[float, ...]) -> str:
    return " ".join(f"{n}={_f(v)}" for n, v in zip(names, values, strict=True))
