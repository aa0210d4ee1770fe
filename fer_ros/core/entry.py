"""Where fer_ros's ROS executables start: setup.py's console scripts point here, and
``fer_ros_bringup --processes`` starts its stages with ``python -m fer_ros.core.entry``.

An executable's own module imports rclpy, numpy and its runtimes before any of its code
runs. A SIGINT (Ctrl-C) in that time would end it with a KeyboardInterrupt traceback;
here the import runs inside :func:`start`, so such a stop ends it quietly with exit code
130, as a shell reports a process ended by Ctrl-C. (SIGTERM that early ends the process
silently by its default action, 143 in a shell; once rclpy.init has run, its handlers
turn either signal into a normal shutdown.) Standard library only, so nothing heavy is
imported before the guard is in place.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

SIGINT_EXIT = 130  # 128 + SIGINT
NODE_PACKAGE = "fer_ros.nodes"  # each node executable is <package>.<executable>:main
TARGETS = {  # the other executables that run ROS
    "fer_ros_bringup": "fer_ros.bringup.main:main",
    "fer_ros_lifecycle_manager": "fer_ros.bringup.lifecycle_manager:main",
    "fer_ros_record": "fer_ros.bringup.bag_cli:record_main",
    "fer_ros_replay": "fer_ros.bringup.bag_cli:replay_main",
}


def target(executable: str) -> str:
    """``module:function`` of an executable (KeyError for an unknown one)."""
    if executable in TARGETS:
        return TARGETS[executable]
    if executable.endswith("_node") and executable.isidentifier():
        return f"{NODE_PACKAGE}.{executable}:main"
    raise KeyError(executable)


def start(main: str) -> int:
    """Import ``module:function`` and run it; 130 when SIGINT stops either quietly."""
    try:
        module, function = main.split(":")
        code = getattr(import_module(module), function)()
    except KeyboardInterrupt:  # a stop before the executable's own handling took over
        return SIGINT_EXIT
    except ImportError as error:
        if _interrupted(error):  # rclpy's C library import turns it into "init failed"
            return SIGINT_EXIT
        raise
    return code or 0


def _interrupted(error: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is among the causes of ``error``."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def __getattr__(name: str) -> Callable[[], int]:
    """``fer_ros.core.entry:<executable>``: setup.py's console scripts."""
    try:
        main = target(name)
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

    def run() -> int:
        return start(main)

    run.target = main  # type: ignore[attr-defined]
    return run


if __name__ == "__main__":  # python -m fer_ros.core.entry <executable> [arguments]
    executable = sys.argv.pop(1)
    sys.exit(start(target(executable)))
