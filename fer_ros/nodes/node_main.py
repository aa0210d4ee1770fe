"""Entry point shared by every node executable: spin one node until shutdown."""

from __future__ import annotations

import signal

import rclpy

from fer_ros.core.profiles import use_fastdds_profile
from fer_ros.core.threads import apply_thread_budget
from fer_ros.nodes.executors import make_executor, spin_quietly
from fer_ros.nodes.pipeline_base import PipelineNode


def run_node(node_class: type[PipelineNode], args: list[str] | None = None) -> None:
    """Start unconfigured, as a lifecycle node should; launch or a manager drives it."""
    use_fastdds_profile()
    budget = apply_thread_budget()
    rclpy.init(args=args)
    try:
        node = node_class()
    except Exception as error:  # e.g. a parameter of the wrong type in a profile
        rclpy.logging.get_logger(node_class.__name__).fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        raise SystemExit(1) from error
    node.get_logger().info(budget)
    executor = make_executor()
    executor.add_node(node)
    try:
        spin_quietly(executor)
    finally:
        # Finish cleaning up even if another SIGINT arrives: Ctrl-C in a terminal reaches the
        # whole process group and a non-interactive ros2 launch then sends its own as well.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
