"""Whether fer_ros_record loses messages, and what recording costs a running graph.

    .venv/bin/python benchmarks/bench_record.py [--profile loihi] [--seconds 60] [--fps 30]

Runs the profile's graph with the behaviour nodes in this process, as fer_ros_bringup
starts it, on the looping demo at --fps, beside a sink that keeps the header stamp of
every message the graph publishes (in this process, so it gets every one). First
--seconds without a recorder, then --seconds with fer_ros_record (default topics, mcap)
in a process of its own. Prints, per topic, the messages in the bag against the graph's
own between the bag's first and last stamp of that topic (equal: nothing lost), the
inputs each stage dropped in each window, and the CPU time of the graph and of the
recorder. Not a test: run it on a quiet machine, with a ROS_DOMAIN_ID of its own.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader

from fer_ros.bringup.bags import GRAPH_TOPICS, SENSOR_TYPES, absolute_topic, message_class
from fer_ros.bringup.graph_plan import graph_plan
from fer_ros.bringup.local_graph import LocalGraph
from fer_ros.bringup.profile_replay import stamp_ns
from fer_ros.core.profiles import use_fastdds_profile
from fer_ros.core.threads import apply_thread_budget

WARM_UP_S = 5.0
DISCOVERY_S = 3.0  # after the recorder says it records, before its window starts
RECORD = "import sys; from fer_ros.bringup.bag_cli import record_main; sys.exit(record_main())"
TICKS = os.sysconf("SC_CLK_TCK")


class StampSink:
    """Header stamps of everything the graph publishes on the recorded topics."""

    def __init__(self) -> None:
        self.node = rclpy.create_node("bench_record_sink")
        self.lock = threading.Lock()
        self.stamps: dict[str, list[int]] = {}
        for name, msgtype in GRAPH_TOPICS.items():
            topic = absolute_topic(name)
            best_effort = msgtype in SENSOR_TYPES
            reliability = (
                ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
            )
            self.stamps[topic] = []
            self.node.create_subscription(
                message_class(msgtype),
                topic,
                lambda data, t=topic: self._keep(t, data),
                QoSProfile(depth=1000, reliability=reliability),
                raw=True,
            )

    def _keep(self, topic: str, data: bytes) -> None:
        with self.lock:
            self.stamps[topic].append(stamp_ns(data))


def dropped(graph: LocalGraph) -> dict[str, int]:
    return {name: node.inputs.dropped for name, node in graph.nodes.items() if node.inputs.received}


def cpu_s(pid: int | None = None) -> float:
    """User and system CPU seconds of a process (this one by default)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="loihi")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--keep", type=Path, help="keep the bag here instead of a temporary one")
    args = parser.parse_args()
    use_fastdds_profile()
    budget = apply_thread_budget()
    rclpy.init()
    camera = {"loop": True, "fps": float(args.fps)}
    plan = [
        replace(n, overrides={**n.overrides, **camera}) if n.name == "camera" else n
        for n in graph_plan(args.profile, behaviour=True)
    ]
    sink = StampSink()
    graph = LocalGraph(plan, tools=[sink.node])
    folder = tempfile.TemporaryDirectory(prefix="bench_record_")
    bag = args.keep or Path(folder.name) / "bag"
    windows: dict[str, dict] = {}
    recorder = None
    try:
        graph.bring_up()
        time.sleep(WARM_UP_S)
        for name in ("without recorder", "with fer_ros_record"):
            if recorder is None and name != "without recorder":
                recorder = subprocess.Popen(
                    [sys.executable, "-c", RECORD, str(bag)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                print(recorder.stdout.readline().strip(), flush=True)
                time.sleep(DISCOVERY_S)
            before = dropped(graph), graph.nodes["camera"].frames_published, cpu_s()
            recorder_before = cpu_s(recorder.pid) if recorder else 0.0
            start = time.monotonic()
            time.sleep(args.seconds)
            elapsed = time.monotonic() - start
            after = dropped(graph), graph.nodes["camera"].frames_published, cpu_s()
            windows[name] = {
                "seconds": elapsed,
                "frames": after[1] - before[1],
                "dropped": {k: v - before[0].get(k, 0) for k, v in after[0].items()},
                "graph_cpu": (after[2] - before[2]) / elapsed,
                "recorder_cpu": (cpu_s(recorder.pid) - recorder_before) / elapsed
                if recorder
                else 0.0,
            }
        recorder.send_signal(signal.SIGINT)
        out, err = recorder.communicate(timeout=120)
    finally:
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
        graph.close()
        rclpy.try_shutdown()

    print(f"profile {args.profile} with behaviour nodes, looped demo at {args.fps:g} FPS; {budget}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the end")
    for name, w in windows.items():
        drops = ", ".join(f"{k} {v}" for k, v in w["dropped"].items())
        print(
            f"{name:<20} {w['seconds']:5.1f} s, camera {w['frames'] / w['seconds']:5.1f} FPS, "
            f"graph CPU {w['graph_cpu']:.2f} cores, recorder CPU {w['recorder_cpu']:.2f} cores; "
            f"inputs dropped: {drops}"
        )
    print(f"recorder: rc {recorder.returncode}; {out.strip().splitlines()[-1]} {err.strip()}")
    with Reader(bag) as reader:
        in_bag = {topic: Counter() for topic in sink.stamps}
        for connection, _, data in reader.messages():
            in_bag[connection.topic][stamp_ns(bytes(data))] += 1
        size_mb = sum(f.stat().st_size for f in Path(bag).iterdir()) / 1e6
    print(f"bag: {size_mb:.0f} MB")
    print("topic                      in bag   graph's own in the bag's span   missing  extra")
    for topic, stamps in sink.stamps.items():
        recorded = in_bag[topic]
        if not recorded:
            print(f"{topic:<25} {0:7d}   (nothing; the graph published {len(stamps)} in all)")
            continue
        low, high = min(recorded), max(recorded)
        own = Counter(s for s in stamps if low <= s <= high)
        missing, extra = sum((own - recorded).values()), sum((recorded - own).values())
        total = sum(recorded.values())
        print(f"{topic:<25} {total:7d}   {sum(own.values()):29d}   {missing:7d}  {extra:5d}")
    folder.cleanup()


if __name__ == "__main__":
    main()
