"""Valence and arousal of the expression classes, and of a score vector over them.

Source: Warriner, A. B., Kuperman, V., & Brysbaert, M. (2013). Norms of valence, arousal,
and dominance for 13,915 English lemmas. Behavior Research Methods, 45(4), 1191-1207,
doi:10.3758/s13428-012-0314-x; columns ``V.Mean.Sum`` and ``A.Mean.Sum`` of its published
ratings file, for the lemma that names each class. Those are mean ratings of the *words*
(about 20 raters each, 1-9 scales, SDs 1-3 points) on the dimensions of Russell's (1980)
circumplex, so they are approximate positions of each emotion concept on it, not a
measurement of the person in front of the camera. They are mapped to [-1, 1] by
(rating - 5) / 4. Warriner's table was chosen over positions read off Russell's (1980)
figures because it names every class: CK+'s seven, contempt and disgust included, and
``neutral`` (valence 5.50, arousal 3.45: slightly pleasant and calm, close to but not at
the circumplex's origin).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# lemma: (valence, arousal) as published, 1 (unhappy / calm) .. 9 (happy / excited)
WARRINER_2013 = {
    "happy": (8.47, 6.05),
    "contempt": (3.22, 4.61),
    "fear": (2.93, 6.14),
    "surprise": (7.44, 6.57),
    "sadness": (2.40, 2.81),
    "anger": (2.50, 5.93),
    "disgust": (3.32, 5.00),
    "neutral": (5.50, 3.45),
}
SCALE_MIDPOINT, SCALE_HALF_RANGE = 5.0, 4.0

# class name -> (valence, arousal) in [-1, 1]
AFFECT: dict[str, tuple[float, float]] = {
    name: ((v - SCALE_MIDPOINT) / SCALE_HALF_RANGE, (a - SCALE_MIDPOINT) / SCALE_HALF_RANGE)
    for name, (v, a) in WARRINER_2013.items()
}


def affect_table(classes: Sequence[str]) -> np.ndarray:
    """(len(classes), 2) valence, arousal per class; KeyError names a class without one."""
    missing = [c for c in classes if c not in AFFECT]
    if missing:
        raise KeyError(
            f"no valence/arousal for class(es) {', '.join(missing)}; known: {', '.join(AFFECT)}"
        )
    return np.array([AFFECT[c] for c in classes], np.float64)


def expected_affect(scores: Sequence[float] | np.ndarray, table: np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) under the class distribution ``scores`` (normalised here)."""
    p = np.clip(np.asarray(scores, np.float64), 0.0, None)
    total = p.sum()
    if total <= 0.0:
        return 0.0, 0.0  # no evidence: the circumplex's centre
    valence, arousal = (p / total) @ table
    return float(valence), float(arousal)
