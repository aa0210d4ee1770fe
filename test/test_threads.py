"""The per-process thread budget reaches numpy's BLAS pool (ROS-free)."""

import subprocess
import sys

SCRIPT = """
import numpy  # loads OpenBLAS with its default pool (one thread per core)
from threadpoolctl import threadpool_info
from fer_ros.core.threads import apply_thread_budget
line = apply_thread_budget({threads})
# numpy's OpenBLAS pool (OpenCV's wheel brings a single-threaded OpenBLAS of its own)
print(max(p["num_threads"] for p in threadpool_info()), line)
"""


def run(threads, env_budget=""):
    env = {"PATH": "/usr/bin:/bin", "FER_ROS_THREADS": env_budget}
    env.update({k: v for k, v in __import__("os").environ.items() if k.startswith("PYTHON")})
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(threads=threads)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return out.stdout


def test_default_budget_is_one_thread_per_pool():
    out = run(None)
    assert out.startswith("1 "), out
    assert "thread budget 1" in out


def test_the_environment_sets_another_budget_capped_by_the_usable_cores():
    import os

    cores = len(os.sched_getaffinity(0))
    out = run(None, env_budget="64")
    assert out.startswith(f"{cores} "), out
