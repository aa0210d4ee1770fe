"""Model cards for trained models: the JSON the runtime reads plus a markdown rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_ros.core.model_card import ModelCard, load_model_card, save_model_card


def write_card(card: ModelCard, out_dir: Path) -> Path:
    """Save ``<id>.json`` and its markdown twin ``<id>.md`` in ``out_dir``."""
    path = out_dir / f"{card.model_id}.json"
    save_model_card(card, path)
    (out_dir / f"{card.model_id}.md").write_text(render_markdown(card))
    return path


def update_card(path: Path, files: dict[str, str], extra: dict[str, Any]) -> ModelCard:
    """Add exports and figures to an existing card, keeping everything else."""
    old = load_model_card(path)
    card = ModelCard(
        model_id=old.model_id,
        classes=old.classes,
        input_height=old.input_height,
        input_width=old.input_width,
        preprocessing=old.preprocessing,
        canny=old.canny,
        files={**old.files, **files},
        extra={**old.extra, **extra},
    )
    write_card(card, path.parent)
    return card


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def render_markdown(card: ModelCard) -> str:
    """Human-readable card; every figure comes from the JSON card."""
    e = card.extra
    lines = [f"# Model card: `{card.model_id}`", ""]
    if e.get("description"):
        lines += [str(e["description"]), ""]
    lines += [
        "## Input and output",
        "",
        f"- Input: {card.input_height}x{card.input_width} face crop, "
        f"preprocessing `{card.preprocessing}`"
        + (
            f" (Canny: blur {card.canny.blur_kernel}, thresholds {card.canny.low_threshold}/"
            f"{card.canny.high_threshold})"
            if card.preprocessing == "canny"
            else ""
        )
        + ", float32 in [0, 1]",
        f"- Output: logits over {len(card.classes)} classes: {', '.join(card.classes)}",
        "",
        "## Files",
        "",
        "| export | file | layout / notes |",
        "|---|---|---|",
    ]
    notes = e.get("export_notes", {})
    for name, file in card.files.items():
        lines.append(f"| `{name}` | `{file}` | {_notes(notes.get(name, {}))} |")
    arch = e.get("architecture", {})
    if arch:
        lines += [
            "",
            "## Architecture",
            "",
            f"- Name: `{arch.get('name', '')}`",
            f"- Config: `{arch.get('config', {})}`",
            f"- Layers: {arch.get('layers', '')}",
            (
                f"- Parameters: {arch.get('parameters', 'n/a')}, MACs per inference: "
                f"{arch.get('macs', 'n/a')}"
            ),
        ]
        if "neurons_per_layer" in arch and "loihi" in e:
            lines.append(
                f"- Neurons per layer: {arch['neurons_per_layer']} "
                f"(total {sum(arch['neurons_per_layer'])})"
            )
    if "search" in e:
        s = e["search"]
        best = s.get("best", {})
        lines += [
            "",
            "## Selection",
            "",
            f"- Hardware-aware search, target `{s.get('target')}`, budget "
            f"`{s.get('budget')}`, {s.get('trials')} proposals: chosen `{best.get('arch')}` "
            f"(search CV {_pct(best.get('cv_mean'))} ± {_pct(best.get('cv_std'))} with the "
            "search's shorter training; latency "
            f"{best.get('latency_ms', 'n/a')} ms on the development CPU)",
        ]
        if e.get("selection"):
            lines.append(f"- {e['selection']}")
    if "loihi" in e:
        lines += ["", "## Loihi mapping", ""]
        lines += [f"- {k}: {v}" for k, v in e["loihi"].items()]
    if "data" in e:
        d = e["data"]
        lines += ["", "## Data and split", ""] + [f"- {k}: {v}" for k, v in d.items()]
    if "cross_validation" in e:
        cv = e["cross_validation"]
        lines += [
            "",
            "## Cross-validation (group-disjoint, training portion only)",
            "",
            f"- {cv['folds']} folds: accuracy {_pct(cv['accuracy_mean'])} "
            f"± {_pct(cv['accuracy_std'])} (per fold: "
            + ", ".join(_pct(a) for a in cv["fold_accuracy"])
            + ")",
            f"- Pooled balanced accuracy: {_pct(cv['pooled']['balanced_accuracy'])}",
        ]
        lines += _recall_table(cv["pooled"]["per_class_recall"])
    if "held_out" in e:
        h = e["held_out"]
        lines += [
            "",
            "## Held-out test (groups never seen in training or selection)",
            "",
            (
                f"- n = {h['n']}: accuracy {_pct(h['accuracy'])}, balanced accuracy "
                f"{_pct(h['balanced_accuracy'])}"
            ),
        ]
        lines += _recall_table(h["per_class_recall"])
        if e.get("confusion_png"):
            lines += ["", f"![confusion matrix]({e['confusion_png']})"]
    if "export_agreement" in e:
        lines += [
            "",
            "## Export agreement with PyTorch on held-out data",
            "",
            "| export | runtime | argmax agreement | accuracy | max abs logit diff |",
            "|---|---|---|---|---|",
        ]
        for name, a in e["export_agreement"].items():
            lines.append(
                f"| `{name}` | {a.get('runtime', '')} | {_pct(a.get('argmax_agreement'))} | "
                f"{_pct(a.get('accuracy'))} | {a.get('max_abs_logit_diff', 'n/a')} |"
            )
    if "training" in e:
        lines += ["", "## Training", ""] + [f"- {k}: {v}" for k, v in e["training"].items()]
    if "licence" in e:
        lines += ["", "## Licence and use", "", str(e["licence"])]
    return "\n".join(lines) + "\n"


def _notes(note: dict[str, Any] | str) -> str:
    if isinstance(note, str):
        return note
    parts = []
    for key, value in note.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}: {text}".replace("|", "/"))
    return "; ".join(parts)


def _recall_table(recall: dict[str, float | None]) -> list[str]:
    return [
        "",
        "| class | recall |",
        "|---|---|",
        *[f"| {c} | {_pct(r)} |" for c, r in recall.items()],
    ]
