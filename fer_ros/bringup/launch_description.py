"""Launch descriptions for the profiles; used by launch/loihi.launch.py and edge.launch.py.

Needs the ``launch`` and ``launch_ros`` libraries (a ROS 2 install). Every action is built
when the description is, so ``ros2 launch -p`` shows the nodes, their parameter files and
remappings; what depends on the arguments (which profile, which nodes it has, the camera
source) is a substitution resolved through :mod:`.graph_plan` at launch time, exactly as
``fer_ros_bringup`` plans its graph. Each pipeline node is a lifecycle node respawned by
launch if its process dies; ``fer_ros_lifecycle_manager`` configures them in graph order,
activates them in reverse, and brings a respawned node back to active. With
``private:=true`` the nodes that carry face pixels get the loopback-only Fast DDS profile
in their process's environment, as ``fer_ros_bringup --private`` gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from launch import LaunchContext, LaunchDescription, Substitution
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue

from fer_ros.bringup.graph_plan import GRAPH_OPTIONS, graph_plan
from fer_ros.core.paths import config_dir
from fer_ros.core.profiles import (
    COMMON_PROFILE,
    FASTDDS_PROFILE_ENV,
    NODE_TYPES,
    fastdds_profile,
    profile_parameters,
    profile_path,
)

PACKAGE = "fer_ros"
MANAGER = "fer_ros_lifecycle_manager"
RESPAWN_DELAY_S = 1.0  # a crashed stage restarts after this; the manager then reactivates it


class _Graph(Substitution):
    """A fact about the graph the launch arguments select, resolved at launch time."""

    def __init__(self, fact: str, profile_arguments: Sequence[str], node: str = "") -> None:
        super().__init__()
        self._fact, self._node, self._profile_arguments = fact, node, tuple(profile_arguments)

    def describe(self) -> str:
        arguments = " or ".join(f"$({a})" for a in self._profile_arguments)
        return f"fer_ros {self._fact} {self._node} of profile {arguments}".replace("  ", " ")

    def perform(self, context: LaunchContext) -> str:
        values = [LaunchConfiguration(a).perform(context) for a in self._profile_arguments]
        profile = next((v for v in values if v), "")
        if self._fact == "profile_file":
            return str(profile_path(profile))
        source = LaunchConfiguration("source").perform(context)
        if self._fact == "camera_source":
            return source or str(profile_parameters(profile_path(profile), "camera")["source"])
        extra = {
            option: LaunchConfiguration(option).perform(context).lower() == "true"
            for option in ("behaviour", "hri", "private")
        }
        plan = graph_plan(profile, source or None, **extra)
        names = [node.name for node in plan]
        if self._fact == "fastdds_profile":  # the node's own in private mode, else the graph's
            node = next((n for n in plan if n.name == self._node), None)
            own = node.environment.get(FASTDDS_PROFILE_ENV) if node else None
            graph_profile = EnvironmentVariable(
                FASTDDS_PROFILE_ENV, default_value=str(fastdds_profile())
            )
            return own or graph_profile.perform(context)
        if self._fact == "has":
            return "true" if self._node in names else "false"
        return "[" + ", ".join(names) + "]"  # "nodes": a YAML list for a string array


def graph_arguments(defaults: dict[str, str]) -> list[DeclareLaunchArgument]:
    """The graph options (the same as fer_ros_bringup's), with this file's defaults."""
    return [
        DeclareLaunchArgument(
            o.name,
            default_value=defaults.get(o.name, o.launch_default),
            description=o.help,
            **({"choices": list(o.choices)} if o.choices else {}),
        )
        for o in GRAPH_OPTIONS
    ]


def pipeline_launch_description(
    defaults: dict[str, str], extra_arguments: Sequence[DeclareLaunchArgument] = ()
) -> LaunchDescription:
    """Every node type a profile can have, each started only when the profile has it.

    ``extra_arguments`` come first and may name the profile too (edge.launch.py's
    ``accelerator``); a non-empty ``profile`` argument wins over them.
    """
    profile_arguments = ["profile", *(a.name for a in extra_arguments)]
    namespace = LaunchConfiguration("namespace")
    sim_time = {
        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    }
    files = [str(config_dir() / COMMON_PROFILE), _Graph("profile_file", profile_arguments)]
    actions: list = [
        *extra_arguments,
        *graph_arguments(defaults),
        # Shared-memory transport for images unless the user chose a Fast DDS profile.
        SetEnvironmentVariable(
            FASTDDS_PROFILE_ENV,
            EnvironmentVariable(FASTDDS_PROFILE_ENV, default_value=str(fastdds_profile())),
        ),
    ]
    for name, node_type in NODE_TYPES.items():
        parameters: list = [*files, sim_time]
        if name == "camera":
            camera = _Graph("camera_source", profile_arguments)
            parameters.append(
                {
                    # Strings stay strings: launch reads values as YAML ("0" would be an int).
                    "source": ParameterValue(camera, value_type=str),
                    "loop": ParameterValue(LaunchConfiguration("loop"), value_type=bool),
                }
            )
        actions.append(
            LifecycleNode(
                package=PACKAGE,
                executable=node_type.executable,
                name=name,
                namespace=namespace,
                parameters=parameters,
                ros_arguments=["--log-level", LaunchConfiguration("log_level")],
                respawn=True,
                respawn_delay=RESPAWN_DELAY_S,
                output="screen",
                condition=IfCondition(_Graph("has", profile_arguments, name)),
                additional_env={
                    FASTDDS_PROFILE_ENV: _Graph("fastdds_profile", profile_arguments, name)
                },
            )
        )
    nodes = ParameterValue(_Graph("nodes", profile_arguments), value_type=list[str])
    actions.append(
        Node(
            package=PACKAGE,
            executable=MANAGER,
            name=MANAGER,
            namespace=namespace,
            parameters=[{"nodes": nodes}, sim_time],
            ros_arguments=["--log-level", LaunchConfiguration("log_level")],
            output="screen",
        )
    )
    return LaunchDescription(actions)
