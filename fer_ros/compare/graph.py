"""``--graph``: sustained throughput of a profile's whole graph, started as fer_ros_bringup
starts it (same plan, same executors, same lifecycle manager, in this process).

The only part of fer_ros.compare that needs ROS: everything is imported when called. The
camera loops its video so the rate is sustained, not the start-up of a 72-frame clip.
Set ``ROS_DOMAIN_ID`` to keep other graphs on this machine out of the count.
"""

from __future__ import annotations

import time
from dataclasses import replace

from fer_ros.compare.rows import GraphFigures

WARM_UP_S = 3.0  # models load and the first frames queue; not part of the sustained rate


def graph_figures(profile: str, seconds: float, source: str = "demo") -> GraphFigures:
    import rclpy

    from fer_ros.bringup.graph_plan import graph_plan
    from fer_ros.bringup.local_graph import LocalGraph
    from fer_ros.bringup.monitor import PipelineMonitor
    from fer_ros.core.profiles import use_fastdds_profile

    plan = [
        replace(node, overrides={**node.overrides, "loop": True}) if node.name == "camera" else node
        for node in graph_plan(profile, source)
    ]
    use_fastdds_profile()
    rclpy.init()
    monitor = PipelineMonitor(namespace=plan[0].namespace, quiet=True)
    graph = LocalGraph(plan, tools=[monitor])
    try:
        graph.bring_up()
        time.sleep(WARM_UP_S)
        frames, faces, start = monitor.frames, monitor.frames_with_faces, time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        return GraphFigures(
            seconds=elapsed,
            results_per_s=(monitor.frames - frames) / elapsed,
            labelled_per_s=(monitor.frames_with_faces - faces) / elapsed,
            e2e_p50_ms=monitor.end_to_end_ms.percentile(50),
            e2e_p95_ms=monitor.end_to_end_ms.percentile(95),
            source=f"{source} (looped)",
        )
    finally:
        graph.close()
        rclpy.try_shutdown()
