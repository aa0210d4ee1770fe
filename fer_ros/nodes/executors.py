"""How a process spins its nodes, chosen by measurement (docs/performance.md).

Each pipeline stage does its heavy work on its own worker thread (and the camera decodes
in its timer), so the executor only dispatches: a subscription callback appends to a
stage's queue. rclpy's MultiThreadedExecutor spends far more Python per dispatch than
that (wait-set rebuilds, futures, a thread pool, callback-group checks) and holds the
interpreter lock the workers need; one SingleThreadedExecutor per process measured
lower and steadier latency on 2 cores. rclpy's EventsExecutor was tried too and is not
offered: a service client called from another thread (the lifecycle manager) blocked
for good while it spun.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import rclpy
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)

from fer_ros.core.threads import name_os_thread

EXECUTORS = ("single", "multi")
DEFAULT_EXECUTOR = "single"
MULTI_THREADS = 4  # the 0.1 default, kept for comparison


def make_executor(kind: str = DEFAULT_EXECUTOR) -> SingleThreadedExecutor | MultiThreadedExecutor:
    """An executor of ``kind`` (one of :data:`EXECUTORS`)."""
    if kind == "single":
        return SingleThreadedExecutor()
    if kind == "multi":
        return MultiThreadedExecutor(num_threads=MULTI_THREADS)
    raise ValueError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}")


_rclpy_handles_sigint = threading.Event()


def _sigint(signum: int, frame: Any) -> None:
    """Python's SIGINT handler: a KeyboardInterrupt only until rclpy.init has returned."""
    if not _rclpy_handles_sigint.is_set():
        raise KeyboardInterrupt


def init_rclpy(args: list[str] | None = None) -> None:
    """``rclpy.init``, after which Ctrl-C raises no KeyboardInterrupt.

    rclpy's own SIGINT handler shuts the context down (spinning then ends with
    ExternalShutdownException) and then calls the Python handler installed before it, by
    default one that raises KeyboardInterrupt in the main thread wherever it is: half-way
    through constructing an rclpy Task, that printed "Exception ignored in Future.__del__
    ... AttributeError: 'Task' object has no attribute '_exception'" at exit (1 Ctrl-C in
    10 under ros2 launch). The handler installed here raises only before rclpy.init has
    returned, when nothing else would stop the process. It must be installed before
    rclpy.init: signal.signal afterwards would replace rclpy's handler."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _sigint)
    rclpy.init(args=args)
    _rclpy_handles_sigint.set()


def spin_in_background(executor: Any, name: str = "executor") -> threading.Thread:
    """Spin ``executor`` on a daemon thread until it is shut down."""
    thread = threading.Thread(target=spin_quietly, args=(executor,), name=name, daemon=True)
    thread.start()
    return thread


def spin_quietly(executor: Any) -> None:
    """Spin until shutdown; Ctrl-C and context shutdown end it without a traceback.

    A signal shuts the context down at once, so a callback already running (a camera
    tick publishing) can fail with "context is invalid": that is the shutdown, not an
    error. While the context is valid, exceptions propagate."""
    name_os_thread(threading.current_thread().name)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if executor.context.ok():
            raise
