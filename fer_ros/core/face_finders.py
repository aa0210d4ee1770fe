"""Face finders: a detector plus the crop the expression models take, behind one interface.

``blazeface`` (the default) runs MediaPipe's BlazeFace models in LiteRT and crops each
face aligned on its eyes (:mod:`.blazeface`); ``haar`` is OpenCV's frontal-face cascade
with a square crop around its box. Both return the faces largest first, at most
``max_faces``, each with a (crop_size, crop_size) uint8 crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_ros.core.blazeface import BlazeFaceDetector, Detection, aligned_crop
from fer_ros.core.face_follow import FaceFollower, FollowSettings
from fer_ros.core.face_tracking import Box

DETECTORS = ("blazeface", "haar")


@dataclass(frozen=True)
class FoundFace:
    box: Box  # (x, y, width, height) in source pixels
    confidence: float  # BlazeFace: a probability; Haar: a logistic of its stage weight
    crop: np.ndarray  # (crop_size, crop_size) uint8 grey


class FaceFinder(Protocol):
    def find(self, image: np.ndarray) -> list[FoundFace]:
        """Faces in a BGR (H, W, 3) or grey (H, W) uint8 frame, largest first."""


@dataclass(frozen=True)
class CropSettings:
    size: int = 48
    margin: float = 0.1  # box crops: extra border, fraction of the box side
    min_face_size: int = 60  # source pixels
    max_faces: int = 6


def gray_of(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def box_crop(gray: np.ndarray, box: Box, size: int, margin: float) -> np.ndarray:
    """Square crop centred on ``box``, ``margin`` wider, edge-replicated at the border."""
    x, y, w, h = box
    side = round(max(w, h) * (1.0 + margin))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    pad = max(0, -x0, -y0, x0 + side - gray.shape[1], y0 + side - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    patch = gray[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


class BlazeFaceFinder:
    """BlazeFace boxes, crops aligned on the eyes like the training crops (or box crops).

    ``follow``: detect, then follow each face with the short-range model between full
    detections (:mod:`.face_follow`); None runs the full detector on every frame.
    """

    def __init__(
        self,
        crops: CropSettings,
        model: str = "both",
        score_threshold: float | None = None,
        align: bool = True,
        follow: FollowSettings | None = None,
    ) -> None:
        self._detector = BlazeFaceDetector(model, score_threshold)
        self._crops = crops
        self._align = align
        self.follower = None
        if follow is not None and follow.detect_every > 1:
            near = BlazeFaceDetector("short", score_threshold)
            self.follower = FaceFollower(self._detector, near, follow, self._kept)

    def _kept(self, found: list[Detection]) -> list[Detection]:
        """Faces big enough, largest first, at most ``max_faces``."""
        c = self._crops
        found = [d for d in found if max(d.box[2], d.box[3]) >= c.min_face_size]
        found.sort(key=lambda d: -d.box[2] * d.box[3])
        return found[: c.max_faces]

    def find(self, image: np.ndarray) -> list[FoundFace]:
        if self.follower is not None:
            found = self._kept(self.follower.detect(image))
        else:
            found = self._kept(self._detector.detect(image))
        if not found:
            return []  # no grey frame to make when there is nothing to crop
        c = self._crops
        gray = gray_of(image)
        faces = []
        for d in found:
            crop = (
                aligned_crop(gray, d, c.size)
                if self._align
                else box_crop(gray, d.box, c.size, c.margin)
            )
            faces.append(FoundFace(d.box, d.score, crop))
        return faces


class HaarFinder:
    """OpenCV's Haar cascade on a downscaled grey frame; square crops around its boxes."""

    def __init__(
        self,
        crops: CropSettings,
        cascade: str = "",
        detection_width: int = 320,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
    ) -> None:
        path = Path(cascade) if cascade else default_cascade()
        self._detector = cv2.CascadeClassifier(str(path))
        if self._detector.empty():
            raise RuntimeError(f"cannot load Haar cascade {path}")
        self._crops = crops
        self._width = detection_width
        self._scale_factor = scale_factor
        self._min_neighbors = min_neighbors

    def find(self, image: np.ndarray) -> list[FoundFace]:
        c = self._crops
        gray = gray_of(image)
        height, width = gray.shape
        scale, small = 1.0, gray
        if self._width and width > self._width:
            scale = self._width / width
            size = (self._width, round(height * scale))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        min_side = max(8, round(c.min_face_size * scale))
        rects, _, weights = self._detector.detectMultiScale3(
            small,
            scaleFactor=self._scale_factor,
            minNeighbors=self._min_neighbors,
            minSize=(min_side, min_side),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return []
        order = np.argsort([-(w * h) for _, _, w, h in rects])[: c.max_faces]
        faces = []
        for i in order:
            box: Box = tuple(round(v / scale) for v in rects[i])  # type: ignore[assignment]
            # Haar stage weights are unbounded scores; the logistic maps them into [0, 1]
            # for ranking, it is not a calibrated probability.
            confidence = float(1.0 / (1.0 + np.exp(-float(np.ravel(weights)[i]))))
            faces.append(FoundFace(box, confidence, box_crop(gray, box, c.size, c.margin)))
        return faces


def default_cascade() -> Path:
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise RuntimeError(
            "this OpenCV has no Haar cascades (OpenCV 5 removed them); "
            "install opencv-python-headless<5"
        )
    return Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
