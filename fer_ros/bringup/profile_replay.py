"""A bag's camera frames through one or two profiles, frame for frame, compared.

``fer_ros_replay BAG --profile P [--profile Q] --report DIR [--min-agreement A]``

Each profile's stages (detection, spike encoding, inference; no camera) run in this
process exactly as ``fer_ros_bringup`` starts them, on a ROS graph of their own
(``ROS_AUTOMATIC_DISCOVERY_RANGE=OFF``: a robot on the same domain neither sees nor
disturbs it), with deep input queues. Frames are published one at a time, the next
once the previous one's ExpressionArray is back, so no stage ever skips a frame and the
time to that answer is the graph's latency for the frame. The labels are compared
(:mod:`fer_ros.bringup.bag_report`): the second profile against the first, or one
profile against the expressions recorded in the bag; the exit code is 1 when that
agreement is below ``--min-agreement``, 2 when the bag or a profile cannot be run.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fer_ros.bringup.bag_report import (
    FaceLabel,
    FrameResult,
    Run,
    passed,
    write_report,
)
from fer_ros.bringup.bags import BagError, open_bag

NAMESPACE = "/fer_ros_replay"
# The stages' input_queue_depth: with one frame in flight a queue of one would do; deep,
# so that nothing is skipped even if a stage publishes more than once per input.
QUEUE_DEPTH = 100
FRAME_TIMEOUT_S = 60.0  # a first frame may wait for a runtime's warm-up
TIMEOUTS_IN_A_ROW = 3  # then the profile's graph is taken for dead
TELEMETRY_WAIT_S = 2.0
IMAGE_TYPE = "sensor_msgs/msg/Image"
EXPRESSIONS_TYPE = "fer_msgs/msg/ExpressionArray"
TELEMETRY_TYPE = "fer_msgs/msg/Telemetry"


def stamp_ns(data: bytes) -> int:
    """The header stamp of a serialized message that starts with a std_msgs/Header."""
    order = "<" if data[1] == 1 else ">"  # CDR encapsulation: 0x0001 little endian
    sec, nanosec = struct.unpack_from(f"{order}iI", data, 4)
    return sec * 10**9 + nanosec


@dataclass
class BagFrames:
    topic: str
    stamps: list[int]  # header stamps, in bag order (the frame index)
    recorded: Run | None  # the expressions recorded with them, if any


def image_topic_of(topics: dict[str, str], wanted: str, path: Path) -> str:
    images = [t for t, msgtype in topics.items() if msgtype == IMAGE_TYPE]
    if wanted:
        if topics.get(wanted) != IMAGE_TYPE:
            raise BagError(
                f"{path} has no {IMAGE_TYPE} topic {wanted} (it has: {', '.join(images)})"
            )
        return wanted
    raw = [t for t in images if t.endswith("/image_raw")]
    if len(images) == 1 or len(raw) == 1:
        return images[0] if len(images) == 1 else raw[0]
    if not images:
        raise BagError(f"{path} has no camera images ({IMAGE_TYPE})")
    raise BagError(f"{path} has several image topics ({', '.join(images)}): choose --image-topic")


def bag_frames(path: Path, wanted_topic: str = "") -> BagFrames:
    """The bag's camera frames and, if recorded beside them, the live graph's answers."""
    from rclpy.serialization import deserialize_message

    from fer_msgs.msg import ExpressionArray, Telemetry

    reader = open_bag(path)
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        topic = image_topic_of(topics, wanted_topic, path)
        namespace = topic.rsplit("/", 1)[0]
        images = [c for c in reader.connections if c.topic == topic]
        stamps = [stamp_ns(bytes(data)) for _, _, data in reader.messages(connections=images)]
        if not stamps:
            raise BagError(f"{topic} in {path} has no frame")
        expressions = f"{namespace}/expressions"
        if topics.get(expressions) != EXPRESSIONS_TYPE:
            candidates = [t for t, msgtype in topics.items() if msgtype == EXPRESSIONS_TYPE]
            expressions = candidates[0] if len(candidates) == 1 else ""
        if not expressions:
            return BagFrames(topic, stamps, None)
        index = {}
        for i, stamp in enumerate(stamps):
            index.setdefault(stamp, i)
        telemetry_topic = f"{namespace}/telemetry"
        wanted = [c for c in reader.connections if c.topic in (expressions, telemetry_topic)]
        arrays, telemetry = {}, {}
        for connection, _, data in reader.messages(connections=wanted):
            if connection.msgtype == EXPRESSIONS_TYPE and connection.topic == expressions:
                msg = deserialize_message(bytes(data), ExpressionArray)
                arrays.setdefault(index.get(_stamp(msg.header)), msg)
            elif connection.msgtype == TELEMETRY_TYPE:
                msg = deserialize_message(bytes(data), Telemetry)
                telemetry.setdefault(index.get(_stamp(msg.header)), msg)
        arrays.pop(None, None)  # answers to frames that are not in the bag
        recorded = Run("recorded", f"{expressions} as recorded")
        for i, array in arrays.items():
            t = telemetry.get(i)
            recorded.frames[i] = FrameResult(
                _faces(array),
                t.end_to_end_ms if t else math.nan,
                t.inference_ms if t else math.nan,
            )
        if arrays:
            first = next(iter(arrays.values()))
            recorded.description = f"{expressions}: {first.model_id} ({first.accelerator})"
        return BagFrames(topic, stamps, recorded if arrays else None)
    finally:
        reader.close()


def _stamp(header: Any) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def _faces(array: Any) -> tuple[FaceLabel, ...]:
    return tuple(
        FaceLabel(
            e.face_id,
            (e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height),
            e.label,
            float(e.confidence),
        )
        for e in array.expressions
    )


class _Feeder:
    """Publishes frames into a graph in a namespace and collects its answers."""

    def __init__(self, namespace: str) -> None:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from fer_msgs.msg import ExpressionArray, Telemetry

        self.node = rclpy.create_node("feeder", namespace=namespace)
        self._condition = threading.Condition()
        self._answers: dict[int, deque[tuple[float, Any]]] = defaultdict(deque)
        self.telemetry: dict[int, Any] = {}
        reliable = QoSProfile(depth=QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        # one frame in flight: a short history (images are large)
        self.images = self.node.create_publisher(Image, "image_raw", QoSProfile(depth=2))
        self.node.create_subscription(ExpressionArray, "expressions", self._on_answer, reliable)
        self.node.create_subscription(Telemetry, "telemetry", self._on_telemetry, reliable)

    def _on_answer(self, msg: Any) -> None:
        with self._condition:
            self._answers[_stamp(msg.header)].append((time.perf_counter(), msg))
            self._condition.notify_all()

    def _on_telemetry(self, msg: Any) -> None:
        with self._condition:
            self.telemetry.setdefault(_stamp(msg.header), msg)
            self._condition.notify_all()

    def answer(self, stamp: int, timeout_s: float) -> tuple[float, Any] | None:
        with self._condition:
            if self._condition.wait_for(lambda: self._answers[stamp], timeout_s):
                return self._answers[stamp].popleft()
        return None

    def wait_for_telemetry(self, stamps: set[int], timeout_s: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: stamps <= self.telemetry.keys(), timeout_s)


def run_name(profile: str, taken: list[str]) -> str:
    name = Path(profile).stem if profile.endswith((".yaml", ".yml")) else profile
    return name if name not in taken else f"{name}_{taken.count(name) + 1}"


def run_profile(path: Path, frames: BagFrames, profile: str, name: str, index: int) -> Run:
    """The bag's frames through ``profile``'s graph, one at a time (rclpy initialised)."""
    from fer_ros.bringup.graph_plan import graph_plan
    from fer_ros.bringup.local_graph import LocalGraph

    namespace = f"{NAMESPACE}/run{index}"
    plan = [
        replace(n, overrides={**n.overrides, "input_queue_depth": QUEUE_DEPTH})
        for n in graph_plan(profile, "none", namespace)
    ]
    feeder = _Feeder(namespace)
    graph = LocalGraph(plan, tools=[feeder.node])
    run = Run(name, profile)
    started = time.monotonic()
    try:
        graph.bring_up()
        deadline = time.monotonic() + 10.0
        while feeder.images.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        reader = open_bag(path)
        misses = 0
        try:
            images = [c for c in reader.connections if c.topic == frames.topic]
            for i, (_, _, data) in enumerate(reader.messages(connections=images)):
                sent = time.perf_counter()
                feeder.images.publish(bytes(data))
                answer = feeder.answer(frames.stamps[i], FRAME_TIMEOUT_S)
                if answer is None:
                    misses += 1
                    if misses >= TIMEOUTS_IN_A_ROW:
                        raise BagError(
                            f"profile {profile} answered none of {misses} frames in a row "
                            f"(waited {FRAME_TIMEOUT_S:g} s for each)"
                        )
                    continue
                misses = 0
                arrival, msg = answer
                run.frames[i] = FrameResult(_faces(msg), (arrival - sent) * 1000.0)
                if i == 0:
                    run.description = f"{profile}: {msg.model_id}"
        finally:
            reader.close()
        labelled = {frames.stamps[i] for i, r in run.frames.items() if r.faces}
        feeder.wait_for_telemetry(labelled, TELEMETRY_WAIT_S)
        for i, result in run.frames.items():
            t = feeder.telemetry.get(frames.stamps[i])
            if t is not None:
                run.frames[i] = replace(result, inference_ms=t.inference_ms)
        device = next(iter(feeder.telemetry.values()), None)
        if device is not None:
            fallback = " (fallback)" if device.fallback else ""
            run.description += f" on {device.device}{fallback} ({device.runtime})"
        dropped = sum(node.inputs.dropped for node in graph.nodes.values())
        run.notes = f"{time.monotonic() - started:.0f} s; inputs dropped: {dropped}"
        return run
    finally:
        graph.close()


def report_main(
    path: Path, profiles: list[str], folder: Path, min_agreement: float, image_topic: str = ""
) -> int:
    """The whole ``fer_ros_replay --profile ... --report DIR`` run; its exit code."""
    # Before rclpy starts: the profiles' graphs are this process's alone.
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "OFF"
    import rclpy

    from fer_ros.bringup.lifecycle_manager import LifecycleError
    from fer_ros.core.allocator import keep_freed_memory
    from fer_ros.core.profiles import use_fastdds_profile
    from fer_ros.core.threads import apply_thread_budget

    started = time.monotonic()
    try:
        frames = bag_frames(path, image_topic)
    except BagError as error:
        print(f"fer_ros_replay: {error}", file=sys.stderr, flush=True)
        return 2
    use_fastdds_profile()
    apply_thread_budget()
    keep_freed_memory()
    rclpy.init()
    runs: list[Run] = []
    try:
        for index, profile in enumerate(profiles, 1):
            name = run_name(profile, [r.name for r in runs])
            print(f"fer_ros_replay: {len(frames.stamps)} frames through {profile}", flush=True)
            runs.append(run_profile(path, frames, profile, name, index))
    except (BagError, LifecycleError, ValueError) as error:  # ProfileError is a ValueError
        print(f"fer_ros_replay: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        rclpy.try_shutdown()
    everything = ([frames.recorded] if frames.recorded else []) + runs
    if len(runs) == 2:
        primary: tuple[Run, Run] | None = (runs[0], runs[1])
    else:
        primary = (frames.recorded, runs[0]) if frames.recorded else None
    span_s = (frames.stamps[-1] - frames.stamps[0]) / 1e9
    title = (
        f"Replay of {path} ({len(frames.stamps)} frames of {frames.topic}, {span_s:.1f} s) "
        f"through {', '.join(profiles)}"
    )
    main = write_report(folder, title, frames.stamps, everything, primary, min_agreement)
    elapsed = time.monotonic() - started
    if main is None:
        print(f"fer_ros_replay: nothing to compare; report in {folder / 'report.md'}", flush=True)
    else:
        print(
            f"fer_ros_replay: {main.second} vs {main.first}: agreement "
            f"{main.agreement:.3f} ({main.agreeing} of {main.faces} faces on {main.frames} "
            f"frames); report in {folder / 'report.md'} ({elapsed:.0f} s)",
            flush=True,
        )
    if not passed(main, min_agreement):
        why = "nothing to compare" if main is None else f"{main.agreement:.3f}"
        print(
            f"fer_ros_replay: agreement below --min-agreement {min_agreement:g}: {why}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0
