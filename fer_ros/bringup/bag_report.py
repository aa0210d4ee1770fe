"""How two runs over the same frames compare: per frame and face, agreement, confusion and
latency, written as markdown and CSV. Plain data in, files out: no ROS.

Faces of different runs are the same face when their boxes overlap (IoU at least
:data:`MIN_IOU`), not when their tracker ids are equal: a live graph that skipped frames
may number the same person differently. A face that one run found and the other did not
counts as a disagreement, labelled :data:`NO_FACE` on the other side.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

NO_FACE = "(no face)"
MIN_IOU = 0.5
DISAGREEMENTS_LISTED = 50  # in report.md; frames.csv has every one

Box = tuple[int, int, int, int]  # x, y, width, height in pixels


@dataclass(frozen=True)
class FaceLabel:
    face_id: int
    box: Box
    label: str
    confidence: float


@dataclass(frozen=True)
class FrameResult:
    """One run's answer for one frame."""

    faces: tuple[FaceLabel, ...]
    latency_ms: float = math.nan  # frame in -> its labels out
    inference_ms: float = math.nan  # the runtime call, from Telemetry (frames with faces)


@dataclass
class Run:
    """One run's answers by frame index; frames without an answer are absent."""

    name: str
    description: str
    frames: dict[int, FrameResult] = field(default_factory=dict)
    notes: str = ""


@dataclass(frozen=True)
class Comparison:
    """``second`` against ``first`` on the frames both answered."""

    first: str
    second: str
    frames: int
    faces: int  # faces in either run, matched by box
    agreeing: int  # found by both, same label
    confusion: Counter[tuple[str, str]]

    @property
    def agreement(self) -> float:
        return self.agreeing / self.faces if self.faces else math.nan


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    inter = max(w, 0) * max(h, 0)
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def face_groups(per_run: Sequence[tuple[FaceLabel, ...]]) -> list[list[FaceLabel | None]]:
    """The faces of one frame in each run, grouped into the same person across runs:
    greedily by overlap with each group's first box; one list (a slot per run) per face."""
    groups: list[list[FaceLabel | None]] = []
    for run, faces in enumerate(per_run):
        pairs = sorted(
            (
                (iou(face.box, _anchor(group).box), f, g)
                for f, face in enumerate(faces)
                for g, group in enumerate(groups)
                if group[run] is None
            ),
            reverse=True,
        )
        placed: set[int] = set()
        for overlap, f, g in pairs:
            if overlap < MIN_IOU:
                break
            if f in placed or groups[g][run] is not None:
                continue
            groups[g][run] = faces[f]
            placed.add(f)
        for f, face in enumerate(faces):
            if f not in placed:
                group: list[FaceLabel | None] = [None] * len(per_run)
                group[run] = face
                groups.append(group)
    return groups


def _anchor(group: list[FaceLabel | None]) -> FaceLabel:
    return next(face for face in group if face is not None)


def frame_indices(runs: Sequence[Run]) -> list[int]:
    return sorted({index for run in runs for index in run.frames})


def compare(first: Run, second: Run) -> Comparison:
    confusion: Counter[tuple[str, str]] = Counter()
    frames = agreeing = 0
    for index in sorted(first.frames.keys() & second.frames.keys()):
        frames += 1
        pair = (first.frames[index].faces, second.frames[index].faces)
        for a, b in face_groups(pair):
            label_a = a.label if a else NO_FACE
            label_b = b.label if b else NO_FACE
            confusion[label_a, label_b] += 1
            agreeing += bool(a and b and label_a == label_b)
    faces = sum(confusion.values())
    return Comparison(first.name, second.name, frames, faces, agreeing, confusion)


def passed(comparison: Comparison | None, min_agreement: float) -> bool:
    """The CI verdict: agreement at least ``min_agreement`` (nothing compared passes only
    when no agreement is asked for)."""
    if min_agreement <= 0:
        return True
    return comparison is not None and comparison.agreement >= min_agreement


def percentiles(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    return f"{np.percentile(finite, 50):.1f} / {np.percentile(finite, 95):.1f}"


def write_report(
    folder: Path,
    title: str,
    stamps_ns: Sequence[int],
    runs: Sequence[Run],
    primary: tuple[Run, Run] | None,
    min_agreement: float,
) -> Comparison | None:
    """``report.md``, ``frames.csv`` (a row per frame and face) and, where two runs are
    compared, ``confusion.csv`` in ``folder``; returns the primary comparison."""
    folder.mkdir(parents=True, exist_ok=True)
    comparisons = [compare(a, b) for a, b in combinations(runs, 2)]
    main = None
    if primary is not None:
        main = next(
            c for c in comparisons if {c.first, c.second} == {primary[0].name, primary[1].name}
        )
    _write_frames_csv(folder / "frames.csv", stamps_ns, runs, primary)
    if main is not None:
        _write_confusion_csv(folder / "confusion.csv", main)
    lines = [f"# {title}", ""]
    lines += _run_table(runs)
    lines += ["", "## Agreement", ""]
    if comparisons:
        lines += ["| runs | frames | faces | agreeing | agreement |", "|---|---|---|---|---|"]
        for c in comparisons:
            lines.append(
                f"| {c.second} vs {c.first} | {c.frames} | {c.faces} | {c.agreeing} | "
                f"{_fraction(c.agreement)} |"
            )
    else:
        lines.append("Only one run: nothing to compare.")
    if main is not None:
        verdict = "pass" if passed(main, min_agreement) else "**FAIL**"
        lines += [
            "",
            f"**{main.second} vs {main.first}: {_fraction(main.agreement)}** "
            f"(--min-agreement {min_agreement:g}: {verdict})",
            "",
            f"## Confusion: {main.first} (rows) vs {main.second} (columns)",
            "",
        ]
        lines += _confusion_table(main)
        lines += ["", *_disagreements(runs, primary, stamps_ns)]
    lines += [
        "",
        "Latency: frame in to its labels out, one frame at a time (recorded run: the live "
        "graph's end_to_end_ms); inference: the runtime call (Telemetry.inference_ms), "
        "p50 / p95 ms. Per frame and face: frames.csv; confusion: confusion.csv.",
    ]
    (folder / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return main


def _fraction(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _run_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| run | what ran | frames answered | faces | latency ms | inference ms | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        results = list(run.frames.values())
        lines.append(
            f"| {run.name} | {run.description} | {len(results)} | "
            f"{sum(len(r.faces) for r in results)} | "
            f"{percentiles([r.latency_ms for r in results])} | "
            f"{percentiles([r.inference_ms for r in results])} | {run.notes} |"
        )
    return lines


def _labels(comparison: Comparison) -> tuple[list[str], list[str]]:
    def ordered(labels: set[str]) -> list[str]:
        return sorted(labels - {NO_FACE}) + ([NO_FACE] if NO_FACE in labels else [])

    rows = ordered({a for a, _ in comparison.confusion})
    columns = ordered({b for _, b in comparison.confusion})
    return rows, columns


def _confusion_table(comparison: Comparison) -> list[str]:
    rows, columns = _labels(comparison)
    lines = [
        f"| {comparison.first} \\ {comparison.second} | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for row in rows:
        cells = [str(comparison.confusion.get((row, col), 0) or "") for col in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def _disagreements(
    runs: Sequence[Run], primary: tuple[Run, Run], stamps_ns: Sequence[int]
) -> list[str]:
    first, second = primary
    rows = []
    for index in sorted(first.frames.keys() & second.frames.keys()):
        pair = (first.frames[index].faces, second.frames[index].faces)
        for a, b in face_groups(pair):
            if not (a and b and a.label == b.label):
                face = a or b
                rows.append(
                    f"| {index} | {stamps_ns[index] / 1e9:.3f} | {face.face_id if face else ''} "
                    f"| {a.label if a else NO_FACE} | {b.label if b else NO_FACE} |"
                )
    if not rows:
        return [f"No frame where {second.name} and {first.name} disagree."]
    shown = rows[:DISAGREEMENTS_LISTED]
    more = len(rows) - len(shown)
    return [
        f"## Where they disagree ({len(rows)} faces{f', first {len(shown)}' if more else ''})",
        "",
        f"| frame | stamp s | face | {first.name} | {second.name} |",
        "|---|---|---|---|---|",
        *shown,
    ]


def _write_frames_csv(
    path: Path, stamps_ns: Sequence[int], runs: Sequence[Run], primary: tuple[Run, Run] | None
) -> None:
    header = ["frame", "stamp_s", "x", "y", "width", "height"]
    for run in runs:
        header += [f"{run.name}_face_id", f"{run.name}_label", f"{run.name}_confidence"]
    header.append("agree")
    for run in runs:
        header += [f"{run.name}_latency_ms", f"{run.name}_inference_ms"]
    slots = {run.name: i for i, run in enumerate(runs)}
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for index in frame_indices(runs):
            results = [run.frames.get(index) for run in runs]
            groups = face_groups([r.faces if r else () for r in results]) or [[None] * len(runs)]
            for group in groups:
                anchor = next((face for face in group if face is not None), None)
                row: list[object] = [index, f"{stamps_ns[index] / 1e9:.6f}"]
                row += list(anchor.box) if anchor else ["", "", "", ""]
                for result, face in zip(results, group, strict=True):
                    if result is None:
                        row += ["", "", ""]  # this run did not answer this frame
                    elif face is None:
                        row += ["", NO_FACE if anchor else "", ""]
                    else:
                        row += [face.face_id, face.label, f"{face.confidence:.4f}"]
                row.append(_agree_cell(group, results, primary, slots) if anchor else "")
                for result in results:
                    row += [_ms(result.latency_ms if result else math.nan)]
                    row += [_ms(result.inference_ms if result else math.nan)]
                writer.writerow(row)


def _agree_cell(
    group: list[FaceLabel | None],
    results: list[FrameResult | None],
    primary: tuple[Run, Run] | None,
    slots: dict[str, int],
) -> str:
    if primary is None:
        return ""
    i, j = slots[primary[0].name], slots[primary[1].name]
    if results[i] is None or results[j] is None or (group[i] is None and group[j] is None):
        return ""
    a, b = group[i], group[j]
    return "1" if a and b and a.label == b.label else "0"


def _ms(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else ""


def _write_confusion_csv(path: Path, comparison: Comparison) -> None:
    rows, columns = _labels(comparison)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([f"{comparison.first} \\ {comparison.second}", *columns])
        for row in rows:
            writer.writerow([row, *(comparison.confusion.get((row, col), 0) for col in columns)])
