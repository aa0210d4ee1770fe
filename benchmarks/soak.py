"""Soak: many frames through a profile's whole graph, watching memory, threads and files.

    .venv/bin/python benchmarks/soak.py [--profile cpu] [--frames 10000] [--fps 30]

Runs the graph in this process exactly as fer_ros_bringup does (LocalGraph, looping
demo), samples this process's RSS, thread count and open file descriptors every
``--every`` seconds, and prints them at the start (after warm-up), the end and their
growth, with results, drops, rejected inputs and every ERROR the stages reported on
/diagnostics. Not a test: about 6 minutes for 10,000 frames at 30 FPS.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import rclpy
from bench_pipeline import WARM_UP_S, Sink, count  # same folder
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from fer_ros.bringup.graph_plan import NodePlan, graph_plan
from fer_ros.bringup.local_graph import LocalGraph
from fer_ros.core.profiles import use_fastdds_profile


def looping_plan(profile: str, fps: float) -> list[NodePlan]:
    """The profile's graph on the looping demo at ``fps``: a camera that never ends."""
    camera = {"loop": True, "fps": float(fps)}
    return [
        replace(n, overrides={**n.overrides, **camera}) if n.name == "camera" else n
        for n in graph_plan(profile)
    ]


def sample() -> tuple[float, int, int]:
    """(RSS MiB, threads, open file descriptors) of this process."""
    status = dict(
        line.split(":", 1) for line in open("/proc/self/status", encoding="ascii") if ":" in line
    )
    rss_mib = int(status["VmRSS"].split()[0]) / 1024
    return rss_mib, int(status["Threads"]), len(os.listdir("/proc/self/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    use_fastdds_profile()
    rclpy.init()
    plan = looping_plan(args.profile, args.fps)
    sink = Sink(keep=False)
    errors: set[str] = set()

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.level == DiagnosticStatus.ERROR:
                errors.add(f"{status.name}: {status.message}")

    sink.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 100)
    graph = LocalGraph(plan, tools=[sink.node])
    samples: list[tuple[float, float, int, int]] = []
    try:
        graph.bring_up()
        time.sleep(WARM_UP_S)
        before = sink.reset()
        start = time.monotonic()
        samples.append((0.0, *sample()))
        while sink.results < args.frames:
            time.sleep(min(args.every, 1.0))
            now = time.monotonic() - start
            if now - samples[-1][0] >= args.every:
                samples.append((now, *sample()))
                rss, threads, fds = samples[-1][1:]
                print(f"[{now:5.0f} s] results {sink.results:6d}  RSS {rss:7.1f} MiB  "
                      f"threads {threads:3d}  fds {fds:4d}", flush=True)  # fmt: skip
        samples.append((time.monotonic() - start, *sample()))
        time.sleep(1.5)
        after = dict(sink.diagnostics)
    finally:
        graph.close()
        rclpy.try_shutdown()

    (_, rss0, th0, fd0), (t1, rss1, th1, fd1) = samples[0], samples[-1]
    print(f"\nprofile {args.profile}: {sink.results} results in {t1:.0f} s")
    growth = 100 * (rss1 / rss0 - 1)
    print(f"RSS     start {rss0:7.1f} MiB  end {rss1:7.1f} MiB  growth {growth:+.1f} %")
    print(f"threads start {th0:7d}      end {th1:7d}      growth {th1 - th0:+d}")
    print(f"fds     start {fd0:7d}      end {fd1:7d}      growth {fd1 - fd0:+d}")
    for node in plan:
        if node.name == "camera":
            continue
        keys = ("inputs_received", "inputs_dropped", "inputs_rejected")
        row = [count(after, node.name, k) - count(before, node.name, k) for k in keys]
        print(f"{node.name:<16} received {row[0]:6d}  dropped {row[1]:5d}  rejected {row[2]:4d}")
    print(f"ERRORs on /diagnostics: {len(errors)}" + "".join(f"\n  {e}" for e in sorted(errors)))


if __name__ == "__main__":
    main()
