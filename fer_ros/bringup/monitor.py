"""A console view of a running pipeline: one summary line per second.

Listens like any robot behaviour node would: ``expressions``, ``telemetry`` and
``/diagnostics``. It also notices when the camera reached the end of a finite stream.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from fer_msgs.msg import ExpressionArray, Telemetry
from fer_ros.core.course import describe_course
from fer_ros.core.frame_sources import STREAM_KEY, StreamState
from fer_ros.core.stats import RollingLatency
from fer_ros.nodes.entity_thread import EntityThread, NotOnExecutor

SOURCE_NAMES = {Telemetry.SOURCE_MEASURED: "measured", Telemetry.SOURCE_MODELLED: "modelled"}
DRAIN_S = 2.0  # after the camera's last frame, wait this long for the last results


class PipelineMonitor(Node):
    def __init__(
        self, namespace: str = "", print_period_s: float = 1.0, quiet: bool = False
    ) -> None:
        super().__init__("fer_ros_monitor", namespace=namespace)
        self._lock = threading.Lock()
        self._quiet = quiet
        self._start = time.monotonic()
        self._camera_name = f"{namespace.rstrip('/')}/camera" if namespace else "/camera"
        self._reset_window()
        self.frames = 0  # ExpressionArray messages seen
        self.frames_with_faces = 0
        self.label_counts: Counter[str] = Counter()
        self._course: list[str] = []  # the largest face's label per frame, in order
        self.end_to_end_ms = RollingLatency(100000)
        self.inference_ms = RollingLatency(100000)
        self.last_telemetry: Telemetry | None = None
        self._stream_ended_at: float | None = None
        self.camera_frames = 0  # as the camera last reported it
        self._last_result_at = time.monotonic()
        # Two messages a frame: taken on a thread of their own, not by the executor
        # (fer_ros.nodes.entity_thread)
        group = NotOnExecutor()
        self._listener = EntityThread(
            self,
            [
                self.create_subscription(
                    ExpressionArray, "expressions", self._on_expressions, 10, callback_group=group
                ),
                self.create_subscription(
                    Telemetry, "telemetry", self._on_telemetry, 10, callback_group=group
                ),
            ],
            "monitor",
            self._callback_failed,
        )
        self._listener.start()
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.create_timer(print_period_s, self._print)

    def destroy_node(self) -> None:
        self._listener.stop()
        super().destroy_node()

    def _callback_failed(self, error: Exception) -> None:
        self.get_logger().error(f"monitor: {error}")

    def _reset_window(self) -> None:
        self._window_frames = 0
        self._window_faces = 0
        self._window_labels: Counter[str] = Counter()
        self._window_e2e = RollingLatency()

    def _on_expressions(self, msg: ExpressionArray) -> None:
        with self._lock:
            self.frames += 1
            self._window_frames += 1
            self._last_result_at = time.monotonic()
            if msg.expressions:
                # the largest face's label per frame, in order: the run's course
                largest = max(msg.expressions, key=lambda e: e.roi.width * e.roi.height)
                self._course.append(largest.label)
                self.frames_with_faces += 1
                self._window_faces += len(msg.expressions)
                for e in msg.expressions:
                    self._window_labels[e.label] += 1
                    self.label_counts[e.label] += 1

    def _on_telemetry(self, msg: Telemetry) -> None:
        with self._lock:
            self.last_telemetry = msg
            self._window_e2e.add(msg.end_to_end_ms)
            self.end_to_end_ms.add(msg.end_to_end_ms)
            self.inference_ms.add(msg.inference_ms)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name != self._camera_name:  # other graphs share /diagnostics
                continue
            values = {kv.key: kv.value for kv in status.values}
            self.camera_frames = int(values.get("frames_published", self.camera_frames))
            if (
                values.get(STREAM_KEY) == StreamState.END_OF_STREAM
                and self._stream_ended_at is None
            ):
                self._stream_ended_at = time.monotonic()

    @property
    def stream_ended(self) -> bool:
        """The camera reported the end of a finite source."""
        return self._stream_ended_at is not None

    @property
    def finished(self) -> bool:
        """The finite source ended and results have stopped arriving."""
        ended = self._stream_ended_at
        if ended is None:
            return False
        now = time.monotonic()
        return now - ended > DRAIN_S and now - self._last_result_at > DRAIN_S

    def _print(self) -> None:
        with self._lock:
            line = self._summary_line()
            self._reset_window()
        if not self._quiet:
            print(line, flush=True)

    def _summary_line(self) -> str:
        t = time.monotonic() - self._start
        labels = ", ".join(f"{k} x{v}" for k, v in self._window_labels.most_common(3)) or "-"
        tel = self.last_telemetry
        parts = [
            f"[{t:6.1f} s] frames {self._window_frames:3d}/s",
            f"faces {self._window_faces:3d}",
            f"labels: {labels}",
        ]
        if tel is not None and len(self._window_e2e):
            parts.append(
                f"e2e p50 {self._window_e2e.percentile(50):.0f} ms "
                f"p95 {self._window_e2e.percentile(95):.0f} ms"
            )
            parts.append(f"{tel.accelerator}/{tel.device}: {tel.inference_ms:.1f} ms")
            if not math.isnan(tel.energy_mj):
                source = SOURCE_NAMES.get(tel.figure_source, "?")
                parts.append(f"{tel.power_w:.3g} W {tel.energy_mj:.3g} mJ ({source})")
            parts.append(f"dropped {tel.frames_dropped}")
        return " | ".join(parts)

    def final_report(self) -> str:
        """The run's totals; per-second lines stop, so the report is the last output."""
        with self._lock:
            self._quiet = True
            tel = self.last_telemetry
            lines = [
                f"frames with a result: {self.frames} ({self.frames_with_faces} with faces)",
                "labels: "
                + (", ".join(f"{k} x{v}" for k, v in self.label_counts.most_common()) or "-"),
                f"course (largest face): {describe_course(self._course)}",
            ]
            if tel is not None:
                lines.append(
                    f"end-to-end p50 {self.end_to_end_ms.percentile(50):.1f} ms, "
                    f"p95 {self.end_to_end_ms.percentile(95):.1f} ms; inference p50 "
                    f"{self.inference_ms.percentile(50):.2f} ms on {tel.device} ({tel.runtime})"
                )
                if not math.isnan(tel.energy_mj):
                    source = SOURCE_NAMES.get(tel.figure_source, "?")
                    lines.append(
                        f"last inference: {tel.power_w:.3g} W, {tel.energy_mj:.3g} mJ, "
                        f"{source} by {tel.figure_model}"
                    )
                lines.append(f"inputs dropped by the inference stage: {tel.frames_dropped}")
        return "\n".join(lines)
