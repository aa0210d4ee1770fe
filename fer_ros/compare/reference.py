"""What the paper reports, cited: reference rows, never mixed with our measurements.

Only the abstracts of Smith et al. (arXiv 2403.08792) and of the same group's preceding
edge study (Mohammadi et al., arXiv 2305.15422) could be read offline (arXiv/ADS/ar5iv
abstract pages). The paper's per-device tables (accuracy, latency, power and energy per
inference for Loihi, Raspberry Pi 4, NCS, Jetson Nano and Coral TPU) were not retrievable,
so no per-device number of theirs appears here: only what the abstracts state, in our
words, with the factor each phrase implies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    key: str
    text: str
    url: str


@dataclass(frozen=True)
class Claim:
    subject: str
    quantity: str
    value: float  # NaN where the source gives no number
    unit: str
    statement: str  # paraphrase of the source
    citation: Citation
    where: str


SMITH_2024 = Citation(
    "smith2024",
    'H. Smith, J. Seekings, M. Mohammadi, R. Zand, "Realtime Facial Expression Recognition: '
    'Neuromorphic Hardware vs. Edge AI Accelerators", arXiv:2403.08792, 2024',
    "https://arxiv.org/abs/2403.08792",
)
MOHAMMADI_2023 = Citation(
    "mohammadi2023",
    'M. Mohammadi, H. Smith, L. Khan, R. Zand, "Facial Expression Recognition at the Edge: '
    'CPU vs GPU vs VPU vs TPU", GLSVLSI 2023, doi:10.1145/3583781.3590245, arXiv:2305.15422',
    "https://arxiv.org/abs/2305.15422",
)
NOT_FOUND = (
    "The per-device figures of arXiv:2403.08792 (its results tables) could not be read "
    "offline; only its abstract is cited. No per-device number of the paper is shown."
)

CLAIMS = (
    Claim(
        "Loihi vs Coral TPU",
        "power ratio (Coral / Loihi)",
        100.0,
        "x",
        "about two orders of magnitude less power dissipation on Loihi than on the Coral TPU",
        SMITH_2024,
        "abstract",
    ),
    Claim(
        "Loihi vs Coral TPU",
        "energy ratio (Coral / Loihi)",
        10.0,
        "x",
        "about one order of magnitude less energy on Loihi than on the Coral TPU",
        SMITH_2024,
        "abstract",
    ),
    Claim(
        "Coral TPU",
        "rank among edge accelerators",
        math.nan,
        "",
        "the least power-hungry and least energy-consuming of the four edge platforms "
        "(Raspberry Pi 4, Intel NCS, Jetson Nano, Coral TPU)",
        SMITH_2024,
        "abstract",
    ),
    Claim(
        "Loihi",
        "accuracy",
        math.nan,
        "",
        "accuracy comparable with the edge accelerators, within real-time latency",
        SMITH_2024,
        "abstract",
    ),
    Claim(
        "best edge CNN (Jetson Nano, NCS, Coral TPU)",
        "peak accuracy on CK+",
        0.9949,
        "",
        "peak CK+ accuracy 99.49 % of the hardware-aware CNNs (device not named there)",
        MOHAMMADI_2023,
        "abstract",
    ),
    Claim(
        "best edge CNN (Jetson Nano, NCS, Coral TPU)",
        "minimum inference latency",
        0.39,
        "ms",
        "lowest inference latency 0.39 ms (device not named in the abstract)",
        MOHAMMADI_2023,
        "abstract",
    ),
    Claim(
        "best edge CNN (Jetson Nano, NCS, Coral TPU)",
        "minimum power",
        0.52,
        "W",
        "lowest power consumption 0.52 W (device not named in the abstract)",
        MOHAMMADI_2023,
        "abstract",
    ),
)


def headline(quantity: str) -> Claim:
    """The paper's Loihi-vs-Coral ratio claim for ``power`` or ``energy``."""
    return next(c for c in CLAIMS if c.quantity.startswith(f"{quantity} ratio"))
