"""Entry point shared by every node executable: spin one node until shutdown."""

from __future__ import annotations

import inspect
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.utilities import remove_ros_args

from fer_ros.core.allocator import keep_freed_memory
from fer_ros.core.options import Param
from fer_ros.core.profiles import use_fastdds_profile
from fer_ros.core.threads import apply_thread_budget
from fer_ros.nodes.executors import init_rclpy, make_executor, spin_quietly
from fer_ros.nodes.pipeline_base import PipelineNode

HELP_FLAGS = ("-h", "--help")


def run_node(node_class: type[PipelineNode], args: list[str] | None = None) -> None:
    """Start unconfigured, as a lifecycle node should; launch or a manager drives it.

    ``-h`` / ``--help`` (before any ``--ros-args``) prints the node's parameters and
    returns without starting ROS."""
    if any(arg in HELP_FLAGS for arg in remove_ros_args(sys.argv if args is None else args)):
        print(node_help(node_class), end="")
        return
    use_fastdds_profile()
    budget = f"{apply_thread_budget()}; {keep_freed_memory()}"
    init_rclpy(args)  # from here Ctrl-C shuts ROS down without a KeyboardInterrupt
    # The executor first: made once the context is shut down, rclpy's Executor fails in
    # __init__ and then prints a second traceback from __del__.
    executor = make_executor()
    node: PipelineNode | None = None
    try:
        node = node_class()
        if rclpy.ok():  # after a stop the line could not reach /rosout: rcl says so
            node.get_logger().info(budget)
        executor.add_node(node)
        spin_quietly(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # SIGINT / SIGTERM while the node was being made: a stop
    except Exception as error:
        if rclpy.ok():  # e.g. a parameter of the wrong type in a profile
            rclpy.logging.get_logger(node_class.__name__).fatal(f"cannot start: {error}")
            raise SystemExit(1) from error
        # else a signal shut ROS down while the node was being made: a stop, not a failure
    finally:
        # Finish cleaning up even if another SIGINT arrives: Ctrl-C in a terminal reaches the
        # whole process group and a non-interactive ros2 launch then sends its own as well.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.release()
        executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def node_help(node_class: type[PipelineNode]) -> str:
    """What ``<executable> --help`` prints: what the node does, how it is driven, and
    every parameter with its type, default, legal values and meaning."""
    module = sys.modules[node_class.__module__]
    executable = Path(inspect.getfile(node_class)).stem  # also when run as python -m
    name = inspect.signature(node_class.__init__).parameters["node_name"].default
    about = inspect.cleandoc(module.__doc__ or "").replace("``", "").split("\n\n")
    lines = [
        f"usage: ros2 run fer_ros {executable} [--help] "
        "[--ros-args [-p NAME:=VALUE]... [--params-file FILE] [-r FROM:=TO]...]",
        "",
        *about[:2],
        "",
        *textwrap.wrap(
            f"A lifecycle node (default name {name!r}): it starts unconfigured; ros2 launch "
            "fer_ros <profile>.launch.py, fer_ros_bringup or fer_ros_lifecycle_manager "
            "configures and activates it. Parameters are read at configure time; a "
            "configured node refuses changes until it is cleaned up.",
            width=88,
        ),
        "",
        "parameters:",
    ]
    for param in node_class.parameters:
        lines.append(f"  {param.name} ({_type_name(param.default)}, default {param.default!r})")
        lines += textwrap.wrap(
            param.description + _limits(param),
            width=88,
            initial_indent=" " * 6,
            subsequent_indent=" " * 6,
            break_on_hyphens=False,
            break_long_words=False,
        )
    return "\n".join(lines) + "\n"


def _type_name(default: object) -> str:
    if isinstance(default, Sequence) and not isinstance(default, str):
        return "string array"
    return {bool: "bool", int: "integer", float: "double", str: "string"}[type(default)]


def _limits(param: Param) -> str:
    if param.choices:
        return ". One of: " + ", ".join(repr(c) for c in param.choices)
    if param.minimum is not None and param.maximum is not None:
        return f". Range {param.minimum:g} to {param.maximum:g}"
    return ""
