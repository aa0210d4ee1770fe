"""What a profile's graph is, before anything starts it: nodes, executables, parameter
files and overrides, and the order of their lifecycle transitions.

Both the launch files (through :mod:`.launch_description`) and ``fer_ros_bringup`` start
exactly this plan, and it needs neither ``launch`` nor ``rclpy``, so it is testable
everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ros.core.profiles import NODE_TYPES, graph_nodes, parameter_files, profile_path


@dataclass(frozen=True)
class NodePlan:
    name: str
    executable: str  # console script in lib/fer_ros
    module: str  # module with the node class and main()
    class_name: str
    namespace: str  # "" or "/robot"
    parameter_files: tuple[Path, ...]  # common first, then the profile (which wins)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # parameter values

    @property
    def fqn(self) -> str:
        return f"{self.namespace}/{self.name}"


def normalise_namespace(namespace: str) -> str:
    """``robot`` or ``/robot/`` -> ``/robot``; empty stays empty."""
    stripped = namespace.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def graph_plan(
    profile: str | Path, source: str | None = None, namespace: str = ""
) -> list[NodePlan]:
    """The nodes of ``profile`` (a name or a YAML path) in graph order. ``source``
    overrides the camera's (``none`` starts no camera)."""
    path = profile_path(str(profile))
    files = tuple(parameter_files(path))
    plans = []
    for name in graph_nodes(path, source):
        node_type = NODE_TYPES[name]
        overrides = {"source": source} if source and name == "camera" else {}
        plans.append(
            NodePlan(
                name=name,
                executable=node_type.executable,
                module=node_type.module,
                class_name=node_type.class_name,
                namespace=normalise_namespace(namespace),
                parameter_files=files,
                overrides=overrides,
            )
        )
    return plans


def configure_order(plan: list[NodePlan]) -> list[str]:
    """Graph order: each stage's models load before the one after it configures."""
    return [node.fqn for node in plan]


def activate_order(plan: list[NodePlan]) -> list[str]:
    """Reverse graph order, so no stage publishes into one that is not listening yet."""
    return [node.fqn for node in reversed(plan)]


def node_plan(profile: str | Path, name: str, namespace: str = "") -> NodePlan:
    """The plan of one node of ``profile`` (tests and benchmarks start single stages)."""
    for node in graph_plan(profile, None, namespace):
        if node.name == name:
            return node
    raise KeyError(f"{profile}: no {name!r} node")
