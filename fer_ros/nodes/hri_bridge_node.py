"""REP-155 bridge node: fer_ros faces and stable expressions on ROS4HRI topics.

Subscribes ``faces`` (fer_msgs/FaceArray) and ``stable_expressions``
(fer_msgs/StableExpressionArray); publishes ``/humans/faces/tracked`` (hri_msgs/IdsList)
and per face ``/humans/faces/<id>/roi`` (hri_msgs/NormalizedRegionOfInterest2D),
``.../cropped`` (sensor_msgs/Image, the 48x48 mono8 crop) and ``.../expression``
(hri_msgs/Expression). Naming is :mod:`fer_ros.core.hri_mapping`. Needs ``hri_msgs``
(ROS4HRI), which is not on PyPI: without it configure fails with a message naming it.
"""

from __future__ import annotations

import threading
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from fer_msgs.msg import FaceArray, StableExpressionArray
from fer_ros.core.hri_mapping import (
    FACE_TOPICS,
    FACES_TRACKED,
    TrackedFaces,
    face_topic,
    hri_expression,
    hri_face_id,
    normalized_roi,
)
from fer_ros.core.options import Param
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import INPUT_PARAMETERS, INPUT_QOS, PipelineNode

HRI_MSGS_HELP = (
    "REP-155 topics need the ROS4HRI messages hri_msgs, which are not on PyPI: "
    "apt install ros-$ROS_DISTRO-hri-msgs, or build https://github.com/ros4hri/hri_msgs "
    "(branch humble-devel) in your workspace"
)
PARAMETERS = (
    Param(
        "id_prefix",
        "f",
        "REP-155 face id is <id_prefix><tracker id>; set one per session where ids must "
        "stay unique across restarts of face detection",
    ),
    *INPUT_PARAMETERS,
)
HRI_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def import_hri_msgs() -> Any:
    """The hri_msgs.msg module; RuntimeError naming the package when it is missing."""
    try:
        from hri_msgs import msg
    except ImportError as error:
        raise RuntimeError(f"hri_msgs is not importable ({error}); {HRI_MSGS_HELP}") from error
    return msg


class HriBridgeNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "hri_bridge", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._hri: Any = None
        self._tracked_pub: Any = None
        self._lock = threading.Lock()  # faces (worker) and expressions (executor) share
        self._faces = TrackedFaces()
        self._face_publishers: dict[str, dict[str, Any]] = {}  # id -> leaf -> publisher
        self._expressions_sub: Any = None
        self.expressions_unmatched = 0  # for faces not (or no longer) in view

    def load(self) -> None:
        self._hri = import_hri_msgs()
        if self._tracked_pub is None:
            self._tracked_pub = self.output(self._hri.IdsList, FACES_TRACKED)

    def start(self) -> None:
        self.subscribe_input(FaceArray, "faces", INPUT_QOS)
        self._expressions_sub = self.create_subscription(
            StableExpressionArray, "stable_expressions", self._on_expressions, HRI_QOS
        )

    def stop(self) -> None:
        if self._expressions_sub is not None:
            self.destroy_subscription(self._expressions_sub)
            self._expressions_sub = None
        with self._lock:
            for face in list(self._face_publishers):
                self._close(face)
            self._faces = TrackedFaces()

    def unload(self) -> None:
        self._hri = None

    # --- faces: tracked list, ROIs and crops ------------------------------------------------
    def process(self, msg: FaceArray) -> None:
        hri = self._hri
        if hri is None:
            return
        prefix = self.config.id_prefix
        ids = [hri_face_id(f.face_id, prefix) for f in msg.faces]
        with self._lock:
            opened, closed = self._faces.update(ids)
            for face in closed:
                self._close(face)
            for face in opened:
                self._face_publishers[face] = {
                    leaf: self.create_publisher(
                        self._type_of(leaf), face_topic(face, leaf), HRI_QOS
                    )
                    for leaf in FACE_TOPICS
                }
            self._tracked_pub.publish(hri.IdsList(header=msg.header, ids=self._faces.ids))
            for face, f in zip(ids, msg.faces, strict=True):
                xmin, ymin, xmax, ymax = normalized_roi(
                    f.roi.x_offset, f.roi.y_offset, f.roi.width, f.roi.height,
                    msg.image_width, msg.image_height,
                )  # fmt: skip
                publishers = self._face_publishers[face]
                publishers["roi"].publish(
                    hri.NormalizedRegionOfInterest2D(
                        header=msg.header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                        c=f.confidence,
                    )
                )  # fmt: skip
                publishers["cropped"].publish(f.crop)

    # --- expressions -------------------------------------------------------------------------
    def _on_expressions(self, msg: StableExpressionArray) -> None:
        hri = self._hri
        if hri is None or not self.active:
            return
        prefix = self.config.id_prefix
        with self._lock:
            for e in msg.expressions:
                publishers = self._face_publishers.get(hri_face_id(e.face_id, prefix))
                if publishers is None:
                    self.expressions_unmatched += 1
                    continue
                publishers["expression"].publish(
                    hri.Expression(
                        header=msg.header, expression=hri_expression(e.label),
                        valence=e.valence, arousal=e.arousal, confidence=e.confidence,
                    )
                )  # fmt: skip

    # --- helpers --------------------------------------------------------------------------
    def _type_of(self, leaf: str) -> type:
        return {
            "roi": self._hri.NormalizedRegionOfInterest2D,
            "cropped": Image,
            "expression": self._hri.Expression,
        }[leaf]

    def _close(self, face: str) -> None:
        for publisher in self._face_publishers.pop(face, {}).values():
            self.destroy_publisher(publisher)

    def status_values(self) -> dict[str, str]:
        return {
            "faces_tracked": str(len(self._faces.ids)),
            "expressions_unmatched": str(self.expressions_unmatched),
        }


def main(args: list[str] | None = None) -> None:
    run_node(HriBridgeNode, args)


if __name__ == "__main__":
    main()
