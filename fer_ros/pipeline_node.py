"""Lifecycle base for the pipeline's nodes: parameters, problems, 1 Hz diagnostics.

Subclasses implement ``configure`` (read parameters, load resources; raise to fail),
``activate``/``deactivate`` (subscriptions and workers) and ``cleanup`` (free
resources), and describe themselves on /diagnostics through ``diagnostic_values``.
Problems are logged once when they appear and once when they clear, never per frame.
"""

from __future__ import annotations

import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from fer_ros.parameters import Param, declare_parameters, read_parameters

# diagnostic_msgs levels are single bytes, so max() orders them OK < WARN < ERROR.
OK: bytes = DiagnosticStatus.OK
WARN: bytes = DiagnosticStatus.WARN
ERROR: bytes = DiagnosticStatus.ERROR
DIAGNOSTICS_PERIOD_S = 1.0


class PipelineNode(LifecycleNode):
    parameters: tuple[Param, ...] = ()

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self, self.parameters)
        self.config: dict[str, Any] = {}
        self.active = False
        self._problems: dict[str, tuple[bytes, str]] = {}
        self._problems_lock = threading.Lock()
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)

    # --- to override ---------------------------------------------------------------------
    def configure(self) -> None:
        """Load resources from ``self.config``; raise with a clear message to fail."""

    def activate(self) -> None:
        """Create subscriptions and start workers."""

    def deactivate(self) -> None:
        """Destroy subscriptions and stop workers."""

    def cleanup(self) -> None:
        """Free what ``configure`` loaded."""

    def diagnostic_values(self) -> dict[str, str]:
        return {}

    def hardware_id(self) -> str:
        return ""

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = read_parameters(self, self.parameters)
            self.configure()
        except Exception as error:
            self.report("configure", ERROR, f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self.clear("configure")
        self.get_logger().info("configured")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self.activate()
        self.active = True
        self.get_logger().info("active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.deactivate()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return super().on_shutdown(state)

    def release(self) -> None:
        """Stop work and free resources without a transition (process shutdown)."""
        if self.active:
            self.active = False
            self.deactivate()
        self.cleanup()

    # --- problems and diagnostics ------------------------------------------------------
    def report(self, key: str, level: bytes, message: str) -> None:
        """Record a problem; log it only when it is new or changed."""
        with self._problems_lock:
            if self._problems.get(key) == (level, message):
                return
            self._problems[key] = (level, message)
        # Separate call sites: rclpy fixes the severity of each logging line on first use.
        if level == ERROR:
            self.get_logger().error(message)
        else:
            self.get_logger().warning(message)

    def clear(self, key: str) -> None:
        with self._problems_lock:
            previous = self._problems.pop(key, None)
        if previous is not None:
            self.get_logger().info(f"resolved: {previous[1]}")

    def publish_diagnostics(self) -> None:
        with self._problems_lock:
            problems = list(self._problems.values())
        status = DiagnosticStatus(
            name=self.get_fully_qualified_name(), hardware_id=self.hardware_id()
        )
        if problems:
            status.level = max(level for level, _ in problems)
            status.message = "; ".join(message for _, message in problems)
        elif not self.active:
            status.level, status.message = WARN, "inactive"
        else:
            status.level, status.message = OK, "running"
        values = {"state": "active" if self.active else "inactive", **self.diagnostic_values()}
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)
