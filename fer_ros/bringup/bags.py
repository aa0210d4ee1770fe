"""Record and replay rosbag2 files (mcap or sqlite3) without the rosbag2 C++ stack.

Messages are kept as the CDR bytes the middleware delivers, so a replayed stream is
bit-identical to the recorded one. ``fer_ros_replay`` plays a bag's topics back at the
recorded timing (optionally publishing /clock for ``use_sim_time``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from importlib import import_module
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from fer_ros.core.profiles import use_fastdds_profile

SENSOR_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"}
SUBSCRIBER_WAIT_S = 5.0  # frames published before anyone listens are lost


class BagError(RuntimeError):
    """A bag that cannot be recorded or replayed as asked; the message says why."""


def message_class(msgtype: str) -> type:
    """``pkg/msg/Name`` -> the generated Python class; BagError when not installed."""
    try:
        package, _, name = msgtype.split("/")
        return getattr(import_module(f"{package}.msg"), name)
    except (ValueError, ImportError, AttributeError) as error:
        raise BagError(f"message type {msgtype!r} is not installed here") from error


def typestore_with(extra_msg_dirs: list[Path] = ()) -> Any:  # type: ignore[assignment]
    """Kilted's types plus custom .msg definitions (e.g. fer_msgs/msg)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for msg_dir in extra_msg_dirs:
        package = msg_dir.parent.name
        types: dict[str, Any] = {}
        for path in sorted(msg_dir.glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
        store.register(types)
    return store


class BagRecorder:
    """Subscribes to topics as raw CDR and writes them to a new bag."""

    def __init__(
        self,
        node: Node,
        path: Path,
        topics: dict[str, str],
        typestore: Any = None,
        storage: StoragePlugin = StoragePlugin.MCAP,
    ) -> None:
        self._lock = threading.Lock()
        self._writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=storage)
        self._writer.open()
        self.counts: dict[str, int] = {}
        store = typestore or typestore_with()
        self._subscriptions = []
        for topic, msgtype in topics.items():
            connection = self._writer.add_connection(topic, msgtype, typestore=store)
            qos = qos_profile_sensor_data if msgtype in SENSOR_TYPES else QoSProfile(depth=100)
            self.counts[topic] = 0
            self._subscriptions.append(
                node.create_subscription(
                    message_class(msgtype),
                    topic,
                    lambda data, c=connection, t=topic: self._write(c, t, data),
                    qos,
                    raw=True,
                )
            )
        self._node = node

    def _write(self, connection: Any, topic: str, data: bytes) -> None:
        with self._lock:
            if self._writer is None:
                return
            self._writer.write(connection, time.time_ns(), data)
            self.counts[topic] += 1

    def close(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def replay(
    node: Node,
    path: Path,
    expected: dict[str, str],
    rate: float = 1.0,
    clock: bool = False,
    remap: dict[str, str] | None = None,
) -> dict[str, int]:
    """Publish the bag's ``expected`` topics at recorded timing; returns counts per topic.

    ``expected`` maps topic -> message type; a topic that is missing from the bag or
    recorded with another type raises :class:`BagError` before anything is published.
    ``remap`` publishes a recorded topic under another name (a namespaced graph's).
    """
    remap = remap or {}
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:
        raise BagError(f"cannot open bag {path}: {error}") from error
    try:
        recorded = {c.topic: c.msgtype for c in reader.connections}
        for topic, msgtype in expected.items():
            if topic not in recorded:
                raise BagError(f"{path} has no topic {topic} (it has: {', '.join(recorded)})")
            if recorded[topic] != msgtype:
                raise BagError(f"{topic} in {path} is {recorded[topic]}, expected {msgtype}")
        publishers = {
            topic: node.create_publisher(
                message_class(msgtype),
                remap.get(topic, topic),
                qos_profile_sensor_data if msgtype in SENSOR_TYPES else QoSProfile(depth=100),
            )
            for topic, msgtype in expected.items()
        }
        _wait_for_subscribers(node, publishers, SUBSCRIBER_WAIT_S)
        clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            clock_pub = node.create_publisher(Clock, "/clock", 10)
        counts = dict.fromkeys(expected, 0)
        connections = [c for c in reader.connections if c.topic in expected]
        start_wall = time.monotonic()
        first_ns: int | None = None
        for connection, timestamp, data in reader.messages(connections=connections):
            first_ns = timestamp if first_ns is None else first_ns
            delay = (timestamp - first_ns) / 1e9 / rate - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
            if clock_pub is not None:
                from builtin_interfaces.msg import Time
                from rosgraph_msgs.msg import Clock

                clock_pub.publish(
                    Clock(clock=Time(sec=timestamp // 10**9, nanosec=timestamp % 10**9))
                )
            publishers[connection.topic].publish(bytes(data))
            counts[connection.topic] += 1
        return counts
    finally:
        reader.close()


def _wait_for_subscribers(node: Node, publishers: dict[str, Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(p.get_subscription_count() > 0 for p in publishers.values()):
            return
        time.sleep(0.05)
    idle = [t for t, p in publishers.items() if p.get_subscription_count() == 0]
    node.get_logger().warning(f"nobody subscribes to {', '.join(idle)}; replaying anyway")


def replay_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fer_ros_replay", description=replay.__doc__.split("\n")[0]
    )
    parser.add_argument("bag", type=Path)
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC=TYPE",
        help="topic and its expected type (default /image_raw=sensor_msgs/msg/Image)",
    )
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument(
        "--clock",
        action="store_true",
        help="publish /clock from the bag's time; start the graph with use_sim_time:=true "
        "(--use-sim-time) so end-to-end latency is measured against it",
    )
    parser.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="RECORDED=PUBLISHED",
        help="publish a recorded topic under another name, e.g. /image_raw=/robot/image_raw",
    )
    parser.add_argument(
        "--namespace", default="", help="publish every topic under this namespace (/robot)"
    )
    # ROS's own remapping works too: ... --ros-args -r /image_raw:=/robot/image_raw
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(remove_ros_args(["fer_ros_replay", *argv])[1:])
    pairs = args.topic or ["/image_raw=sensor_msgs/msg/Image"]
    if any("=" not in pair for pair in (*pairs, *args.remap)):
        parser.error("--topic takes TOPIC=TYPE and --remap RECORDED=PUBLISHED")
    expected = dict(pair.split("=", 1) for pair in pairs)
    prefix = "/" + args.namespace.strip("/") if args.namespace.strip("/") else ""
    remap = {topic: prefix + topic for topic in expected} if prefix else {}
    remap |= dict(pair.split("=", 1) for pair in args.remap)
    use_fastdds_profile()
    rclpy.init(args=["fer_ros_replay", *argv])
    node = rclpy.create_node("fer_ros_replay")
    try:
        counts = replay(node, args.bag, expected, args.rate, args.clock, remap)
        print(", ".join(f"{t}: {n} messages" for t, n in counts.items()))
        return 0
    except BagError as error:
        print(f"fer_ros_replay: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(replay_main())
