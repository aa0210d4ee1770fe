"""``fer_ros_bringup``: start a profile's whole graph without ``ros2 launch``.

Reads the same ``config/<profile>.yaml`` as the launch files. By default every node runs
in this process on one multi-threaded executor; ``--processes`` starts one process per
node instead (``--private`` too: it gives the pixel-carrying nodes a loopback-only Fast
DDS profile, and a profile is per process). Either way the nodes are lifecycle nodes
driven through their standard change_state services, and a console summary is printed
once per second. The run ends at Ctrl-C, after ``--duration`` seconds, or when a finite
source (a video file without looping) has been played and its last results have arrived.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from importlib import import_module

import rclpy

from fer_ros.bringup.graph_plan import (
    GRAPH_OPTIONS,
    NodePlan,
    describe_plan,
    graph_plan,
    plan_summary,
    ros_arguments,
)
from fer_ros.bringup.lifecycle_manager import LifecycleError
from fer_ros.bringup.local_graph import LocalGraph
from fer_ros.bringup.monitor import PipelineMonitor
from fer_ros.bringup.supervisor import ProcessSupervisor
from fer_ros.core.allocator import keep_freed_memory
from fer_ros.core.profiles import NODE_TYPES, PROFILES, check_profile_values, use_fastdds_profile
from fer_ros.core.threads import apply_thread_budget
from fer_ros.nodes.executors import DEFAULT_EXECUTOR, EXECUTORS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fer_ros_bringup", description=__doc__.split("\n\n")[0])
    options = {o.name: o for o in GRAPH_OPTIONS}  # the launch files' arguments, same texts
    parser.add_argument(
        "profile",
        nargs="?",
        default="loihi",
        help=f"{options['profile'].help}: {', '.join(PROFILES)} (default: loihi)",
    )
    parser.add_argument("--source", help=options["source"].help)
    parser.add_argument("--namespace", default="", help=options["namespace"].help)
    parser.add_argument("--loop", action="store_true", help=options["loop"].help)
    parser.add_argument("--use-sim-time", action="store_true", help=options["use_sim_time"].help)
    parser.add_argument(
        "--log-level",
        default="",
        choices=options["log_level"].choices,
        help=options["log_level"].help,
    )
    parser.add_argument("--behaviour", action="store_true", help=options["behaviour"].help)
    parser.add_argument("--hri", action="store_true", help=options["hri"].help)
    parser.add_argument("--private", action="store_true", help=options["private"].help)
    parser.add_argument("--processes", action="store_true", help="one process per node")
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="--processes: failed restarts in a row of a dead stage before the run ends "
        "with exit code 1 (default 5)",
    )
    parser.add_argument(
        "--executor",
        default=DEFAULT_EXECUTOR,
        choices=EXECUTORS,
        help=f"how the in-process nodes are spun (default: {DEFAULT_EXECUTOR}; see docs)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (0: run until the source ends)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-second summary")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the resolved plan (nodes, executables, parameter files, overrides, "
        "command lines) and exit without starting anything",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of a configuration error"
    )
    return parser.parse_args(argv)


def node_tables() -> dict[str, tuple]:
    """Each node's parameter table, to check a profile before anything starts."""
    return {
        name: getattr(import_module(t.module), t.class_name).parameters
        for name, t in NODE_TYPES.items()
    }


def checked_plan(args: argparse.Namespace) -> list[NodePlan]:
    """The graph to start; ProfileError or ValueError (one line each) when it cannot be."""
    plan = graph_plan(
        args.profile,
        args.source,
        args.namespace,
        loop=True if args.loop else None,
        use_sim_time=args.use_sim_time,
        log_level=args.log_level,
        behaviour=args.behaviour,
        hri=args.hri,
        private=args.private,
    )
    check_profile_values(plan[0].parameter_files[-1], node_tables())
    return plan


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        plan = checked_plan(args)
    except ValueError as error:  # ProfileError included: a bad profile, card or option
        if args.debug:
            raise
        print(f"fer_ros_bringup: {error}", file=sys.stderr, flush=True)
        return 2
    if args.plan:
        print(describe_plan(plan), flush=True)
        return 0
    # A process has one Fast DDS profile: pixels kept on the host need processes of their own.
    in_process = not (args.processes or args.private)
    use_fastdds_profile()
    budget = apply_thread_budget()  # children (--processes) inherit the pools' variables
    budget += f"; {keep_freed_memory()}"
    rclpy.init()
    monitor: PipelineMonitor | None = None
    graph: LocalGraph | None = None
    supervisor: ProcessSupervisor | None = None
    status, report = 0, True
    try:  # from here a signal at any moment is a stop: nothing escapes the finally below
        monitor = PipelineMonitor(namespace=plan[0].namespace, quiet=args.quiet)
        graph = LocalGraph(plan, in_process, args.executor, tools=[monitor])
        print(f"fer_ros: {plan_summary(plan)}; {budget}", flush=True)
        if args.private:
            private = ", ".join(n.name for n in plan if n.environment)
            print(f"fer_ros: private: {private} on shared memory and loopback only", flush=True)
        if not in_process:
            supervisor = ProcessSupervisor(
                plan, spawn_node, graph.manager, monitor, args.max_restarts
            )
            supervisor.start()
        graph.bring_up()
        if supervisor is not None:
            supervisor.start_watching()
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while rclpy.ok() and not monitor.finished:
            if deadline is not None and time.monotonic() > deadline:
                break
            if supervisor is not None:
                supervisor.check()
                if supervisor.gave_up:
                    print(f"fer_ros_bringup: {supervisor.gave_up}", file=sys.stderr, flush=True)
                    status = 1
                    break
            time.sleep(0.1)
        if monitor.stream_ended and monitor.camera_frames == 0:
            print("fer_ros_bringup: the source yielded no frame", file=sys.stderr, flush=True)
            status = 1
    except LifecycleError as error:
        if rclpy.ok():
            print(f"fer_ros: {error}", file=sys.stderr, flush=True)
            status, report = 1, False
        # else a signal stopped the run during bring-up: a stop, not a failure
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a camera or replay run ends
    except Exception:
        if rclpy.ok():
            report = False
            raise
        # SIGTERM (or Ctrl-C) shut the context down in the middle of bring-up: a stop
    finally:
        # Clean up whatever else arrives: Ctrl-C reaches the whole process group, and a
        # second signal in the middle of closing would abort the C++ side mid-destroy.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if monitor is not None and report:
            print(monitor.final_report(), flush=True)
        if supervisor is not None:
            supervisor.close()  # ends its children, started so far
        if graph is not None:
            graph.close()
        rclpy.try_shutdown()
    return status


def spawn_node(plan: NodePlan) -> subprocess.Popen[bytes]:
    """One planned node in a process of its own, started as its executable is (through
    fer_ros.core.entry: a stop while it still imports ends it quietly); in private mode
    with the Fast DDS profile the plan gives it."""
    command = [sys.executable, "-m", "fer_ros.core.entry", plan.executable]
    environment = {**os.environ, **plan.environment}
    return subprocess.Popen([*command, *ros_arguments(plan)], env=environment)


if __name__ == "__main__":
    sys.exit(main())
