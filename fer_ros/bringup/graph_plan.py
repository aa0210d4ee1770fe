"""What a profile's graph is, before anything starts it: nodes, executables, parameter
files and overrides, and the order of their lifecycle transitions.

Both the launch files (through :mod:`.launch_description`) and ``fer_ros_bringup`` start
exactly this plan, and it needs neither ``launch`` nor ``rclpy``, so it is testable
everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ros.core.profiles import (
    FASTDDS_PROFILE_ENV,
    NODE_TYPES,
    fastdds_private_profile,
    graph_nodes,
    parameter_files,
    profile_path,
)

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


@dataclass(frozen=True)
class GraphOption:
    """One option of a whole graph: a launch argument and a fer_ros_bringup flag alike."""

    name: str
    help: str
    launch_default: str  # launch arguments are text
    choices: tuple[str, ...] = ()


# The options both launch files and fer_ros_bringup offer; their help texts come from here.
GRAPH_OPTIONS = (
    GraphOption(
        "profile",
        "accelerator profile: a name in config/ or a profile YAML of your own",
        "",
    ),
    GraphOption(
        "source",
        "camera source overriding the profile's: device index, /dev/videoN, video file, "
        "image folder or 'demo' (empty keeps the profile's); 'none' starts no camera "
        "(frames from fer_ros_replay or another driver)",
        "",
    ),
    GraphOption("namespace", "namespace of every node and topic of the graph", ""),
    GraphOption(
        "loop",
        "restart a video file or image folder at its end (launch: true, so a launched "
        "demo keeps running; fer_ros_bringup: off, the run ends with the video)",
        "true",
        ("true", "false"),
    ),
    GraphOption(
        "use_sim_time",
        "run every node on /clock (replaying a bag with fer_ros_replay --clock), so "
        "end-to-end latency is measured against the bag's time",
        "false",
        ("true", "false"),
    ),
    GraphOption("log_level", "log level of every node", "info", LOG_LEVELS),
    GraphOption(
        "behaviour",
        "also start expression_filter (stable per-person expressions and change events) "
        "and the example expression_reactor",
        "false",
        ("true", "false"),
    ),
    GraphOption(
        "hri",
        "also start expression_filter and hri_bridge (ROS4HRI REP-155 /humans/faces/... "
        "topics; needs hri_msgs)",
        "false",
        ("true", "false"),
    ),
    GraphOption(
        "private",
        "keep face pixels on this host: the nodes that carry frames, crops or spike trains "
        "(camera, face_detection, spike_encoding, hri_bridge) talk over shared memory and "
        "loopback only, while expressions, events, telemetry and diagnostics still reach "
        "other hosts (fer_ros_bringup: implies --processes; see docs/deployment.md)",
        "false",
        ("true", "false"),
    ),
)
# Nodes whose outputs carry faces: frames (image_raw), crops (faces, REP-155 cropped) and
# spike trains (the crop comes back from spike counts with r = 0.999).
PIXEL_NODES = ("camera", "face_detection", "spike_encoding", "hri_bridge")
BEHAVIOUR_NODES = ("expression_filter", "expression_reactor")
HRI_NODES = ("expression_filter", "hri_bridge")
HRI_MSGS_MISSING = (
    "hri needs the ROS4HRI messages hri_msgs, which are not importable here (not on PyPI, "
    "no kilted release): apt install ros-$ROS_DISTRO-hri-msgs or build "
    "https://github.com/ros4hri/hri_msgs in the workspace, or leave hri off"
)


def hri_msgs_available() -> bool:
    """Whether hri_bridge can configure: found, not imported (no rclpy needed here)."""
    return importlib.util.find_spec("hri_msgs") is not None


@dataclass(frozen=True)
class NodePlan:
    name: str
    executable: str  # console script in lib/fer_ros
    module: str  # module with the node class and main()
    class_name: str
    namespace: str  # "" or "/robot"
    parameter_files: tuple[Path, ...]  # common first, then the profile (which wins)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # parameter values
    log_level: str = ""  # "" keeps ROS's default (info)
    # Environment of the node's process beyond the inherited one (private mode's profile)
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def fqn(self) -> str:
        return f"{self.namespace}/{self.name}"


def normalise_namespace(namespace: str) -> str:
    """``robot`` or ``/robot/`` -> ``/robot``; empty stays empty."""
    stripped = namespace.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def graph_plan(
    profile: str | Path,
    source: str | None = None,
    namespace: str = "",
    loop: bool | None = None,
    use_sim_time: bool = False,
    log_level: str = "",
    behaviour: bool = False,
    hri: bool = False,
    private: bool = False,
) -> list[NodePlan]:
    """The nodes of ``profile`` (a name or a YAML path) in graph order. ``source``
    overrides the camera's (``none`` starts no camera), ``loop`` its looping (None keeps
    the profile's); ``use_sim_time`` and ``log_level`` apply to every node; ``behaviour``
    and ``hri`` add the behaviour-side nodes after the profile's (ValueError for ``hri``
    where hri_msgs is not importable); ``private`` gives the nodes of PIXEL_NODES the
    loopback-only Fast DDS profile (each node then needs a process of its own)."""
    if log_level and log_level not in LOG_LEVELS:
        raise ValueError(f"log level {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if hri and not hri_msgs_available():
        # Refused here, before anything starts: planned anyway, hri_bridge would fail to
        # configure, and the lifecycle manager would stop with the graph never active.
        raise ValueError(HRI_MSGS_MISSING)
    path = profile_path(str(profile))
    files = tuple(parameter_files(path))
    names = graph_nodes(path, source)
    extra = (*(BEHAVIOUR_NODES if behaviour else ()), *(HRI_NODES if hri else ()))
    names += [n for n in dict.fromkeys(extra) if n not in names]
    plans = []
    for name in names:
        node_type = NODE_TYPES[name]
        overrides: dict[str, Any] = {"use_sim_time": True} if use_sim_time else {}
        if name == "camera":
            overrides |= {"source": source} if source else {}
            overrides |= {"loop": loop} if loop is not None else {}
        environment = {}
        if private and name in PIXEL_NODES:
            # Set, not defaulted: a profile exported by the user would let pixels leave.
            environment[FASTDDS_PROFILE_ENV] = str(fastdds_private_profile())
        plans.append(
            NodePlan(
                name=name,
                executable=node_type.executable,
                module=node_type.module,
                class_name=node_type.class_name,
                namespace=normalise_namespace(namespace),
                parameter_files=files,
                overrides=overrides,
                log_level=log_level,
                environment=environment,
            )
        )
    return plans


def configure_order(plan: list[NodePlan]) -> list[str]:
    """Graph order: each stage's models load before the one after it configures."""
    return [node.fqn for node in plan]


def activate_order(plan: list[NodePlan]) -> list[str]:
    """Reverse graph order, so no stage publishes into one that is not listening yet."""
    return [node.fqn for node in reversed(plan)]


def ros_arguments(node: NodePlan) -> list[str]:
    """The node's ROS arguments: what ``--processes`` starts it with, and what launch
    passes (launch adds the same name, files and overrides through its own actions)."""
    arguments = ["--ros-args", "-r", f"__node:={node.name}"]
    arguments += [a for file in node.parameter_files for a in ("--params-file", str(file))]
    if node.namespace:
        arguments += ["-r", f"__ns:={node.namespace}"]
    for key, value in node.overrides.items():
        arguments += ["-p", f"{key}:={json.dumps(value)}"]  # quoted: "0" stays a string
    if node.log_level:
        arguments += ["--log-level", node.log_level]
    return arguments


def plan_summary(plan: list[NodePlan]) -> str:
    """One line: the profile, its file and the nodes (launch logs it, bringup prints it)."""
    profile = plan[0].parameter_files[-1]
    return f"{profile.stem} profile from {profile}: {', '.join(n.name for n in plan)}"


def manager_arguments(plan: list[NodePlan]) -> list[str]:
    """``fer_ros_lifecycle_manager``'s ROS arguments for this plan (names in its namespace)."""
    arguments = ["--ros-args", "-p", f"nodes:={json.dumps([n.name for n in plan])}"]
    if plan[0].namespace:
        arguments += ["-r", f"__ns:={plan[0].namespace}"]
    return arguments


def describe_plan(plan: list[NodePlan]) -> str:
    """The resolved plan as text, nothing started (``fer_ros_bringup --plan``): per node
    its executable, parameter files and overrides, and the commands that start the same
    graph one process per node."""
    lines = [f"fer_ros: {plan_summary(plan)}"]
    for node in plan:
        lines.append(f"{node.fqn}: {node.executable} ({node.module}.{node.class_name})")
        files = ", ".join(str(f) for f in node.parameter_files)
        lines.append(f"    parameter files (later wins): {files}")
        if node.overrides:
            values = ", ".join(f"{k}={json.dumps(v)}" for k, v in node.overrides.items())
            lines.append(f"    overrides: {values}")
        lines.append(f"    log level: {node.log_level or 'info'}")
        command = shlex.join([node.executable, *ros_arguments(node)])
        lines.append(f"    command: ros2 run fer_ros {command}")
    order = ", ".join(configure_order(plan))
    manager = shlex.join(["fer_ros_lifecycle_manager", *manager_arguments(plan)])
    lines.append(f"configured in this order, activated in reverse ({order}) by:")
    lines.append(f"    ros2 run fer_ros {manager}")
    return "\n".join(lines)


def node_plan(profile: str | Path, name: str, namespace: str = "") -> NodePlan:
    """The plan of one node of ``profile`` (tests and benchmarks start single stages)."""
    for node in graph_plan(profile, None, namespace):
        if node.name == name:
            return node
    raise KeyError(f"{profile}: no {name!r} node")
