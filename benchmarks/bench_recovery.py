"""Start and recovery of a ``--processes`` graph: first expression, and back after ``kill -9``.

    .venv/bin/python benchmarks/bench_recovery.py [--profile loihi] [--rounds 1]

Starts ``fer_ros_bringup PROFILE --processes --loop`` as a user would and prints the
seconds from starting it to the first expression; then, for every stage of the graph in
turn, ``kill -9`` of its process and the seconds until expressions come again (the
supervisor restarts it with back-off, the lifecycle manager reactivates it). Results
are listened to from this process. Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import rclpy
from bench_pipeline import (  # same folder; it puts this checkout first on the path
    Sink,
    graph_env,
    process_label,
    process_tree,
    spin,
    stop_graph,
)

from fer_ros.bringup.graph_plan import graph_plan
from fer_ros.core.machine import cpu_isa

TIMEOUT_S = 60.0


def wait_for_results(sink: Sink, after: int, graph: subprocess.Popen[bytes]) -> float:
    """Seconds until ``sink`` has more than ``after`` results."""
    start = time.monotonic()
    while sink.results <= after:
        if graph.poll() is not None:
            raise SystemExit(f"the graph ended (exit code {graph.returncode})")
        if time.monotonic() - start > TIMEOUT_S:
            return float("nan")
        time.sleep(0.02)
    return time.monotonic() - start


def stage_pid(root: int, stage: str) -> int | None:
    return next((pid for pid in process_tree(root) if process_label(pid) == stage), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="loihi")
    parser.add_argument("--rounds", type=int, default=1, help="kills per stage")
    args = parser.parse_args()
    rclpy.init()
    sink = Sink(keep=False)
    stop_spinning = spin(sink.node)
    command = [sys.executable, "-m", "fer_ros.bringup", args.profile]
    command += ["--processes", "--loop", "--quiet"]
    started = time.monotonic()
    graph = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, start_new_session=True, env=graph_env()
    )
    print(f"profile {args.profile}, one process per stage; CPU {cpu_isa()}")
    try:
        wait_for_results(sink, 0, graph)
        print(f"first expression {time.monotonic() - started:.1f} s after start")
        time.sleep(3.0)
        for stage in [node.name for node in graph_plan(args.profile)]:
            for _ in range(args.rounds):
                pid = stage_pid(graph.pid, stage)
                if pid is None:
                    print(f"{stage:<16} no process found")
                    continue
                time.sleep(1.0)
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.3)  # results already in flight do not count
                back = 0.3 + wait_for_results(sink, sink.results, graph)
                print(f"{stage:<16} kill -9: expressions again after {back:.1f} s")
                time.sleep(3.0)
    finally:
        stop_graph(graph, stop_spinning)


if __name__ == "__main__":
    main()
