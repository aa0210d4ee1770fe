"""Per-stage latency, drops and sustained end-to-end throughput of a profile's whole graph.

    .venv/bin/python benchmarks/bench_pipeline.py [--profile cpu] [--seconds 60] [--fps 30]
                                                  [--executor single|multi] [--processes]

Runs the real graph exactly as fer_ros_bringup starts it (same plan, same executors; or
one process per node with ``--processes``) on the looping demo video and prints measured
figures: camera rate, result rate, per-stage latency p50/p95, end-to-end latency (frame
stamp to ExpressionArray) and how many inputs each stage dropped (from its
/diagnostics). Not a test: run it on a quiet machine (other loads on 2 cores change the
figures).
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
from dataclasses import replace

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.time import Time

from fer_msgs.msg import ExpressionArray, FaceArray, Telemetry
from fer_ros.bringup.graph_plan import NodePlan, graph_plan
from fer_ros.bringup.local_graph import LocalGraph
from fer_ros.bringup.main import spawn_node
from fer_ros.core.profiles import use_fastdds_profile
from fer_ros.nodes.executors import DEFAULT_EXECUTOR, EXECUTORS

WARM_UP_S = 3.0


def percentiles(values: list[float]) -> str:
    if not values:
        return "      -        -"
    return f"{np.percentile(values, 50):7.2f}  {np.percentile(values, 95):7.2f}"


class Sink:
    """Listens to the graph's outputs and diagnostics from a node of its own."""

    def __init__(self, keep: bool = True) -> None:
        # keep=False (the soak): count results only, so the listener's own lists do not
        # grow the process's memory being measured
        self.keep = keep
        self.results = 0
        self.node = rclpy.create_node("bench_sink")
        self.lock = threading.Lock()
        self.face_delay_ms: list[float] = []
        self.e2e_ms: list[float] = []
        self.telemetry: list[Telemetry] = []
        self.labelled = 0
        self.diagnostics: dict[str, dict[str, str]] = {}
        node = self.node
        node.create_subscription(FaceArray, "faces", self._on_faces, 100)
        node.create_subscription(ExpressionArray, "expressions", self._on_expressions, 100)
        node.create_subscription(Telemetry, "telemetry", self._on_telemetry, 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)

    def _age_ms(self, stamp: object) -> float:
        return (self.node.get_clock().now() - Time.from_msg(stamp)).nanoseconds / 1e6

    def _on_faces(self, msg: FaceArray) -> None:
        with self.lock:
            if self.keep:
                self.face_delay_ms.append(self._age_ms(msg.header.stamp))

    def _on_expressions(self, msg: ExpressionArray) -> None:
        with self.lock:
            self.results += 1
            if self.keep:
                self.e2e_ms.append(self._age_ms(msg.header.stamp))
            self.labelled += bool(msg.expressions)

    def _on_telemetry(self, msg: Telemetry) -> None:
        with self.lock:
            if self.keep:
                self.telemetry.append(msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            stamp = Time.from_msg(msg.header.stamp).nanoseconds / 1e9
            for status in msg.status:
                name = status.name.rsplit("/", 1)[-1]
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics[name] = {**values, "stamp_s": stamp}

    def reset(self) -> dict[str, dict[str, str]]:
        with self.lock:
            self.face_delay_ms.clear()
            self.e2e_ms.clear()
            self.telemetry.clear()
            self.labelled = self.results = 0
            return {k: dict(v) for k, v in self.diagnostics.items()}


def looping_plan(profile: str, fps: float) -> list[NodePlan]:
    """The profile's graph on the looping demo at ``fps``: a camera that never ends."""
    camera = {"loop": True, "fps": float(fps)}
    return [
        replace(n, overrides={**n.overrides, **camera}) if n.name == "camera" else n
        for n in graph_plan(profile)
    ]


def count(diagnostics: dict[str, dict[str, str]], node: str, key: str) -> int:
    return int(diagnostics.get(node, {}).get(key, 0))


def rate(before: dict, after: dict, node: str, key: str) -> float:
    """Per second between two diagnostics reports of ``node`` (their own stamps)."""
    span = float(after[node]["stamp_s"]) - float(before[node]["stamp_s"])
    return (count(after, node, key) - count(before, node, key)) / span if span > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--executor", default=DEFAULT_EXECUTOR, choices=EXECUTORS)
    parser.add_argument("--processes", action="store_true", help="one process per node")
    args = parser.parse_args()
    use_fastdds_profile()
    rclpy.init()
    plan = looping_plan(args.profile, args.fps)
    processes: list[subprocess.Popen[bytes]] = []
    if args.processes:
        processes = [spawn_node(node) for node in plan]
    sink = Sink()
    graph = LocalGraph(plan, not args.processes, args.executor, tools=[sink.node])
    try:
        graph.bring_up()
        time.sleep(WARM_UP_S)
        before = sink.reset()
        start = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - start
        with sink.lock:
            e2e, faces = list(sink.e2e_ms), list(sink.face_delay_ms)
            telemetry = list(sink.telemetry)
            labelled = sink.labelled
        time.sleep(1.5)  # the stages' next diagnostics report closes their window
        with sink.lock:
            after = {k: dict(v) for k, v in sink.diagnostics.items()}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        graph.close()
        rclpy.try_shutdown()

    camera_fps = rate(before, after, "camera", "frames_published")
    mode = "one process per node" if args.processes else f"one process, {args.executor} executor"
    print(f"profile {args.profile}: {elapsed:.0f} s of the looped demo at {args.fps:g} FPS, {mode}")
    print(
        f"camera published {camera_fps:6.1f} FPS; results {len(e2e) / elapsed:6.1f} FPS; "
        f"frames with a labelled face: {labelled}"
    )
    print("stage               received  processed  dropped  rejected")
    for node in plan:
        if node.name == "camera":
            continue
        row = [
            count(after, node.name, key) - count(before, node.name, key)
            for key in ("inputs_received", "inputs_processed", "inputs_dropped", "inputs_rejected")
        ]
        print(f"{node.name:<18} {row[0]:9d} {row[1]:10d} {row[2]:8d} {row[3]:9d}")
    print("latency                             p50 ms   p95 ms")
    print(f"camera -> faces (capture+detect)  {percentiles(faces)}")
    print(f"inference preprocess              {percentiles([t.preprocess_ms for t in telemetry])}")
    print(f"inference runtime call            {percentiles([t.inference_ms for t in telemetry])}")
    print(f"end to end (stamp -> expressions) {percentiles(e2e)}")
    if telemetry:
        t = telemetry[-1]
        print(f"device: {t.device} ({t.runtime})")


if __name__ == "__main__":
    main()
