"""Launch descriptions for the profiles; used by launch/loihi.launch.py and edge.launch.py.

Needs the ``launch`` and ``launch_ros`` libraries (a ROS 2 install). The graph comes from
the profile YAML via :mod:`fer_ros.core.profiles`, exactly as for ``fer_ros_bringup``. Each
node is a lifecycle node: launch configures the nodes one after another in graph order,
then activates them in reverse order (the camera last), as ``fer_ros_bringup`` does.
"""

from __future__ import annotations

from launch import LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.events import matches_action
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from lifecycle_msgs.msg import Transition

from fer_ros.bringup.graph_plan import graph_plan
from fer_ros.core.profiles import NO_CAMERA, fastdds_profile

PACKAGE = "fer_ros"


def common_arguments() -> list:
    return [
        DeclareLaunchArgument(
            "source",
            default_value="",
            description="Camera source overriding the profile's: device index, /dev/videoN, "
            f"video file, image folder or 'demo' (empty keeps the profile's); '{NO_CAMERA}' "
            "starts no camera (frames from a bag replay or another driver)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the graph"),
        # Shared-memory transport for images unless the user chose a Fast DDS profile.
        SetEnvironmentVariable(
            "FASTDDS_DEFAULT_PROFILES_FILE",
            EnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE", default_value=str(fastdds_profile())
            ),
        ),
    ]


def pipeline_launch_description(
    profile: str = "", profile_argument: DeclareLaunchArgument | None = None
) -> LaunchDescription:
    """Nodes of ``profile``, or of the profile named by the launch argument given."""
    arguments = [profile_argument] if profile_argument else []
    argument_name = profile_argument.name if profile_argument else None
    return LaunchDescription(
        [
            *arguments,
            *common_arguments(),
            OpaqueFunction(function=_graph, args=[argument_name, profile]),
        ]
    )


def _graph(context: LaunchContext, profile_argument: str | None, profile: str) -> list:
    name = LaunchConfiguration(profile_argument).perform(context) if profile_argument else profile
    namespace = LaunchConfiguration("namespace").perform(context)
    source = LaunchConfiguration("source").perform(context)
    nodes: list[LifecycleNode] = []
    for plan in graph_plan(name, source, namespace):
        parameters: list = [str(file) for file in plan.parameter_files]
        # Strings stay strings: launch reads values as YAML, and "0" would become an int.
        parameters += [
            {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v}
            for k, v in plan.overrides.items()
        ]
        nodes.append(
            LifecycleNode(
                package=PACKAGE,
                executable=plan.executable,
                name=plan.name,
                namespace=plan.namespace,
                parameters=parameters,
                output="screen",
            )
        )
    # As fer_ros_bringup does (graph_plan.configure_order / activate_order): configure in
    # graph order, then activate in reverse order. Each
    # handler fires once: later transitions (ros2 lifecycle set ...) are left to the user.
    actions: list = [*nodes]
    for i, node in enumerate(nodes):
        after_configure = (
            _change_state(nodes[i + 1], Transition.TRANSITION_CONFIGURE)
            if i + 1 < len(nodes)
            else _change_state(node, Transition.TRANSITION_ACTIVATE)
        )
        actions.append(_on_transition(node, "configuring", "inactive", after_configure))
        if i > 0:
            activate_upstream = _change_state(nodes[i - 1], Transition.TRANSITION_ACTIVATE)
            actions.append(_on_transition(node, "activating", "active", activate_upstream))
    actions.append(_change_state(nodes[0], Transition.TRANSITION_CONFIGURE))
    return actions


def _change_state(node: LifecycleNode, transition_id: int) -> EmitEvent:
    return EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id)
    )


def _on_transition(
    node: LifecycleNode, start_state: str, goal_state: str, action: EmitEvent
) -> RegisterEventHandler:
    return RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state=start_state,
            goal_state=goal_state,
            entities=[action],
            handle_once=True,
        )
    )
