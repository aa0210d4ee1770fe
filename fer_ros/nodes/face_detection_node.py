"""Face detection node: finds, tracks and crops faces in camera images.

Subscribes ``image_raw`` (newest frame wins); publishes ``faces`` (fer_msgs/FaceArray,
one per processed frame, empty when no face is in view) with 48x48 mono8 crops.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, RegionOfInterest

from fer_msgs.msg import Face, FaceArray
from fer_ros.core.face_tracking import Box, IouTracker
from fer_ros.core.options import Param
from fer_ros.core.stats import RollingLatency
from fer_ros.nodes.image_codec import array_to_image, image_to_gray
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import INPUT_PARAMETERS, PipelineNode

PARAMETERS = (
    Param("cascade", "", "Haar cascade XML; empty uses OpenCV's frontal-face default"),
    Param(
        "detection_width",
        320,
        "Frames wider than this are downscaled for detection (pixels); 0 detects at full size",
        minimum=0,
        maximum=4096,
    ),
    Param(
        "min_face_size", 60, "Smallest face to detect, in source pixels", minimum=8, maximum=4096
    ),
    Param("scale_factor", 1.1, "Haar image pyramid step", minimum=1.01, maximum=2.0),
    Param("min_neighbors", 5, "Haar detections needed to accept a face", minimum=0, maximum=50),
    Param(
        "max_faces",
        4,
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
        "Extra border around the detected box, fraction of its side",
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
    *INPUT_PARAMETERS,
)


def default_cascade() -> Path:
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise RuntimeError(
            "this OpenCV has no Haar cascades (OpenCV 5 removed them); "
            "install opencv-python-headless<5"
        )
    return Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"


class FaceDetectionNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "face_detection", **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        self._faces_pub = self.output(FaceArray, "faces")
        self._detector: cv2.CascadeClassifier | None = None
        self._tracker = IouTracker()
        self._latency = RollingLatency()
        self.faces_published = 0

    def load(self) -> None:
        # One detection thread: on small machines OpenCV's own pool fights the executor
        # and the other stages for the same cores (measured: worse latency at 30 FPS).
        cv2.setNumThreads(1)
        path = Path(self.config.cascade) if self.config.cascade else default_cascade()
        detector = cv2.CascadeClassifier(str(path))
        if detector.empty():
            raise RuntimeError(f"cannot load Haar cascade {path}")
        self._detector = detector
        self._tracker = IouTracker(self.config.track_min_iou, self.config.track_max_missed)

    def start(self) -> None:
        self.subscribe_input(Image, "image_raw", qos_profile_sensor_data)

    def unload(self) -> None:
        self._detector = None

    def process(self, msg: Image) -> None:
        detector = self._detector
        if detector is None:
            return
        start = time.perf_counter()
        gray = image_to_gray(msg)
        boxes, confidences = self._detect(detector, gray)
        ids = self._tracker.update(boxes)
        out = FaceArray(header=msg.header, image_width=msg.width, image_height=msg.height)
        for face_id, box, confidence in zip(ids, boxes, confidences, strict=True):
            crop = self._crop(gray, box)
            out.faces.append(
                Face(
                    header=msg.header,
                    face_id=face_id,
                    roi=RegionOfInterest(
                        x_offset=box[0], y_offset=box[1], width=box[2], height=box[3]
                    ),
                    confidence=confidence,
                    crop=array_to_image(crop, "mono8", msg.header),
                )
            )
        self._faces_pub.publish(out)
        self.faces_published += len(out.faces)
        self._latency.add((time.perf_counter() - start) * 1000.0)

    def _detect(
        self, detector: cv2.CascadeClassifier, gray: np.ndarray
    ) -> tuple[list[Box], list[float]]:
        cfg = self.config
        height, width = gray.shape
        scale = 1.0
        if cfg.detection_width and width > cfg.detection_width:
            scale = cfg.detection_width / width
            gray = cv2.resize(
                gray, (cfg.detection_width, round(height * scale)), interpolation=cv2.INTER_AREA
            )
        min_side = max(8, round(cfg.min_face_size * scale))
        rects, _, weights = detector.detectMultiScale3(
            gray,
            scaleFactor=cfg.scale_factor,
            minNeighbors=cfg.min_neighbors,
            minSize=(min_side, min_side),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return [], []
        order = np.argsort([-(w * h) for _, _, w, h in rects])[: cfg.max_faces]
        boxes = [tuple(round(v / scale) for v in rects[i]) for i in order]
        # Haar stage weights are unbounded scores; the logistic maps them into [0, 1]
        # for ranking, it is not a calibrated probability.
        confidences = [float(1.0 / (1.0 + np.exp(-float(np.ravel(weights)[i])))) for i in order]
        return boxes, confidences  # type: ignore[return-value]

    def _crop(self, gray: np.ndarray, box: Box) -> np.ndarray:
        x, y, w, h = box
        side = round(max(w, h) * (1.0 + self.config.crop_margin))
        cx, cy = x + w / 2.0, y + h / 2.0
        x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
        # Pad by replication so faces at the border keep a centred, square crop.
        pad = max(0, -x0, -y0, x0 + side - gray.shape[1], y0 + side - gray.shape[0])
        if pad:
            gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            x0, y0 = x0 + pad, y0 + pad
        size = self.config.crop_size
        return cv2.resize(
            gray[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA
        )

    def status_values(self) -> dict[str, str]:
        return {
            "faces_published": str(self.faces_published),
            "latency_p50_ms": f"{self._latency.percentile(50):.1f}",
            "latency_p95_ms": f"{self._latency.percentile(95):.1f}",
        }


def main(args: list[str] | None = None) -> None:
    run_node(FaceDetectionNode, args)


if __name__ == "__main__":
    main()
