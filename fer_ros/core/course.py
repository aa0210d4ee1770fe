"""A run's expressions as a person would tell them: "neutral, then happy".

The per-frame labels of one face are cut into runs of the same label; runs shorter than
``min_run`` frames (a blink, a misread frame) are absorbed by the run before them, and
neighbours that then carry the same label are merged.
"""

from __future__ import annotations

from collections.abc import Sequence


def label_course(labels: Sequence[str], min_run: int = 5) -> list[tuple[str, int]]:
    """(label, frames) runs of ``labels`` in order, with short runs absorbed."""
    runs: list[list] = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    kept: list[list] = []
    for label, count in runs:
        if count < min_run and kept:
            kept[-1][1] += count  # too short to tell: part of what came before
        elif kept and kept[-1][0] == label:
            kept[-1][1] += count
        else:
            kept.append([label, count])
    # A short first run has nothing before it: give it to what follows.
    if len(kept) > 1 and kept[0][1] < min_run:
        kept[1][1] += kept[0][1]
        kept.pop(0)
    return [(label, count) for label, count in kept]


def describe_course(labels: Sequence[str], min_run: int = 5) -> str:
    """``neutral (16 frames), then happy (56 frames)``; ``-`` when there is nothing."""
    runs = label_course(labels, min_run)
    return ", then ".join(f"{label} ({n} frames)" for label, n in runs) or "-"
