"""Bounds on what a stage accepts, and the input problems counted apart from the rest.

An input over a bound, or one without payload, is not a fault of the stage but a peer's or
the link's: it is dropped (or trimmed, for faces), counted under its own /diagnostics key
and logged once, when it first appears, with the topic and what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, TypeVar

from fer_ros.core.options import Param

T = TypeVar("T")

# 4096x3072 (12.6 MP): the full frame of the largest cameras robots carry (Raspberry Pi
# HQ 4056x3040, Camera Module 3 4608x2592, 4K UHD 3840x2160), while a 64 MP frame (the
# 8000x8000 that once vanished without a trace) is refused before it is even decoded.
MAX_IMAGE_PIXELS = 4096 * 3072
MAX_IMAGE_PARAMETER = Param(
    "max_image_pixels",
    MAX_IMAGE_PIXELS,
    "Largest image accepted, in pixels (width x height); larger ones are dropped and "
    "counted (inputs_oversized). The default takes a 12 MP or 4K camera at full size",
    minimum=1,
    maximum=2**31 - 1,
)
# 16: more people than face_detection keeps by default (6) or a social robot talks to at
# once, and a bound on the worst case: 1,000 faces in one message stalled the loihi stage
# for over 3 s.
MAX_FACES_PARAMETER = Param(
    "max_faces",
    16,
    "Faces handled per message; beyond it the largest are kept and the rest counted "
    "(faces_over_limit)",
    minimum=1,
    maximum=1000,
)


FACES_OVER_LIMIT = "faces_over_limit"  # the /diagnostics key of faces left out


class CountedInputError(ValueError):
    """A bad input of a kind with its own /diagnostics counter (``counter``)."""

    counter: ClassVar[str] = "inputs_rejected"


class OversizedInput(CountedInputError):
    counter = "inputs_oversized"


class EmptyInput(CountedInputError):
    counter = "inputs_empty"


def largest_first(items: Sequence[T], limit: int) -> list[T]:
    """The ``limit`` items (faces or spike trains) of largest ``roi``, in their order:
    the nearest people are the ones a robot is talking to."""
    if len(items) <= limit:
        return list(items)
    area = [item.roi.width * item.roi.height for item in items]  # type: ignore[attr-defined]
    ranked = sorted(range(len(items)), key=lambda i: -area[i])[:limit]
    return [items[i] for i in sorted(ranked)]
