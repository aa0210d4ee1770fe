"""One thread budget per process for the native pools the graph loads.

Every stage of a graph already runs in threads of its own (executor, input workers, DDS);
on a robot's few cores, numpy's OpenBLAS (one thread per core in every process), OpenMP
runtimes and OpenCV's pool then compete with them and with the robot's other work. Seen on
a 2-core machine: the loihi graph spent a third of its CPU time in the kernel and dropped
frames until BLAS ran one thread. So a graph process gives each pool ``threads`` threads
(default 1: the stages are the parallelism), through threadpoolctl for pools already
loaded and the pools' environment variables for those loaded later (a video file's
FFmpeg decoder takes OpenCV's count, see core/frame_sources.py). ONNX Runtime, LiteRT
and OpenVINO take their thread counts from the profile's ``num_threads`` instead.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ENV_BUDGET = "FER_ROS_THREADS"  # overrides the default budget of a graph process
PR_SET_NAME = 15  # linux/prctl.h


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a cgroup)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_budget() -> int:
    value = os.environ.get(ENV_BUDGET, "")
    if value:
        budget = int(value)
        if budget < 1:
            raise ValueError(f"{ENV_BUDGET}={value!r}: want a positive thread count")
        return min(budget, usable_cores())
    return 1


def apply_thread_budget(threads: int | None = None) -> str:
    """Limit the native pools of this process to ``threads`` each; returns a log line."""
    threads = default_budget() if threads is None else max(1, min(threads, usable_cores()))
    for name in POOL_VARIABLES:  # pools not loaded yet read these when they start
        os.environ[name] = str(threads)
    limited = []
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
        from threadpoolctl import threadpool_info

        limited = sorted({p["internal_api"] for p in threadpool_info()})
    except ImportError:  # an optional dependency: the variables above still apply
        pass
    try:
        import cv2

        cv2.setNumThreads(threads)
        limited.append("opencv")
    except ImportError:
        pass
    pools = ", ".join(limited) or "none loaded yet"
    return f"thread budget {threads} per native pool ({pools}; {usable_cores()} usable cores)"


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux keeps 15 bytes), as ``top -H`` and
    /proc/<pid>/task/<tid>/comm show it, so each stage's CPU time can be read from outside
    the process (benchmarks/bench_pipeline.py). Python 3.11 names only its own objects."""
    if threading.current_thread() is threading.main_thread():
        return  # the main thread's name is the process's, as ps and pgrep show it
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: names are a convenience
        pass
