"""Launch descriptions for the profiles; used by launch/loihi.launch.py and edge.launch.py.

Needs the ``launch`` and ``launch_ros`` libraries (a ROS 2 install). Every action is built
when the description is, so ``ros2 launch -p`` (which prints it unexecuted, without the
arguments) shows each node's executable and parameter files, and a log line saying which
nodes the default profile starts and what the options change; what depends on the
arguments (the profile, its nodes, the camera source) is a substitution resolved through
:mod:`.graph_plan` at launch time, exactly as ``fer_ros_bringup`` plans its graph. Each
pipeline node is a lifecycle node respawned by launch if its process dies;
``fer_ros_lifecycle_manager`` configures them in graph order, activates them in reverse,
and brings a respawned node back to active. With
``private:=true`` the nodes that carry face pixels get the loopback-only Fast DDS profile
in their process's environment, as ``fer_ros_bringup --private`` gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from launch import LaunchContext, LaunchDescription, Substitution
from launch.actions import DeclareLaunchArgument, LogInfo, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue

from fer_ros.bringup.graph_plan import (
    BEHAVIOUR_NODES,
    GRAPH_OPTIONS,
    HRI_NODES,
    graph_plan,
    plan_summary,
)
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
    """A fact about the graph the launch arguments select, resolved at launch time.

    ``describe()`` is what ``ros2 launch -p`` prints in its place: ``-p`` shows the
    description unexecuted and without the arguments, so it names the defaults.
    """

    def __init__(self, fact: str, arguments: Sequence[str], default: str, node: str = "") -> None:
        super().__init__()
        self._fact, self._node, self._default = fact, node, default
        self._arguments = tuple(arguments)  # launch arguments naming the profile, first wins

    def describe(self) -> str:
        given = " or ".join(f"LaunchConfig('{a}')" for a in self._arguments)
        if self._fact == "profile_file":
            return f"ProfileYaml({given}; default {profile_path(self._default)})"
        if self._fact == "summary":
            return _summary_description(given, self._default)
        return f"FerRosGraph({self._fact} {self._node} of {given})".replace("  ", " ")

    def perform(self, context: LaunchContext) -> str:
        values = [LaunchConfiguration(a).perform(context) for a in self._arguments]
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
        if self._fact == "summary":
            return f"fer_ros: {plan_summary(plan)}, driven by {MANAGER}"
        return "[" + ", ".join(names) + "]"  # "nodes": a YAML list for a string array


def _summary_description(given: str, default: str) -> str:
    """Which of the nodes below start: ``-p`` prints no conditions, so this says it."""
    names = ", ".join(n.name for n in graph_plan(default))
    return (
        f"fer_ros graph: the nodes of profile {given}, with the defaults ({default}) "
        f"{names}; behaviour:=true adds {', '.join(BEHAVIOUR_NODES)}; hri:=true adds "
        f"{', '.join(HRI_NODES)}; source:=none leaves out camera. A node below starts only "
        f"if named there, {MANAGER} always. fer_ros_bringup PROFILE [options] --plan "
        "prints the resolved plan."
    )


def _default_text(argument: DeclareLaunchArgument) -> str:
    return "".join(getattr(s, "text", "") for s in argument.default_value or [])


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
    default_values = [defaults.get("profile", ""), *map(_default_text, extra_arguments)]
    default = next(v for v in default_values if v)

    def graph(fact: str, node: str = "") -> _Graph:
        return _Graph(fact, profile_arguments, default, node)

    namespace = LaunchConfiguration("namespace")
    sim_time = {
        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    }
    # Parameter files as ROS arguments, not launch_ros parameters=: those are added to the
    # command only when the node starts, so ros2 launch -p would not show them.
    files = [str(config_dir() / COMMON_PROFILE), graph("profile_file")]
    log_level = ["--log-level", LaunchConfiguration("log_level")]
    actions: list = [
        *extra_arguments,
        *graph_arguments(defaults),
        # Shared-memory transport for images unless the user chose a Fast DDS profile.
        SetEnvironmentVariable(
            FASTDDS_PROFILE_ENV,
            EnvironmentVariable(FASTDDS_PROFILE_ENV, default_value=str(fastdds_profile())),
        ),
        LogInfo(msg=[graph("summary")]),
    ]
    for name, node_type in NODE_TYPES.items():
        parameters: list = [sim_time]  # after the files: these win
        if name == "camera":
            camera = graph("camera_source")
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
                ros_arguments=[*log_level, *(a for f in files for a in ("--params-file", f))],
                respawn=True,
                respawn_delay=RESPAWN_DELAY_S,
                output="screen",
                condition=IfCondition(graph("has", name)),
                additional_env={FASTDDS_PROFILE_ENV: graph("fastdds_profile", name)},
            )
        )
    nodes = ParameterValue(graph("nodes"), value_type=list[str])
    actions.append(
        Node(
            package=PACKAGE,
            executable=MANAGER,
            name=MANAGER,
            namespace=namespace,
            parameters=[{"nodes": nodes}, sim_time],
            ros_arguments=log_level,
            output="screen",
        )
    )
    return LaunchDescription(actions)
