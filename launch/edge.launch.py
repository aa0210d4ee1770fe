"""Camera -> face detection -> CNN on an edge AI accelerator.

    ros2 launch fer_ros edge.launch.py accelerator:=coral|ncs2|jetson|rpi|cpu [source:=0]
        [profile:=my.yaml] [namespace:=robot] [loop:=...] [use_sim_time:=...] [log_level:=...]

The graph and its parameters come from config/<accelerator>.yaml, or from ``profile``
(a name or a YAML path) when it is given.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument

from fer_ros.bringup.launch_description import pipeline_launch_description
from fer_ros.core.profiles import EDGE_PROFILES


def generate_launch_description() -> LaunchDescription:
    accelerator = DeclareLaunchArgument(
        "accelerator",
        default_value="cpu",
        choices=list(EDGE_PROFILES),
        description="Edge accelerator profile to run (profile:= overrides it)",
    )
    return pipeline_launch_description({}, extra_arguments=[accelerator])
