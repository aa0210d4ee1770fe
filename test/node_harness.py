"""Helpers for driving one pipeline node with real messages on a real rclpy graph."""

from __future__ import annotations

import copy
import queue
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


class BackgroundExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor spun by a thread of its own, which also destroys nodes
    between two waits (``retire``).

    A node destroyed by another thread while the executor builds its wait set makes
    rclpy's QoS-event waitables raise ``InvalidHandle`` in the spinning thread (rclpy 9.1:
    ``add_to_wait_set`` uses a handle whose destruction was requested); ``remove_node``
    alone does not help, as the wait already under way still holds the node."""

    def __init__(self) -> None:
        super().__init__(num_threads=4)
        self._retiring: queue.Queue[tuple[Node, threading.Event]] = queue.Queue()
        self._thread = threading.Thread(target=self._spin, name="test-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok() and not self._is_shutdown:
            self.spin_once(timeout_sec=0.1)
            self._retire_pending()

    def _retire_pending(self) -> None:
        while not self._retiring.empty():
            node, done = self._retiring.get()
            _destroy(node)
            done.set()

    def retire(self, node: Node) -> None:
        """Remove ``node`` and destroy it once no wait holds it."""
        self.remove_node(node)
        if not self._thread.is_alive() or threading.current_thread() is self._thread:
            _destroy(node)
            return
        done = threading.Event()
        self._retiring.put((node, done))
        self.wake()
        if not done.wait(10):
            raise TimeoutError(f"the executor did not destroy {node.get_name()} in 10 s")

    def stop(self) -> None:
        """Stop spinning, then destroy every node left (a node left alive keeps its
        services visible to the next test's peers)."""
        nodes = self.get_nodes()
        self.shutdown()
        self._thread.join(30)  # a callback under way ends first
        assert not self._thread.is_alive(), "the executor thread did not stop in 30 s"
        self._retire_pending()
        for node in nodes:
            _destroy(node)


def destroy(node: Node) -> None:
    """Destroy ``node``, between two waits of its executor if a ``BackgroundExecutor``
    spins it."""
    executor = node.executor
    if isinstance(executor, BackgroundExecutor):
        executor.retire(node)
    else:
        _destroy(node)


def _destroy(node: Node) -> None:
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
