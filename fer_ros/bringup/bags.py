"""Record and replay rosbag2 files (mcap or sqlite3) without the rosbag2 C++ stack.

Messages are kept as the CDR bytes the middleware delivers, so a replayed stream is
bit-identical to the recorded one.

* ``fer_ros_record BAG``: the graph's topics (:data:`GRAPH_TOPICS`) into a new bag until
  Ctrl-C, SIGTERM or ``--duration``; the bag is always closed, so it stays readable.
* ``fer_ros_replay BAG``: a bag's topics (any set of them) at the recorded timing or as
  fast as the subscribers take them, optionally publishing /clock.
* ``fer_ros_replay BAG --profile P [--profile Q] --report DIR``: the bag's frames through
  one or two profiles, compared (:mod:`fer_ros.bringup.profile_replay`).
"""

from __future__ import annotations

import atexit
import copy
import os
import queue
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rosbags.interfaces import Nodetype
from rosbags.rosbag2 import Reader, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from fer_ros.bringup.graph_plan import normalise_namespace
from fer_ros.core.profiles import fastdds_profile
from fer_ros.nodes.entity_thread import EntityThread, NotOnExecutor

# What fer_ros_record records by default: the graph's topics, relative to --namespace
# (/diagnostics is absolute), with their types. Camera topics are published best-effort.
GRAPH_TOPICS = {
    "image_raw": "sensor_msgs/msg/Image",
    "camera_info": "sensor_msgs/msg/CameraInfo",
    "faces": "fer_msgs/msg/FaceArray",
    "expressions": "fer_msgs/msg/ExpressionArray",
    "stable_expressions": "fer_msgs/msg/StableExpressionArray",
    "expression_events": "fer_msgs/msg/ExpressionEvent",
    "telemetry": "fer_msgs/msg/Telemetry",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}
# Other topics of the graph, recorded when named with --topics.
OTHER_GRAPH_TOPICS = {
    "spike_trains": "fer_msgs/msg/SpikeTrainArray",
    "reaction": "std_msgs/msg/String",
}
SENSOR_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"}
# Histories deep enough to ride out a stall of the recorder (or of a replay's reader):
# about 3 s of a 30 FPS camera, and 1000 messages of anything else.
SENSOR_DEPTH = 100
MESSAGE_DEPTH = 1000
# The recording stops while this much is still free on the bag's file system: enough to
# write the last pending chunk (1 MiB plus one message), the index and metadata.yaml.
DISK_RESERVE_BYTES = 16 * 2**20
# Taken messages waiting for a disk that cannot keep up, at most; more are counted lost.
BACKLOG_BYTES = 512 * 2**20
SUBSCRIBER_WAIT_S = 5.0  # frames published before anyone listens are lost
# Our publisher matching a subscription does not mean that the subscriber has matched us
# yet: a best-effort reader drops what arrives before (frame 0 under load). Reliable
# readers ask for it again once matched.
DISCOVERY_SETTLE_S = 0.5
ACK_TIMEOUT_S = 10.0  # --fast and the end of a replay: wait this long for acknowledgements
# The replay CLI stays this long after its last message has been sent and acknowledged:
# a best-effort reader on a loaded machine lost the last frame when it exited at once.
EXIT_LINGER_S = 1.0
TOPIC_DISCOVERY_S = 5.0  # fer_ros_record: how long to look for the type of a named topic
# A replay's writers announce what they sent this often, so that readers acknowledge it
# at once (Fast DDS's default, 3 s, made --fast wait about that long per message).
REPLAY_HEARTBEAT = "<heartbeat_period><sec>0</sec><nanosec>10000000</nanosec></heartbeat_period>"


class BagError(RuntimeError):
    """A bag that cannot be recorded or replayed as asked; the message says why."""


def message_class(msgtype: str) -> type:
    """``pkg/msg/Name`` -> the generated Python class; BagError when not installed."""
    try:
        package, _, name = msgtype.split("/")
        return getattr(import_module(f"{package}.msg"), name)
    except (ValueError, ImportError, AttributeError) as error:
        raise BagError(f"message type {msgtype!r} is not installed here") from error


# --- message definitions ---------------------------------------------------------------------
def typestore_with(extra_msg_dirs: Iterable[Path] = ()) -> Any:
    """Kilted's types plus custom .msg definitions (e.g. fer_msgs/msg)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for msg_dir in extra_msg_dirs:
        _register_msg_dir(store, msg_dir)
    return store


def typestore_for(msgtypes: Iterable[str]) -> Any:
    """Kilted's types plus every one of ``msgtypes`` (and what they contain) that it
    lacks, read from the .msg files of their installed packages; BagError if missing."""
    store = get_typestore(Stores.ROS2_KILTED)
    pending, seen = list(msgtypes), set()
    while pending:
        msgtype = pending.pop()
        if msgtype in seen:
            continue
        seen.add(msgtype)
        if msgtype not in store.fielddefs:
            _register_msg_dir(store, msg_dir(msgtype.split("/")[0]))
            if msgtype not in store.fielddefs:
                raise BagError(f"no message definition for {msgtype}")
        pending += _referenced_types(store.fielddefs[msgtype][1])
    return store


def msg_dir(package: str) -> Path:
    """The ``msg`` folder of an installed interface package (the ament index, then this
    interpreter's prefix, then this checkout for fer_msgs)."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(package)))
    except Exception:  # not indexed (a venv without AMENT_PREFIX_PATH): look further
        pass
    candidates += [Path(sys.prefix) / "share" / package, Path(__file__).parents[2] / package]
    for share in candidates:
        if (share / "msg").is_dir():
            return share / "msg"
    raise BagError(f"the .msg files of {package} are not installed here")


def _register_msg_dir(store: Any, folder: Path) -> None:
    package = folder.parent.name
    types: dict[str, Any] = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    store.register(types)


def _referenced_types(fields: list[tuple[str, tuple[Any, Any]]]) -> list[str]:
    names = []
    for _, (kind, detail) in fields:
        if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            kind, detail = detail[0]
        if kind == Nodetype.NAME:
            names.append(detail)
    return names


# --- recording ---------------------------------------------------------------------------------
def record_qos(node: Node, topic: str, msgtype: str, graph_topic: bool) -> QoSProfile:
    """A deep history; best-effort for camera topics, reliable for the graph's others;
    for any other topic reliable only when every publisher is (a reliable reader would
    never match a best-effort publisher)."""
    if msgtype in SENSOR_TYPES:
        qos = copy.copy(qos_profile_sensor_data)
        qos.depth = SENSOR_DEPTH
        return qos
    publishers = node.get_publishers_info_by_topic(topic)
    reliable = graph_topic or (
        bool(publishers)
        and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    )
    reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=MESSAGE_DEPTH, reliability=reliability)


def graph_type(topic: str) -> str:
    """The type of the graph's topic ``topic`` in any namespace; "" for other topics."""
    known = {**GRAPH_TOPICS, **OTHER_GRAPH_TOPICS}
    return known.get(topic) or known.get(topic.rsplit("/", 1)[-1], "")


def absolute_topic(name: str, namespace: str = "") -> str:
    """``faces`` under ``/robot`` -> ``/robot/faces``; absolute names stay as they are."""
    return name if name.startswith("/") else f"{normalise_namespace(namespace)}/{name}"


class BagRecorder:
    """Subscribes to topics as raw CDR and writes them to a new bag.

    Each subscription keeps a deep history (:data:`SENSOR_DEPTH` camera messages,
    :data:`MESSAGE_DEPTH` others) and only queues what it takes; one thread of the
    recorder's own writes the bag (sqlite3 connections belong to one thread, and a slow
    disk must not hold up the subscriptions). A write that fails, or free space on the
    bag's file system falling to ``reserve_bytes``, stops the recording: ``failure`` says
    why in one line, and :meth:`close` still closes the bag with everything written so
    far. ``counts`` are the messages written per topic; ``lost`` those the middleware
    reported lost on the way (best-effort topics) or that arrived while
    :data:`BACKLOG_BYTES` were waiting for the disk.
    """

    def __init__(
        self,
        node: Node,
        path: Path,
        topics: Mapping[str, str],
        typestore: Any = None,
        storage: StoragePlugin = StoragePlugin.MCAP,
        qos: Mapping[str, QoSProfile] | None = None,
        reserve_bytes: int = DISK_RESERVE_BYTES,
    ) -> None:
        self.path = Path(path)
        store = typestore or typestore_for(topics.values())
        classes = {topic: message_class(msgtype) for topic, msgtype in topics.items()}
        self.counts: dict[str, int] = dict.fromkeys(topics, 0)
        self.lost: dict[str, int] = dict.fromkeys(topics, 0)
        self.failure = ""
        self.taken = 0  # messages handed over by the subscriptions, lost ones included
        self._reserve = reserve_bytes
        self._condition = threading.Condition()
        self._pending: deque[tuple[str, int, bytes] | None] = deque()
        self._backlog_bytes = 0
        self._closed = False
        self._close_error: BaseException | None = None
        opened: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._write_loop, args=(topics, store, storage, opened), daemon=True
        )
        self._thread.start()
        error = opened.get()
        if error is not None:
            self._thread.join()
            raise error
        self._node = node
        # Taken on a thread of the recorder's own, not by the node's executor
        # (fer_ros.nodes.entity_thread): camera-rate topics cost the executor a wake-up
        # each, and close() may then destroy the subscriptions from any thread.
        group = NotOnExecutor()
        self._subscriptions = []
        for topic, msgtype in topics.items():
            events = SubscriptionEventCallbacks(
                message_lost=lambda info, t=topic: self._count_lost(t, info.total_count_change)
            )
            profile = (qos or {}).get(topic)
            profile = profile or record_qos(node, topic, msgtype, graph_type(topic) == msgtype)
            self._subscriptions.append(
                node.create_subscription(
                    classes[topic],
                    topic,
                    lambda data, t=topic: self._take(t, data),
                    profile,
                    raw=True,
                    event_callbacks=events,
                    callback_group=group,
                )
            )
        self._listener = EntityThread(node, self._subscriptions, "bag.record", self._failed)
        self._listener.start()

    def _failed(self, error: Exception) -> None:
        with self._condition:
            self.failure = self.failure or f"recording {self.path} stopped: {error}"

    @property
    def recording(self) -> bool:
        return not self._closed and not self.failure

    def _count_lost(self, topic: str, lost: int) -> None:
        with self._condition:
            self.lost[topic] += lost

    def _take(self, topic: str, data: bytes) -> None:
        with self._condition:
            self.taken += 1
            if self._closed or self.failure:
                return
            if self._backlog_bytes > BACKLOG_BYTES:
                self.lost[topic] += 1
                return
            self._pending.append((topic, time.time_ns(), data))
            self._backlog_bytes += len(data)
            self._condition.notify()

    def _write_loop(
        self,
        topics: Mapping[str, str],
        store: Any,
        storage: StoragePlugin,
        opened: queue.SimpleQueue[BaseException | None],
    ) -> None:
        try:
            writer = open_writer(self.path, storage)
            connections = {
                t: writer.add_connection(t, m, typestore=store) for t, m in topics.items()
            }
        except BaseException as error:  # handed to __init__, which raises it
            opened.put(error)
            return
        opened.put(None)
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending)
                item = self._pending.popleft()
                if item is not None:
                    self._backlog_bytes -= len(item[2])
            if item is None:
                break
            if not self.failure:
                self._write(writer, connections, *item)
        try:
            writer.close()
        except BaseException as error:  # raised by close()
            self._close_error = error

    def _write(
        self, writer: Writer, connections: dict[str, Any], topic: str, stamp: int, data: bytes
    ) -> None:
        try:
            free = free_bytes(self.path)
            if free - len(data) < self._reserve:
                self.failure = (
                    f"disk full: {free / 2**20:.0f} MiB left on the file system of "
                    f"{self.path}, the last {self._reserve / 2**20:.0f} MiB are kept to "
                    "close the bag"
                )
                return
            writer.write(connections[topic], stamp, data)
        except Exception as error:  # OSError above all; the recording stops either way
            reason = error.strerror if isinstance(error, OSError) else error
            self.failure = f"cannot write to {self.path}: {reason}"
            return
        self.counts[topic] += 1

    def close(self) -> None:
        """Stop recording, write what was taken and close the bag (index and
        metadata.yaml written); BagError when even that fails."""
        self._listener.stop()
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []
        with self._condition:
            if self._closed:
                return
            self._closed = True
            self._pending.append(None)
            self._condition.notify()
        self._thread.join()
        error = self._close_error
        if error is not None:
            reason = error.strerror if isinstance(error, OSError) else error
            raise BagError(f"cannot close {self.path}: {reason}") from error


def open_writer(path: Path, storage: StoragePlugin) -> Writer:
    """A new bag at ``path``; BagError (one line) when it exists or cannot be created."""
    try:
        writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=storage)
        writer.open()
    except WriterError as error:
        raise BagError(f"cannot record to {path}: it exists already (never overwritten)") from error
    except OSError as error:
        raise BagError(f"cannot record to {path}: {error.strerror or error}") from error
    return writer


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


# --- replay ------------------------------------------------------------------------------------
def replay_qos(node: Node, topic: str, msgtype: str) -> QoSProfile:
    """Reliable, so that reliable readers get every message and best-effort ones (camera
    subscribers) still match; transient-local when every subscriber is, so that late
    joiners get the history as from the original publisher."""
    depth = SENSOR_DEPTH if msgtype in SENSOR_TYPES else MESSAGE_DEPTH
    subscribers = node.get_subscriptions_info_by_topic(topic)
    durable = bool(subscribers) and all(
        s.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for s in subscribers
    )
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if durable else DurabilityPolicy.VOLATILE,
    )


def open_bag(path: Path) -> Reader:
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:
        raise BagError(f"cannot open bag {path}: {error}") from error
    return reader


def checked_topics(
    reader: Reader, path: Path, expected: Mapping[str, str | None]
) -> dict[str, str]:
    """``expected`` (topic -> type, None: as recorded) checked against the bag."""
    recorded = {c.topic: c.msgtype for c in reader.connections}
    topics = {}
    for topic, msgtype in expected.items():
        if topic not in recorded:
            raise BagError(f"{path} has no topic {topic} (it has: {', '.join(recorded)})")
        if msgtype is not None and recorded[topic] != msgtype:
            raise BagError(f"{topic} in {path} is {recorded[topic]}, expected {msgtype}")
        topics[topic] = recorded[topic]
    return topics


def replay(
    node: Node,
    path: Path,
    expected: Mapping[str, str | None],
    rate: float = 1.0,
    clock: bool = False,
    remap: Mapping[str, str] | None = None,
    fast: bool = False,
) -> dict[str, int]:
    """Publish the bag's ``expected`` topics at the recorded timing (``rate`` times as
    fast), or with ``fast`` without waiting: each message then waits until every
    reliable subscriber has acknowledged the one before. Returns counts per topic.

    ``expected`` maps topic -> message type (None: the recorded one); a topic that is
    missing from the bag or recorded with another type raises :class:`BagError` before
    anything is published. ``remap`` publishes a recorded topic under another name (a
    namespaced graph's). Publishing starts once every subscription the graph lists has
    matched, and the function returns once every message has been acknowledged.
    """
    remap = remap or {}
    if rate <= 0:
        raise BagError(f"rate must be above 0, not {rate:g}")
    reader = open_bag(path)
    try:
        topics = checked_topics(reader, path, expected)
        classes = {topic: message_class(msgtype) for topic, msgtype in topics.items()}
        publishers = {}
        for topic, msgtype in topics.items():
            name = remap.get(topic, topic)
            qos = replay_qos(node, name, msgtype)
            publishers[topic] = node.create_publisher(classes[topic], name, qos)
        wait_for_subscribers(node, publishers.values(), SUBSCRIBER_WAIT_S)
        clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            clock_pub = node.create_publisher(Clock, "/clock", 10)
        counts = dict.fromkeys(topics, 0)
        connections = [c for c in reader.connections if c.topic in topics]
        start_wall = time.monotonic()
        first_ns: int | None = None
        ack = Duration(seconds=ACK_TIMEOUT_S)
        for connection, timestamp, data in reader.messages(connections=connections):
            first_ns = timestamp if first_ns is None else first_ns
            if not fast:
                delay = (timestamp - first_ns) / 1e9 / rate - (time.monotonic() - start_wall)
                if delay > 0:
                    time.sleep(delay)
            if clock_pub is not None:
                clock_pub.publish(clock_message(timestamp))
            publisher = publishers[connection.topic]
            publisher.publish(bytes(data))
            if fast:
                publisher.wait_for_all_acked(ack)
            counts[connection.topic] += 1
        drain(publishers.values())
        return counts
    finally:
        reader.close()


def use_replay_fastdds_profile() -> None:
    """This process's participants: the Fast DDS profile chosen (the project's, see
    ``use_fastdds_profile``, or the user's), plus, unless it has writer settings of its
    own, writers that send heartbeats every 10 ms. Call before ``rclpy.init``."""
    chosen = Path(os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or fastdds_profile())
    text = chosen.read_text(encoding="utf-8")
    if "<data_writer" in text or "</profiles>" not in text:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(chosen)
        return
    writer = (
        '<data_writer profile_name="fer_ros_replay_writer" is_default_profile="true">'
        f"<times>{REPLAY_HEARTBEAT}</times></data_writer>"
    )
    head, _, tail = text.rpartition("</profiles>")
    file = tempfile.NamedTemporaryFile("w", suffix=".xml", prefix="fer_ros_replay_", delete=False)
    with file:
        file.write(f"{head}{writer}</profiles>{tail}")
    atexit.register(os.unlink, file.name)
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = file.name


def clock_message(timestamp_ns: int) -> Any:
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    return Clock(clock=Time(sec=timestamp_ns // 10**9, nanosec=timestamp_ns % 10**9))


def wait_for_subscribers(node: Node, publishers: Iterable[Any], timeout_s: float) -> None:
    """Until each publisher has matched every subscription the graph lists on its topic,
    then, where a subscriber is best-effort, :data:`DISCOVERY_SETTLE_S` for that
    subscriber to match us too."""
    publishers = list(publishers)

    def unmatched() -> list[Any]:
        return [
            p
            for p in publishers
            if p.get_subscription_count() == 0
            or p.get_subscription_count() < node.count_subscribers(p.topic_name)
        ]

    deadline = time.monotonic() + timeout_s
    while unmatched() and time.monotonic() < deadline:
        time.sleep(0.02)
    idle = [p.topic_name for p in unmatched()]
    if idle:
        node.get_logger().warning(
            f"not every subscriber of {', '.join(idle)} matched (none, or incompatible "
            "QoS); replaying anyway"
        )
    best_effort = any(
        s.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        for p in publishers
        for s in node.get_subscriptions_info_by_topic(p.topic_name)
    )
    if best_effort:
        time.sleep(DISCOVERY_SETTLE_S)


def drain(publishers: Iterable[Any]) -> bool:
    """Wait until every message is acknowledged by reliable subscribers and sent to the
    others (publishing is asynchronous); False if that took over ACK_TIMEOUT_S."""
    return all(p.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S)) for p in publishers)
