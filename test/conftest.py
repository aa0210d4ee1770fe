"""Shared fixtures: an isolated ROS 2 domain, rclpy, real demo media and model cards.

Nothing here imports rclpy at import time: the ROS-free layers' tests (core, snn, power,
backends, training) run where ROS 2 is not installed; the ``ros`` fixture skips there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# One test process loads torch, OpenVINO and nengo: their native thread pools would
# otherwise compete with the pipeline's threads for the two cores and stall it.
for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_pool, "1")

REPO = Path(__file__).resolve().parents[1]
# Test this checkout (code, config and models), also in node subprocesses.
os.environ.setdefault("FER_ROS_SHARE", str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
# Emulator tables and compiled kernels cached by this run only (the first Loihi load
# builds and compiles, later ones read).
os.environ.setdefault("FER_ROS_CACHE", tempfile.mkdtemp(prefix="fer_ros_cache_"))
# A private DDS domain on loopback, set before rclpy creates any participant.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from fer_ros.core.demo_media import feat_media_dir  # noqa: E402
from fer_ros.core.paths import DATA_ENV, data_path  # noqa: E402
from fer_ros.core.profiles import use_fastdds_profile  # noqa: E402

use_fastdds_profile()


@pytest.fixture(scope="session")
def media() -> Path:
    try:
        return feat_media_dir()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def ck_plus_path() -> Path:
    path = data_path()  # $FER_ROS_DATA, else shared/data beside the checkout
    if not path.is_file():
        pytest.skip(f"CK+ dev set not found at {path} (set {DATA_ENV})")
    return path


@pytest.fixture
def ros() -> Iterator[Any]:
    """rclpy initialised, with a MultiThreadedExecutor spinning in the background; the
    test is skipped where rclpy cannot be imported."""
    # ImportError too: an installed rclpy without its middleware library fails that way
    rclpy = pytest.importorskip("rclpy", reason="needs ROS 2 (rclpy)", exc_type=ImportError)
    from node_harness import BackgroundExecutor

    rclpy.init()
    executor = BackgroundExecutor()
    try:
        yield executor
    finally:
        try:
            executor.stop()
        finally:
            rclpy.try_shutdown()


# Whole graphs in tests run their camera at this rate: the 30 FPS target is measured by
# benchmarks/bench_pipeline.py on a quiet machine, not asserted in a shared test process.
TEST_FPS = 10.0


def subprocess_env() -> dict[str, str]:
    """Environment for graphs in child processes: a domain of their own."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str((int(os.environ["ROS_DOMAIN_ID"]) + 50) % 232)
    return env


def wait_for(
    condition: Callable[[], bool], timeout_s: float = 10.0, period_s: float = 0.02
) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return condition()
