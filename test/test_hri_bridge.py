"""The REP-155 bridge: naming and id handling (ROS-free), the clear error without
hri_msgs, and, where hri_msgs is importable, its topics on a real graph."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conftest import wait_for
from node_harness import Probe, destroy, make_node, start
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from fer_msgs.msg import Face, FaceArray, StableExpression, StableExpressionArray
from fer_ros.core.hri_mapping import (
    FACES_TRACKED,
    HRI_EXPRESSIONS,
    TrackedFaces,
    face_topic,
    hri_expression,
    hri_face_id,
    normalized_roi,
)
from fer_ros.nodes.hri_bridge_node import HriBridgeNode
from fer_ros.nodes.image_codec import array_to_image
from fer_ros.nodes.pipeline_base import ERROR


def test_ids_topics_and_expression_names_follow_rep_155():
    assert hri_face_id(7) == "f7" and hri_face_id(7, "s2f") == "s2f7"
    assert face_topic("f7", "roi") == "/humans/faces/f7/roi"
    assert FACES_TRACKED == "/humans/faces/tracked"
    with pytest.raises(ValueError, match="not one of"):
        face_topic("f7", "landmarks")
    with pytest.raises(ValueError, match="usable"):
        face_topic("a/b", "roi")
    assert [hri_expression(c) for c in ("happy", "fear", "surprise", "sadness")] == [
        "happy", "scared", "surprised", "sad",
    ]  # fmt: skip
    # a model's neutral class is REP-155's NEUTRAL; uncertain (no class confident) is not
    assert hri_expression("neutral") == "neutral"
    # no contempt in REP-155's list, and uncertain is not its neutral
    assert hri_expression("contempt") == hri_expression("uncertain") == ""


# hri_msgs/Expression's string constants for the basic expressions (ros4hri/hri_msgs,
# msg/Expression.msg: NEUTRAL="neutral", ANGRY="angry", ...); checked against the real
# message below where hri_msgs is importable
REP_155_BASIC = {
    "NEUTRAL": "neutral",
    "ANGRY": "angry",
    "SAD": "sad",
    "HAPPY": "happy",
    "SURPRISED": "surprised",
    "DISGUSTED": "disgusted",
    "SCARED": "scared",
}


def test_every_class_but_contempt_maps_to_a_rep_155_constant():
    classes = ("happy", "contempt", "fear", "surprise", "sadness", "anger", "disgust", "neutral")
    mapped = {c: hri_expression(c) for c in classes}
    assert {c for c, e in mapped.items() if not e} == {"contempt"}
    assert sorted(mapped[c] for c in classes if c != "contempt") == sorted(REP_155_BASIC.values())
    assert set(HRI_EXPRESSIONS.values()) <= set(REP_155_BASIC.values())


def test_the_constants_are_hri_msgs_own():
    hri = pytest.importorskip("hri_msgs.msg", reason="hri_msgs (ROS4HRI) is not installed")
    for name, value in REP_155_BASIC.items():
        assert getattr(hri.Expression, name) == value


def test_rois_are_normalised_and_clipped():
    assert normalized_roi(160, 90, 320, 180, 640, 360) == (0.25, 0.25, 0.75, 0.75)
    assert normalized_roi(600, 300, 100, 100, 640, 360) == (600 / 640, 300 / 360, 1.0, 1.0)
    with pytest.raises(ValueError, match="cannot normalise"):
        normalized_roi(0, 0, 1, 1, 0, 0)


def test_tracked_faces_open_and_close_per_face_topics():
    tracked = TrackedFaces()
    assert tracked.update(["f1", "f2"]) == (["f1", "f2"], [])
    assert tracked.update(["f2", "f2", "f3"]) == (["f3"], ["f1"])  # duplicates dropped
    assert tracked.ids == ["f2", "f3"]
    assert tracked.update([]) == ([], ["f2", "f3"])


def test_without_hri_msgs_configure_fails_naming_the_package(ros, monkeypatch):
    monkeypatch.setitem(sys.modules, "hri_msgs", None)  # import now raises ImportError
    node = make_node(ros, HriBridgeNode)
    probe = Probe(ros)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert wait_for(lambda: probe.saw_diagnostic("hri_bridge", "hri_msgs is not importable", ERROR))
    assert probe.saw_diagnostic("hri_bridge", "github.com/ros4hri/hri_msgs")
    destroy(node)


def face_array(t_s: int, ids: list[int]) -> FaceArray:
    header = Header(stamp=Time(sec=t_s), frame_id="camera")
    crop = array_to_image(np.full((48, 48), 100, np.uint8), "mono8", header)
    faces = [
        Face(
            header=header, face_id=i, confidence=0.9, crop=crop,
            roi=RegionOfInterest(x_offset=64 * i, y_offset=36, width=64, height=72),
        )
        for i in ids
    ]  # fmt: skip
    return FaceArray(header=header, image_width=640, image_height=360, faces=faces)


def test_bridge_publishes_rep_155_topics_per_face(ros):
    hri = pytest.importorskip("hri_msgs.msg", reason="hri_msgs (ROS4HRI) is not installed")
    node = make_node(ros, HriBridgeNode)
    start(node)
    probe = Probe(ros)
    tracked = probe.listen(FACES_TRACKED, hri.IdsList)
    faces = probe.publisher("faces", FaceArray)
    faces.publish(face_array(1, [1, 2]))
    assert wait_for(lambda: len(tracked) == 1)
    rois = probe.listen("/humans/faces/f2/roi", hri.NormalizedRegionOfInterest2D)
    crops = probe.listen("/humans/faces/f2/cropped", Image)
    expressions = probe.listen("/humans/faces/f2/expression", hri.Expression)
    faces.publish(face_array(2, [1, 2]))
    stable = probe.publisher("stable_expressions", StableExpressionArray)
    stable.publish(
        StableExpressionArray(
            header=Header(stamp=Time(sec=2)),
            expressions=[
                StableExpression(face_id=2, label="sadness", confidence=0.8, valence=-0.6),
                StableExpression(face_id=9, label="happy"),  # not in view: not published
            ],
        )
    )
    assert wait_for(lambda: rois and crops and expressions)
    for label in ("neutral", "uncertain"):
        stable.publish(
            StableExpressionArray(
                header=Header(stamp=Time(sec=2)),
                expressions=[StableExpression(face_id=2, label=label, valence=0.1)],
            )
        )
    assert wait_for(lambda: len(expressions) == 3)
    assert [e.expression for e in expressions[1:]] == [hri.Expression.NEUTRAL, ""]
    assert list(tracked[0].ids) == ["f1", "f2"]
    roi = rois[0]
    assert (roi.xmin, roi.xmax, roi.c) == pytest.approx((0.2, 0.3, 0.9))
    assert (crops[0].width, crops[0].encoding) == (48, "mono8")
    e = expressions[0]
    assert (e.expression, e.valence, e.confidence) == pytest.approx(("sad", -0.6, 0.8))
    assert wait_for(lambda: node.expressions_unmatched == 1)
    # face 1 leaves: the tracked list drops it and its topics close
    faces.publish(face_array(3, [2]))
    assert wait_for(lambda: len(tracked) == 3 and list(tracked[-1].ids) == ["f2"])
    assert wait_for(lambda: probe.node.count_publishers("/humans/faces/f1/roi") == 0)
    node.release()
