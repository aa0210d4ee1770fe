"""Helpers for driving one pipeline node with real messages on a real rclpy graph."""

from __future__ import annotations

import copy
import threading
from typing import Any

import rclpy
from conftest import wait_for
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from fer_ros.nodes.pipeline_base import PipelineNode


def make_node(
    executor: MultiThreadedExecutor, node_class: type[PipelineNode], **parameters: Any
) -> PipelineNode:
    overrides = [Parameter(name, value=value) for name, value in parameters.items()]
    node = node_class(parameter_overrides=overrides)
    executor.add_node(node)
    return node


def destroy(node: Node) -> None:
    """``node.destroy_node()``, and for a lifecycle node its state machine too.

    rclpy's ``LifecycleNode.destroy_node()`` (rclpy 9.1) leaves the node's lifecycle state
    machine alive until the Python object is garbage collected, and the state machine holds
    the rcl node and its lifecycle services: the node stays in the ROS graph (visible also
    to the next test's context), and a later node of the same name shares its service
    names with a server that never answers but satisfies ``wait_for_service``."""
    node.destroy_node()
    state_machine = getattr(node, "_state_machine", None)
    if state_machine is not None:
        state_machine.destroy_when_not_in_use()


def start(node: PipelineNode) -> None:
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS


class Probe:
    """A node that publishes to and records from the node under test."""

    def __init__(self, executor: MultiThreadedExecutor, name: str = "probe") -> None:
        self.node = rclpy.create_node(name)
        executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.listen("/diagnostics", DiagnosticArray)

    def listen(
        self, topic: str, msg_type: type, sensor: bool = False, depth: int | None = None
    ) -> list[Any]:
        """Messages on ``topic`` as they arrive. ``sensor``: best-effort, as camera images
        are published; its history of 5 overflows when this busy process stalls longer
        than 5 frames, so a listener that must see every frame gives a ``depth``."""
        messages: list[Any] = []
        self.received[topic] = messages

        def store(msg: Any) -> None:
            with self._lock:
                messages.append(msg)

        qos = copy.copy(qos_profile_sensor_data) if sensor else QoSProfile(depth=100)
        qos.depth = depth or qos.depth
        subscription = self.node.create_subscription(msg_type, topic, store, qos)
        # Publishers already in the graph must match first, or their next message is lost
        # (no assert: a publisher with incompatible QoS never matches).
        wait_for(lambda: subscription.get_publisher_count() >= self.node.count_publishers(topic), 2)
        return messages

    def publisher(self, topic: str, msg_type: type, sensor: bool = False) -> Any:
        qos = qos_profile_sensor_data if sensor else QoSProfile(depth=10)
        publisher = self.node.create_publisher(msg_type, topic, qos)
        assert wait_for(lambda: publisher.get_subscription_count() > 0, 10), f"nobody on {topic}"
        return publisher

    def diagnostics_of(self, node_name: str) -> list[Any]:
        return [
            status
            for array in list(self.received["/diagnostics"])
            for status in array.status
            if status.name.endswith(node_name)
        ]

    def saw_diagnostic(self, node_name: str, text: str, level: bytes | None = None) -> bool:
        return any(
            text in s.message and (level is None or s.level == level)
            for s in self.diagnostics_of(node_name)
        )
