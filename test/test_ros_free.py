"""The ROS-free layers' tests run where ROS 2 is not installed: conftest.py imports no
rclpy, and the ``ros`` fixture skips the tests that need it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO

# Quick tests of fer_ros.core, snn, power and backends, and the ros fixture's skip below.
ROS_FREE_TESTS = [
    "test/test_pipeline_parts.py",
    "test/test_snn_params.py",
    "test/test_power.py",
    "test/test_backends_committed.py",
    "test/test_ros_free.py::test_the_ros_fixture_skips_where_rclpy_is_missing",
]


def test_ros_free_tests_run_without_rclpy():
    # pytest in a fresh interpreter in which rclpy, rcl_interfaces and every *_msgs /
    # *_srvs package are unimportable, as on a machine without ROS 2.
    script = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        class NoRos(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in ("rclpy", "rcl_interfaces") or top.endswith(("_msgs", "_srvs")):
                    raise ImportError(f"{name} is made unimportable by this test")
                return None

        sys.meta_path.insert(0, NoRos())
        import pytest

        code = pytest.main(["-q", "-p", "no:cacheprovider", "-rs", *TESTS])
        assert "rclpy" not in sys.modules
        sys.exit(code)
        """
    ).replace("TESTS", repr(ROS_FREE_TESTS))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "1 skipped" in summary, done.stdout[-4000:]
    assert "needs ROS 2 (rclpy)" in done.stdout, done.stdout[-4000:]


def test_the_ros_fixture_skips_where_rclpy_is_missing(ros):
    """Here, an executor; in the interpreter above, skipped (not an error)."""
    assert ros.get_nodes() == []
