"""REP-155 (ROS4HRI) naming for fer_ros faces: ids, topics, expression names and ROIs.

REP-155 publishes the list of tracked faces on ``/humans/faces/tracked`` and, per face,
``/humans/faces/<id>/{roi,cropped,expression}``. Its ids are strings; ours are the face
tracker's integers, so an id is ``<prefix><face_id>`` (choose a prefix per session if ids
must stay unique across restarts of the face detection node, whose ids start again at 1).
ROS-free: the bridge node (:mod:`fer_ros.nodes.hri_bridge_node`) only fills messages.
"""

from __future__ import annotations

from collections.abc import Iterable

FACES_TRACKED = "/humans/faces/tracked"
FACE_TOPICS = ("roi", "cropped", "expression")

# Class -> value of the hri_msgs/Expression string constant of that name (NEUTRAL,
# HAPPY, SCARED, ...). A model's neutral class is REP-155's NEUTRAL. REP-155's list has
# no contempt, and "uncertain" (no class is confident) is not NEUTRAL, which would claim a
# confidently resting face: both publish an empty expression, with valence, arousal and
# confidence still filled in.
HRI_EXPRESSIONS = {
    "neutral": "neutral",
    "happy": "happy",
    "fear": "scared",
    "surprise": "surprised",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgusted",
}


def hri_face_id(face_id: int, prefix: str = "f") -> str:
    return f"{prefix}{face_id}"


def face_topic(hri_id: str, leaf: str) -> str:
    if leaf not in FACE_TOPICS:
        raise ValueError(f"REP-155 face topic {leaf!r} is not one of {', '.join(FACE_TOPICS)}")
    if not hri_id or "/" in hri_id:
        raise ValueError(f"{hri_id!r} is not a usable face id")
    return f"/humans/faces/{hri_id}/{leaf}"


def hri_expression(label: str) -> str:
    """The hri_msgs/Expression name of a stable label; "" when REP-155 has none."""
    return HRI_EXPRESSIONS.get(label, "")


def normalized_roi(
    x: int, y: int, width: int, height: int, image_width: int, image_height: int
) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) in [0, 1] of a pixel box, clipped to the image."""
    if image_width <= 0 or image_height <= 0:
        raise ValueError(f"image size {image_width}x{image_height} cannot normalise a box")

    def clip(v: float) -> float:
        return min(1.0, max(0.0, v))

    return (
        clip(x / image_width),
        clip(y / image_height),
        clip((x + width) / image_width),
        clip((y + height) / image_height),
    )


class TrackedFaces:
    """The REP-155 ids in view; which per-face topics to open and to close per frame."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def update(self, ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """(opened, closed) ids for the frame's ``ids`` (order kept, duplicates dropped)."""
        current = list(dict.fromkeys(ids))
        opened = [i for i in current if i not in self.ids]
        closed = [i for i in self.ids if i not in current]
        self.ids = current
        return opened, closed
