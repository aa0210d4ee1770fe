"""Face detection node: finds, tracks and crops faces in camera images.

Subscribes ``image_raw`` (sensor_msgs/Image: mono8, bgr8, rgb8, bgra8, rgba8, or a USB
camera's yuv422 / yuv422_yuy2), or with ``image_transport: compressed`` its
image_transport sibling ``image_raw/compressed`` (sensor_msgs/CompressedImage, JPEG or
PNG, decoded on the detection worker). Newest frame wins. Publishes ``faces``
(fer_msgs/FaceArray, one per processed frame, empty when no face is in view) with 48x48
mono8 crops. The detector is BlazeFace by default (crops aligned on the eyes) or
OpenCV's Haar cascade (:mod:`fer_ros.core.face_finders`).
"""

from __future__ import annotations

import time

import cv2
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest

from fer_msgs.msg import Face, FaceArray
from fer_ros.core.blazeface import MODELS, BlazeFaceUnavailable
from fer_ros.core.face_finders import (
    DETECTORS,
    BlazeFaceFinder,
    CropSettings,
    FaceFinder,
    HaarFinder,
)
from fer_ros.core.face_follow import FollowSettings
from fer_ros.core.face_tracking import IouTracker
from fer_ros.core.options import Param
from fer_ros.core.stats import RollingLatency
from fer_ros.nodes.image_codec import array_to_image, compressed_to_bgr, image_to_bgr
from fer_ros.nodes.input_limits import MAX_IMAGE_PARAMETER, OversizedInput
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import INPUT_PARAMETERS, PipelineNode

IMAGE_TOPIC = "image_raw"
# image_transport's names: "raw" is the topic itself, "compressed" is <topic>/compressed.
TRANSPORTS = ("raw", "compressed")

PARAMETERS = (
    Param(
        "image_transport",
        "raw",
        "Image input as image_transport names it: raw (sensor_msgs/Image on image_raw) or "
        "compressed (sensor_msgs/CompressedImage, JPEG or PNG, on image_raw/compressed, "
        "e.g. a robot streaming over Wi-Fi)",
        choices=TRANSPORTS,
    ),
    Param("detector", "blazeface", "Face detector", choices=DETECTORS),
    Param(
        "blazeface_model",
        "both",
        "BlazeFace models: short (near faces, fastest), full (near and far) or both (pooled)",
        choices=(*MODELS, "both"),
    ),
    Param(
        "score_threshold",
        0.0,
        "BlazeFace score a face needs, in (0, 1); 0 uses the tuned defaults (0.7 for both)",
        minimum=0.0,
        maximum=0.99,
    ),
    Param(
        "align_crop",
        True,
        "BlazeFace: rotate and frame each crop on its eyes like the training crops "
        "(false: a square box crop with crop_margin)",
    ),
    Param(
        "detect_every",
        10,
        "BlazeFace: run the full detector every this many frames (and whenever a face is "
        "lost); between, each face is followed by the short-range model in a window around "
        "it. 1: the full detector on every frame",
        minimum=1,
        maximum=300,
    ),
    Param(
        "follow_max_faces",
        3,
        "BlazeFace: with more faces in view, the full detector runs on every frame (one "
        "pass is then cheaper than a step per face)",
        minimum=1,
        maximum=64,
    ),
    Param("cascade", "", "Haar: cascade XML; empty uses OpenCV's frontal-face default"),
    Param(
        "detection_width",
        320,
        "Haar: frames wider than this are downscaled for detection (pixels); 0: full size",
        minimum=0,
        maximum=4096,
    ),
    Param("min_face_size", 60, "Smallest face to keep, in source pixels", minimum=8, maximum=4096),
    Param("scale_factor", 1.1, "Haar: image pyramid step", minimum=1.01, maximum=2.0),
    Param("min_neighbors", 5, "Haar: detections needed to accept a face", minimum=0, maximum=50),
    Param(
        "max_faces",
        6,
        "Keep at most this many faces per frame, largest first",
        minimum=1,
        maximum=64,
    ),
    Param(
        "crop_size",
        48,
        "Side of the square mono8 face crop in pixels (the models' input)",
        minimum=8,
        maximum=512,
    ),
    Param(
        "crop_margin",
        0.1,
        "Box crops: extra border around the detected box, fraction of its side",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "track_min_iou",
        0.3,
        "Overlap needed to keep a face's id between frames",
        minimum=0.01,
        maximum=1.0,
    ),
    Param(
        "track_max_missed",
        5,
        "Frames a face may be missed before its id is retired",
        minimum=0,
        maximum=1000,
    ),
    MAX_IMAGE_PARAMETER,
    *INPUT_PARAMETERS,
)
# Serialized bytes beyond max_image_pixels' worth of bgra8 (the widest encoding read):
# the header, the encoding string and row padding.
MESSAGE_SLACK_BYTES = 1 << 20


class FaceDetectionNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "face_detection", **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        self._faces_pub = self.output(FaceArray, "faces")
        self._finder: FaceFinder | None = None
        self._tracker = IouTracker()
        self._latency = RollingLatency()
        self.faces_published = 0

    def load(self) -> None:
        # One detection thread: on small machines OpenCV's own pool fights the executor
        # and the other stages for the same cores (measured: worse latency at 30 FPS).
        cv2.setNumThreads(1)
        cfg = self.config
        crops = CropSettings(cfg.crop_size, cfg.crop_margin, cfg.min_face_size, cfg.max_faces)
        if cfg.detector == "blazeface":
            try:
                follow = FollowSettings(cfg.detect_every, cfg.follow_max_faces)
                self._finder = BlazeFaceFinder(
                    crops, cfg.blazeface_model, cfg.score_threshold or None, cfg.align_crop, follow
                )
            except BlazeFaceUnavailable as error:
                raise RuntimeError(f"{error} (or set detector: haar)") from error
        else:
            self._finder = HaarFinder(
                crops, cfg.cascade, cfg.detection_width, cfg.scale_factor, cfg.min_neighbors
            )
        self._tracker = IouTracker(cfg.track_min_iou, cfg.track_max_missed)
        self.max_input_bytes = 4 * cfg.max_image_pixels + MESSAGE_SLACK_BYTES
        model = ""
        if cfg.detector == "blazeface":
            model = f" ({cfg.blazeface_model}, full detection every {cfg.detect_every} frames)"
        self.get_logger().info(f"detector: {cfg.detector}{model}")

    def start(self) -> None:
        if self.config.image_transport == "compressed":
            # As image_transport does: the base topic is resolved (namespace, remaps) and
            # the transport's suffix appended, so remapping image_raw moves both.
            topic = f"{self.resolve_topic_name(IMAGE_TOPIC)}/compressed"
            self.subscribe_input(CompressedImage, topic, qos_profile_sensor_data)
        else:
            self.subscribe_input(Image, IMAGE_TOPIC, qos_profile_sensor_data)

    def unload(self) -> None:
        self._finder = None

    def process(self, msg: Image | CompressedImage) -> None:
        finder = self._finder
        if finder is None:
            return
        start = time.perf_counter()
        # colour: BlazeFace scores grey lower
        if isinstance(msg, CompressedImage):
            pixels = compressed_to_bgr(msg)
            self._check_size(pixels.shape[1], pixels.shape[0])
        else:
            self._check_size(msg.width, msg.height)
            pixels = image_to_bgr(msg)
        found = finder.find(pixels)
        ids = self._tracker.update([face.box for face in found])
        height, width = pixels.shape[:2]
        out = FaceArray(header=msg.header, image_width=width, image_height=height)
        for face_id, face in zip(ids, found, strict=True):
            x, y, w, h = face.box
            out.faces.append(
                Face(
                    header=msg.header,
                    face_id=face_id,
                    roi=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
                    confidence=face.confidence,
                    crop=array_to_image(face.crop, "mono8", msg.header),
                )
            )
        self._faces_pub.publish(out)
        self.faces_published += len(out.faces)
        self._latency.add((time.perf_counter() - start) * 1000.0)

    def _check_size(self, width: int, height: int) -> None:
        limit = self.config.max_image_pixels
        if width * height > limit:
            raise OversizedInput(f"{width}x{height} image over max_image_pixels ({limit})")

    def status_values(self) -> dict[str, str]:
        follower = getattr(self._finder, "follower", None)
        passes = {}
        if follower is not None:
            passes = {
                "full_detections": str(follower.full_passes),
                "followed_faces": str(follower.window_passes),
            }
        return {
            **passes,
            "detector": self.config.detector if self.config else "",
            "image_transport": self.config.image_transport if self.config else "",
            "faces_published": str(self.faces_published),
            "latency_p50_ms": f"{self._latency.percentile(50):.1f}",
            "latency_p95_ms": f"{self._latency.percentile(95):.1f}",
        }


def main(args: list[str] | None = None) -> None:
    run_node(FaceDetectionNode, args)


if __name__ == "__main__":
    main()
