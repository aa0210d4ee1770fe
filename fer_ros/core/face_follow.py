"""Detect, then follow: the full face detector only when it is needed.

Both BlazeFace models over a whole frame cost ~5 ms on one core, most of a cpu graph's
work per frame. A face moves little between frames, so between full detections each
followed face is found again by the short-range model alone (~1.4 ms) in a window around
its last box, where it fills the model's input as the near faces it was trained on do.

The full detector runs on the first frame, every ``detect_every`` frames (a face that
walks in is found within that many frames), on any frame where a followed face is not
found again (so a lost face costs no frame), and while more faces are in view than
``max_followed`` (then one full pass is cheaper than a step per face).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fer_ros.core.blazeface import BlazeFaceDetector, Detection
from fer_ros.core.face_tracking import iou

Select = Callable[[list[Detection]], list[Detection]]


@dataclass(frozen=True)
class FollowSettings:
    detect_every: int = 10  # frames; 1 runs the full detector on every frame
    max_followed: int = 3
    window: float = 2.0  # side of the search window, in face-box sides
    min_iou: float = 0.3  # a face found again must overlap its last box this much

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, not {self.detect_every}")
        if self.window < 1.0:
            raise ValueError(f"window must be at least 1 face side, not {self.window}")


class FaceFollower:
    """Detections per frame like ``BlazeFaceDetector.detect``, at a fraction of its cost.

    ``select`` keeps the detections worth following (size and count limits); it sees
    every full detection, so followed faces are always ones the caller kept. Counts of
    full and window passes are kept for diagnostics and benchmarks.
    """

    def __init__(
        self,
        detector: BlazeFaceDetector,
        near: BlazeFaceDetector,
        settings: FollowSettings = FollowSettings(),
        select: Select = lambda found: found,
    ) -> None:
        self._detector, self._near, self._settings, self._select = detector, near, settings, select
        self._faces: list[Detection] = []
        self._since_full = 0
        self.full_passes = 0
        self.window_passes = 0

    def detect(self, image: np.ndarray) -> list[Detection]:
        s = self._settings
        due = self._since_full + 1 >= s.detect_every
        if not self._faces or due or len(self._faces) > s.max_followed:
            return self._full(image)
        found = []
        for face in self._faces:
            again = self._find_again(image, face)
            if again is None:
                return self._full(image)
            found.append(again)
        self._since_full += 1
        self._faces = found
        return found

    def _full(self, image: np.ndarray) -> list[Detection]:
        self.full_passes += 1
        self._since_full = 0
        self._faces = self._select(self._detector.detect(image))
        return self._faces

    def _find_again(self, image: np.ndarray, face: Detection) -> Detection | None:
        x, y, w, h = face.box
        half = self._settings.window * max(w, h) / 2.0
        cx, cy = x + w / 2.0, y + h / 2.0
        height, width = image.shape[:2]
        x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
        x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        self.window_passes += 1
        best, best_overlap = None, self._settings.min_iou
        for candidate in self._near.detect(image[y0:y1, x0:x1]):
            bx, by, bw, bh = candidate.box
            box = (bx + x0, by + y0, bw, bh)
            overlap = iou(box, face.box)
            if overlap >= best_overlap:
                shift = np.array([x0, y0], np.float32)
                best = Detection(box, candidate.score, candidate.keypoints + shift)
                best_overlap = overlap
        return best
