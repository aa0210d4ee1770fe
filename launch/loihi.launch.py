"""Camera -> face detection -> spike encoding -> SNN on Intel Loihi (or its emulator).

    ros2 launch fer_ros loihi.launch.py [source:=0] [namespace:=robot] [profile:=my.yaml]
        [loop:=true|false] [use_sim_time:=true|false] [log_level:=info]

The graph and its parameters come from config/loihi.yaml (or the profile given);
``ros2 launch fer_ros loihi.launch.py -s`` lists the arguments.
"""

from launch import LaunchDescription

from fer_ros.bringup.launch_description import pipeline_launch_description


def generate_launch_description() -> LaunchDescription:
    return pipeline_launch_description({"profile": "loihi"})
