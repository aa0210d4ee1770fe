"""``fer_ros_record`` and ``fer_ros_replay``: the command lines over :mod:`.bags`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.rosbag2 import StoragePlugin

# What fer_ros_record records by default: the graph's topics, relative to --namespace
# (/diagnostics is absolute), with their types. Camera topics are published best-effort.
from fer_ros.bringup.bags import (
    EXIT_LINGER_S,
    GRAPH_TOPICS,
    TOPIC_DISCOVERY_S,
    BagError,
    BagRecorder,
    absolute_topic,
    graph_type,
    replay,
    use_replay_fastdds_profile,
)
from fer_ros.bringup.graph_plan import normalise_namespace
from fer_ros.core.profiles import use_fastdds_profile

# At most this long after Ctrl-C taking messages that had already arrived (a graph that
# still publishes would otherwise keep the recorder from closing).
DRAIN_LIMIT_S = 2.0


def record_topics(node: Node, names: list[str], namespace: str) -> dict[str, str]:
    """``NAME`` or ``NAME=TYPE`` arguments -> absolute topic -> type. A name that is not one
    of the graph's gets the type its publishers have (waits for them a while)."""
    topics: dict[str, str] = {}
    for item in names or list(GRAPH_TOPICS):
        name, _, msgtype = item.partition("=")
        topics[absolute_topic(name, namespace)] = msgtype or graph_type(name)
    unknown = [t for t, msgtype in topics.items() if not msgtype]
    deadline = time.monotonic() + TOPIC_DISCOVERY_S
    while unknown and time.monotonic() < deadline:
        graph = dict(node.get_topic_names_and_types())
        for topic in [t for t in unknown if graph.get(t)]:
            topics[topic] = graph[topic][0]
            unknown.remove(topic)
        time.sleep(0.1)
    if unknown:
        raise BagError(
            f"type of {', '.join(unknown)} unknown: nothing publishes it; give it as "
            "TOPIC=pkg/msg/Type"
        )
    return topics


def take_what_arrived(executor: SingleThreadedExecutor, recorder: BagRecorder) -> None:
    """Take the messages already delivered to the recorder's readers: what was sent
    before Ctrl-C belongs in the bag, even when this process was starved of CPU."""
    deadline = time.monotonic() + DRAIN_LIMIT_S
    while time.monotonic() < deadline:
        taken = recorder.taken
        executor.spin_once(timeout_sec=0.05)
        if recorder.taken == taken:
            return


def record_main(argv: list[str] | None = None) -> int:
    """``fer_ros_record``: record the graph's topics into a new bag."""
    parser = argparse.ArgumentParser(
        prog="fer_ros_record",
        description="Record the graph's topics into a new rosbag2 (mcap or sqlite3) until "
        "Ctrl-C, SIGTERM or --duration; the bag is closed cleanly either way.",
    )
    parser.add_argument("bag", type=Path, help="bag folder to create (never overwritten)")
    parser.add_argument(
        "--topics",
        nargs="+",
        default=[],
        metavar="TOPIC[=TYPE]",
        help="topics to record, relative to --namespace (default: "
        f"{' '.join(GRAPH_TOPICS)}); TYPE where it is not one of the graph's topics and "
        "nothing publishes it yet",
    )
    parser.add_argument("--namespace", default="", help="the graph's namespace (/robot)")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: at Ctrl-C)"
    )
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(remove_ros_args(["fer_ros_record", *argv])[1:])
    use_fastdds_profile()
    stop = threading.Event()
    # Our own handlers: the bag must be closed after a signal, not the process torn down.
    rclpy.init(args=["fer_ros_record", *argv], signal_handler_options=SignalHandlerOptions.NO)
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    node = rclpy.create_node("fer_ros_record")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    status = 0
    try:
        topics = record_topics(node, args.topics, args.namespace)
        storage = StoragePlugin.MCAP if args.storage == "mcap" else StoragePlugin.SQLITE3
        recorder = BagRecorder(node, args.bag, topics, storage=storage)
        print(
            f"fer_ros_record: recording {', '.join(topics)} to {args.bag} (Ctrl-C stops)",
            flush=True,
        )
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        try:
            while not stop.is_set() and recorder.recording:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                executor.spin_once(timeout_sec=0.1)
        finally:  # whatever ended the loop, the bag is closed
            for sig in previous:  # a second Ctrl-C must not interrupt closing the bag
                signal.signal(sig, signal.SIG_IGN)
            take_what_arrived(executor, recorder)
            recorder.close()
        written = sum(recorder.counts.values())
        if recorder.failure:
            print(
                f"fer_ros_record: {recorder.failure}; stopped after {written} messages, "
                f"{args.bag} is closed and readable",
                file=sys.stderr,
                flush=True,
            )
            status = 1
        lost = {t: n for t, n in recorder.lost.items() if n}
        print(
            ", ".join(f"{t}: {n} messages" for t, n in recorder.counts.items())
            + (f"; lost on the way: {lost}" if lost else ""),
            flush=True,
        )
    except BagError as error:
        print(f"fer_ros_record: {error}", file=sys.stderr, flush=True)
        status = 2
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return status


def replay_main(argv: list[str] | None = None) -> int:
    """``fer_ros_replay``: publish a bag's topics, or run its frames through profiles."""
    parser = argparse.ArgumentParser(
        prog="fer_ros_replay",
        description="Publish a bag's topics at the recorded timing or as fast as the "
        "subscribers take them; with --profile, run its frames through one or two "
        "profiles and report how the answers compare.",
    )
    parser.add_argument("bag", type=Path)
    parser.add_argument(
        "--topics",
        nargs="+",
        default=[],
        metavar="TOPIC",
        help="recorded topics to publish, with their recorded types (default: /image_raw)",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC=TYPE",
        help="a recorded topic and the type it must have",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="times the recorded speed")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="do not wait for the recorded timing: each message waits only until every "
        "reliable subscriber has acknowledged the one before (best-effort subscribers, "
        "such as a graph's camera input, can then miss messages: use --profile for that)",
    )
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
    report = parser.add_argument_group("comparing profiles on the bag's frames")
    report.add_argument(
        "--profile",
        action="append",
        default=[],
        help="run the bag's frames through this profile (name or YAML; twice: compare two)",
    )
    report.add_argument("--report", type=Path, help="folder for report.md, frames.csv, ...")
    report.add_argument(
        "--min-agreement",
        type=float,
        default=0.0,
        help="exit with 1 when the agreement (second profile vs first, or first vs the "
        "recorded expressions) is below this fraction",
    )
    report.add_argument(
        "--image-topic", default="", help="the bag's camera topic (default: its Image topic)"
    )
    # ROS's own remapping works too: ... --ros-args -r /image_raw:=/robot/image_raw
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(remove_ros_args(["fer_ros_replay", *argv])[1:])
    if args.profile or args.report:
        if not args.profile or not args.report or len(args.profile) > 2:
            parser.error("--report DIR takes one or two --profile")
        if not 0.0 <= args.min_agreement <= 1.0:
            parser.error("--min-agreement is a fraction from 0 to 1")
        from fer_ros.bringup.profile_replay import report_main

        return report_main(
            args.bag, args.profile, args.report, args.min_agreement, args.image_topic
        )
    if args.rate <= 0:
        parser.error("--rate must be above 0 (--fast: as fast as the subscribers take them)")
    if any("=" not in pair for pair in (*args.topic, *args.remap)):
        parser.error("--topic takes TOPIC=TYPE and --remap RECORDED=PUBLISHED")
    expected: dict[str, str | None] = dict.fromkeys(args.topics)
    expected |= dict(pair.split("=", 1) for pair in args.topic)
    expected = expected or {"/image_raw": "sensor_msgs/msg/Image"}
    prefix = normalise_namespace(args.namespace)
    remap = {topic: prefix + topic for topic in expected} if prefix else {}
    remap |= dict(pair.split("=", 1) for pair in args.remap)
    use_replay_fastdds_profile()
    rclpy.init(args=["fer_ros_replay", *argv])
    node = rclpy.create_node("fer_ros_replay")
    try:
        counts = replay(node, args.bag, expected, args.rate, args.clock, remap, args.fast)
        print(", ".join(f"{t}: {n} messages" for t, n in counts.items()), flush=True)
        # Sent is not yet taken: a busy best-effort reader still needs our shared memory.
        time.sleep(EXIT_LINGER_S)
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
