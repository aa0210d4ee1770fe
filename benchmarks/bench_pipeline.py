"""Per-stage latency and sustained end-to-end throughput of a profile's whole graph.

    .venv/bin/python benchmarks/bench_pipeline.py [--profile cpu] [--seconds 30] [--fps 30]

Runs the real graph (one process, as fer_ros_bringup) on the looping demo video and
prints measured figures: camera rate, per-stage latency p50/p95, end-to-end latency
(frame stamp to ExpressionArray) and how many frames each stage dropped. Not a test:
run it on a quiet machine (other loads on 2 cores change the figures).
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.time import Time

from fer_msgs.msg import ExpressionArray, FaceArray, Telemetry
from fer_ros.bringup.graph_plan import node_plan
from fer_ros.bringup.lifecycle_manager import LifecycleManager
from fer_ros.bringup.main import EXECUTOR_THREADS, create_node
from fer_ros.core.profiles import profile_nodes, profile_path, use_fastdds_profile


def percentiles(values: list[float]) -> str:
    if not values:
        return "      -        -"
    return f"{np.percentile(values, 50):7.2f}  {np.percentile(values, 95):7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    use_fastdds_profile()
    rclpy.init()
    path = profile_path(args.profile)
    names = profile_nodes(path)
    nodes = {n: create_node(node_plan(path, n)) for n in names}
    nodes["camera"].set_parameters(
        [Parameter("loop", value=True), Parameter("fps", value=args.fps)]
    )
    manager = LifecycleManager([f"/{n}" for n in names])
    sink = rclpy.create_node("bench_sink")
    face_delay_ms: list[float] = []
    e2e_ms: list[float] = []
    telemetry: list[Telemetry] = []
    labelled = [0]

    def on_faces(msg: FaceArray) -> None:
        face_delay_ms.append(
            (sink.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6
        )

    def on_expressions(msg: ExpressionArray) -> None:
        e2e_ms.append((sink.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6)
        labelled[0] += bool(msg.expressions)

    sink.create_subscription(FaceArray, "faces", on_faces, 100)
    sink.create_subscription(ExpressionArray, "expressions", on_expressions, 100)
    sink.create_subscription(Telemetry, "telemetry", telemetry.append, 100)
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    for node in (*nodes.values(), manager, sink):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    manager.bring_up()
    time.sleep(2.0)  # warm-up, not measured
    camera_start = nodes["camera"].frames_published
    for series in (face_delay_ms, e2e_ms, telemetry):
        series.clear()
    labelled[0] = 0
    time.sleep(args.seconds)
    frames = nodes["camera"].frames_published - camera_start
    results = len(e2e_ms)
    for node in nodes.values():
        node.release()
    executor.shutdown()
    spinner.join(timeout=5)  # exiting while it waits in C++ aborts the process
    for node in (*nodes.values(), manager, sink):
        node.destroy_node()
    rclpy.try_shutdown()

    print(
        f"profile {args.profile}: {args.seconds:.0f} s of single_face.mp4 (looped) "
        f"at {args.fps:g} FPS"
    )
    print(
        f"camera published {frames / args.seconds:6.1f} FPS; "
        f"results {results / args.seconds:6.1f} FPS; "
        f"frames without a result: {max(frames - results, 0)} of {frames}"
    )
    print(f"frames with a labelled face: {labelled[0]}")
    print("stage                               p50 ms   p95 ms")
    print(f"camera -> faces (capture+detect)  {percentiles(face_delay_ms)}")
    print(f"inference preprocess              {percentiles([t.preprocess_ms for t in telemetry])}")
    print(f"inference runtime call            {percentiles([t.inference_ms for t in telemetry])}")
    print(f"end to end (stamp -> expressions) {percentiles(e2e_ms)}")
    if telemetry:
        t = telemetry[-1]
        print(f"device: {t.device} ({t.runtime}); inference stage dropped {t.frames_dropped}")


if __name__ == "__main__":
    main()
