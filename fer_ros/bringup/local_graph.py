"""A profile's nodes in this process, spun and brought up as fer_ros_bringup does.

The pipeline's nodes share one executor (``single`` by default, see
:mod:`fer_ros.nodes.executors`); the lifecycle manager and any tooling nodes (the
monitor, a benchmark's sink) get a second one, so their callbacks never queue behind a
stage's. Used by ``fer_ros_bringup`` and ``benchmarks/bench_pipeline.py`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module

from rclpy.logging import LoggingSeverity
from rclpy.node import Node
from rclpy.parameter import Parameter

from fer_ros.bringup.graph_plan import NodePlan
from fer_ros.bringup.lifecycle_manager import LifecycleManager
from fer_ros.nodes.executors import DEFAULT_EXECUTOR, make_executor, spin_in_background
from fer_ros.nodes.pipeline_base import PipelineNode


def create_node(plan: NodePlan) -> PipelineNode:
    """One planned node in this process (unconfigured)."""
    node_class = getattr(import_module(plan.module), plan.class_name)
    files = [arg for file in plan.parameter_files for arg in ("--params-file", str(file))]
    node = node_class(
        plan.name,
        namespace=plan.namespace,
        cli_args=["--ros-args", *files],
        parameter_overrides=[Parameter(k, value=v) for k, v in plan.overrides.items()],
    )
    if plan.log_level:  # nodes share this process's logging: set each node's own logger
        node.get_logger().set_level(LoggingSeverity[plan.log_level.upper()])
    return node


class LocalGraph:
    """Pipeline nodes (in this process or not) plus the manager that drives them."""

    def __init__(
        self,
        plan: Sequence[NodePlan],
        in_process: bool = True,
        executor: str = DEFAULT_EXECUTOR,
        tools: Sequence[Node] = (),
    ) -> None:
        self.plan = list(plan)
        # Executors first: made after a signal shut the context down, rclpy's Executor
        # fails in __init__ and then prints a second traceback from __del__.
        self._pipeline = make_executor(executor)
        self._side = make_executor("single")
        self.nodes = {p.name: create_node(p) for p in self.plan} if in_process else {}
        self.manager = LifecycleManager([p.fqn for p in self.plan])
        if self.plan and self.plan[0].log_level:  # the graph's level is the manager's too
            self.manager.get_logger().set_level(LoggingSeverity[self.plan[0].log_level.upper()])
        self._tools = [self.manager, *tools]
        for node in self.nodes.values():
            self._pipeline.add_node(node)
        for node in self._tools:
            self._side.add_node(node)
        self._threads = [
            spin_in_background(self._pipeline, "pipeline-executor"),
            spin_in_background(self._side, "tools-executor"),
        ]

    def bring_up(self) -> None:
        """Configure in graph order, activate in reverse (raises LifecycleError)."""
        self.manager.bring_up()

    def close(self) -> None:
        """Stop the stages' work, then the executors, then destroy every node."""
        for node in self.nodes.values():
            node.release()
        self._pipeline.shutdown()
        self._side.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)  # exiting while one waits in C++ aborts the process
        for node in (*self.nodes.values(), *self._tools):
            node.destroy_node()
