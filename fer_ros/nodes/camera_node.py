"""Camera node: publishes frames from a device, a video file or an image folder.

Topics (relative, so a namespace or remap places them): ``image_raw``
(sensor_msgs/Image, bgr8) and ``camera_info``, both with sensor-data QoS.
"""

from __future__ import annotations

import math
import threading
import time

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from fer_ros.core.frame_sources import (
    STREAM_KEY,
    CaptureSource,
    FrameSource,
    SourceError,
    StreamState,
    open_source,
)
from fer_ros.core.options import Param
from fer_ros.core.stats import RateMeter
from fer_ros.nodes.entity_thread import EntityThread, NotOnExecutor
from fer_ros.nodes.image_codec import array_to_image
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import ERROR, PipelineNode

PARAMETERS = (
    Param(
        "source",
        "demo",
        "Device index (0), /dev/videoN, video file, image folder, or "
        "'demo' for the installed demo face video",
    ),
    Param(
        "fps",
        30.0,
        "Publishing rate in Hz; 0 uses the source's own rate",
        minimum=0.0,
        maximum=240.0,
    ),
    Param("width", 0, "Output width in pixels; 0 keeps the source's", minimum=0, maximum=8192),
    Param("height", 0, "Output height in pixels; 0 keeps the source's", minimum=0, maximum=8192),
    Param("loop", False, "Restart files and folders at their end instead of stopping"),
    Param("frame_id", "camera", "frame_id of published images"),
    Param(
        "horizontal_fov_deg",
        60.0,
        "Horizontal field of view for the uncalibrated pinhole CameraInfo",
        minimum=1.0,
        maximum=179.0,
    ),
    Param(
        "reconnect_period_s",
        1.0,
        "How often to retry a device that disappeared",
        minimum=0.1,
        maximum=60.0,
    ),
)
OPENCV_LOG_ERROR = 2  # cv2.utils.logging.LOG_LEVEL_ERROR, which not every build exposes
FALLBACK_FPS = 30.0  # when neither the parameter nor the source gives a rate
MAX_FPS = 240.0  # the fps parameter's upper bound; a source's own claim is clamped to it


class CameraNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "camera", **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        self._image_pub = self.output(Image, "image_raw", qos_profile_sensor_data)
        self._info_pub = self.output(CameraInfo, "camera_info", qos_profile_sensor_data)
        self._source: FrameSource | None = None
        # A tick may still be decoding on its thread while cleanup runs.
        self._source_lock = threading.Lock()
        self._timer = None
        self._ticker: EntityThread | None = None
        self._rate = RateMeter()
        self.frames_published = 0
        self.stream = StreamState.IDLE
        self._next_reconnect = 0.0
        self._looped = False

    def load(self) -> None:
        try:
            self._source = open_source(self.config.source)
        except (SourceError, FileNotFoundError) as error:
            raise RuntimeError(str(error)) from error
        fps = self.config.fps or min(self._source.native_fps, MAX_FPS) or FALLBACK_FPS
        self._period_s = 1.0 / fps
        self.get_logger().info(f"source: {self._source.description} at {fps:.1f} Hz")
        if self._source.is_live:
            # The reopen loop would print OpenCV's own warning every period.
            cv2.setLogLevel(OPENCV_LOG_ERROR)
            if not getattr(self._source, "opened", True):
                self.stream = StreamState.NO_DEVICE
                self.get_logger().warning(
                    f"{self._source.description} is absent; opening it when it appears"
                )

    @property
    def end_of_stream(self) -> bool:
        return self.stream is StreamState.END_OF_STREAM

    def start(self) -> None:
        if self.stream is not StreamState.NO_DEVICE:
            self.stream = StreamState.STREAMING
        # Ticks on a thread of its own, not the executor's (fer_ros.nodes.entity_thread)
        self._timer = self.create_timer(self._period_s, self._tick, callback_group=NotOnExecutor())
        self._ticker = EntityThread(self, [self._timer], "camera.tick", self._tick_failed)
        self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def unload(self) -> None:
        with self._source_lock:
            if self._source is not None:
                self._source.close()
                self._source = None

    def _tick(self) -> None:
        with self._source_lock:
            source = self._source
            if source is None or self.end_of_stream:
                return
            # Stamp before reading: the frame exists at least from then on, so latency
            # measured from the stamp is never understated by our own decode time.
            stamp = self.get_clock().now().to_msg()
            frame = source.read()
            if frame is None and self._rewound(source):
                frame = source.read()  # a looping file keeps its rate across the seam
            if frame is None:
                self._handle_missing_frame(source)
                return
        self.stream = StreamState.STREAMING
        self.clear("source")
        self._publish(frame, stamp)
        self.clear("tick")

    def _tick_failed(self, error: Exception) -> None:
        self.report("tick", ERROR, f"frame not published: {error}")

    def _rewound(self, source: FrameSource) -> bool:
        """At the end of a file that loops: start it again (and say so once)."""
        if source.is_live or not self.config.loop or self.frames_published == 0:
            return False
        if not source.rewind():
            return False
        if not self._looped:
            self._looped = True
            self.get_logger().info("end of stream; looping")
        return True

    def _handle_missing_frame(self, source: FrameSource) -> None:
        if source.is_live:
            self.stream = StreamState.NO_DEVICE
            period = self.config.reconnect_period_s
            self.report(
                "source",
                ERROR,
                f"no device: {source.description} delivers no frames; reopening every {period:g} s",
            )
            now = time.monotonic()
            if isinstance(source, CaptureSource) and now >= self._next_reconnect:
                self._next_reconnect = now + self.config.reconnect_period_s
                source.reopen()
            return
        if self.frames_published == 0:
            self.report("source", ERROR, f"no frame could be decoded from {source.description}")
            self.stream = StreamState.END_OF_STREAM
        else:
            self.stream = StreamState.END_OF_STREAM
            self.get_logger().info(
                f"end of stream after {self.frames_published} frames; no more frames"
            )

    def _publish(self, frame: np.ndarray, stamp: Time) -> None:
        width, height = self.config.width, self.config.height
        if width and height and (frame.shape[1], frame.shape[0]) != (width, height):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        header = Header(frame_id=self.config.frame_id, stamp=stamp)
        self._image_pub.publish(array_to_image(frame, "bgr8", header))
        self._info_pub.publish(self._camera_info(header, frame.shape[1], frame.shape[0]))
        self.frames_published += 1
        self._rate.tick()

    def _camera_info(self, header: Header, width: int, height: int) -> CameraInfo:
        # Uncalibrated pinhole model from the field of view; square pixels, no distortion.
        f = (width / 2.0) / math.tan(math.radians(self.config.horizontal_fov_deg) / 2.0)
        cx, cy = width / 2.0, height / 2.0
        info = CameraInfo(header=header, width=width, height=height)
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def hardware_id(self) -> str:
        return self._source.description if self._source else ""

    def status_values(self) -> dict[str, str]:
        return {
            STREAM_KEY: str(self.stream),
            "frames_published": str(self.frames_published),
            "fps": f"{self._rate.rate():.1f}",
        }


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args)


if __name__ == "__main__":
    main()
