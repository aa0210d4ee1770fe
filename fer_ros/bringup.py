"""``fer_ros_bringup``: start a profile's whole graph without ``ros2 launch``.

Reads the same ``config/<profile>.yaml`` as the launch files. By default every node runs
in this process on one multi-threaded executor; ``--processes`` starts one process per
node instead. Either way the nodes are lifecycle nodes driven through their standard
change_state services, and a console summary is printed once per second. The run ends
at Ctrl-C, after ``--duration`` seconds, or when a finite source (a video file without
looping) has been played and its last results have arrived.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from importlib import import_module
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.parameter import Parameter

from fer_ros.lifecycle_manager import LifecycleError, LifecycleManager
from fer_ros.monitor import PipelineMonitor
from fer_ros.pipeline_node import PipelineNode
from fer_ros.profiles import (
    NO_CAMERA,
    NODE_TYPES,
    PROFILES,
    graph_nodes,
    parameter_files,
    profile_path,
    use_fastdds_profile,
)

EXECUTOR_THREADS = 4  # nodes do heavy work in their own worker threads; these only dispatch


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fer_ros_bringup", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "profile",
        nargs="?",
        default="loihi",
        help=f"one of {', '.join(PROFILES)} or a profile YAML (default: loihi)",
    )
    parser.add_argument(
        "--source",
        help="camera source, overriding the profile's "
        f"(device index, /dev/videoN, video file, image folder, 'demo'; '{NO_CAMERA}' starts "
        "no camera, for frames from fer_ros_replay or another driver)",
    )
    parser.add_argument("--namespace", default="", help="namespace of all nodes and topics")
    parser.add_argument("--processes", action="store_true", help="one process per node")
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (0: run until the source ends)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-second summary")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    profile = profile_path(args.profile)
    names = graph_nodes(profile, args.source)
    use_fastdds_profile()
    rclpy.init()
    namespace = "/" + args.namespace.strip("/") if args.namespace.strip("/") else ""
    fqns = [f"{namespace}/{name}" for name in names]
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    nodes: list[PipelineNode] = []
    processes: list[subprocess.Popen[bytes]] = []
    if args.processes:
        processes = [spawn_node(n, profile, namespace, args.source) for n in names]
    else:
        nodes = [create_node(n, profile, namespace, args.source) for n in names]
    manager = LifecycleManager(fqns)
    monitor = PipelineMonitor(namespace=namespace, quiet=args.quiet)
    for node in (*nodes, manager, monitor):
        executor.add_node(node)
    spinner = threading.Thread(target=spin_quietly, args=(executor,), daemon=True)
    spinner.start()
    status = 0
    try:
        print(f"fer_ros: {profile.stem} profile from {profile}: {', '.join(names)}", flush=True)
        manager.bring_up()
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while rclpy.ok() and not monitor.finished:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(monitor.final_report(), flush=True)
    except LifecycleError as error:
        print(f"fer_ros: {error}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        print(monitor.final_report(), flush=True)  # Ctrl-C is how a camera or replay run ends
    finally:
        for node in nodes:
            node.release()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        executor.shutdown()
        spinner.join(timeout=5)  # exiting while it waits in C++ aborts the process
        for node in (*nodes, manager, monitor):
            node.destroy_node()
        rclpy.try_shutdown()
    return status


def spin_quietly(executor: MultiThreadedExecutor) -> None:
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def create_node(name: str, profile: Path, namespace: str, source: str | None) -> PipelineNode:
    node_type = NODE_TYPES[name]
    node_class = getattr(import_module(node_type.module), node_type.class_name)
    overrides = [Parameter("source", value=source)] if source and name == "camera" else []
    return node_class(
        name,
        namespace=namespace,
        cli_args=["--ros-args", *params_file_args(profile)],
        parameter_overrides=overrides,
    )


def spawn_node(
    name: str, profile: Path, namespace: str, source: str | None
) -> subprocess.Popen[bytes]:
    node_type = NODE_TYPES[name]
    command = [sys.executable, "-m", node_type.module, "--ros-args", "-r", f"__node:={name}"]
    command += params_file_args(profile)
    if namespace:
        command += ["-r", f"__ns:={namespace}"]
    if source and name == "camera":
        command += ["-p", f"source:={json.dumps(source)}"]  # quoted: "0" stays a string
    return subprocess.Popen(command)


def params_file_args(profile: Path) -> list[str]:
    """``--params-file`` for the common file, then the profile (which wins)."""
    return [arg for file in parameter_files(profile) for arg in ("--params-file", str(file))]


if __name__ == "__main__":
    sys.exit(main())
