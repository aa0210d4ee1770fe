"""SROS2 / DDS-Security: with config/sros2_policy.xml an offboard enclave reads expressions
but cannot read frames, crops or spike trains.

Runs where the middleware has the security libraries and sros2 (``ros2 security``) is
installed; skipped elsewhere with the reason. The PyPI Fast DDS has no security libraries,
so this is found by trying: a node started with ROS_SECURITY_ENABLE=true fails with
"This Fast DDS version doesn't have the security libraries".
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_ros.core.paths import config_dir

MISSING_LIBRARIES = "doesn't have the security libraries"
NODE = """
import rclpy
rclpy.init(args=["probe", "--ros-args", "--enclave", "/probe"])
rclpy.create_node("probe")
"""


def secure_env(keystore: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ROS_SECURITY_ENABLE": "true",
        "ROS_SECURITY_STRATEGY": "Enforce",
        "ROS_SECURITY_KEYSTORE": str(keystore),
    }


@pytest.fixture(scope="module")
def security_available(tmp_path_factory) -> None:
    """Skip, with the middleware's own words, where DDS-Security cannot run."""
    keystore = tmp_path_factory.mktemp("probe_keystore")
    (keystore / "enclaves" / "probe").mkdir(parents=True)  # empty: only the rmw's answer counts
    probe = subprocess.run(
        [sys.executable, "-c", NODE],
        env=secure_env(keystore),
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = [line for line in probe.stderr.splitlines() if MISSING_LIBRARIES in line]
    if said:
        pytest.skip(f"the middleware has no DDS-Security: {said[0].split(': ')[-1].strip()}")
    if importlib.util.find_spec("sros2") is None or shutil.which("ros2") is None:
        pytest.skip("needs sros2 (ros2 security) to create the keystore")


PUBLISHER = """
import sys, time, rclpy
from sensor_msgs.msg import Image
from fer_msgs.msg import ExpressionArray
rclpy.init(args=["p", "--ros-args", "--enclave", sys.argv[1]])
node = rclpy.create_node("secure_" + sys.argv[2])
msg_type = Image if sys.argv[2] == "image_raw" else ExpressionArray
publisher = node.create_publisher(msg_type, sys.argv[2], 10)
end = time.monotonic() + 15
while time.monotonic() < end:
    publisher.publish(msg_type())
    rclpy.spin_once(node, timeout_sec=0.1)
"""
LISTENER = """
import json, time, rclpy
from sensor_msgs.msg import Image
from fer_msgs.msg import ExpressionArray
rclpy.init(args=["l", "--ros-args", "--enclave", "/fer_ros/offboard"])
node = rclpy.create_node("offboard_listener")
counts = {"image_raw": 0, "expressions": 0}
node.create_subscription(ExpressionArray, "expressions", lambda _: counts.__setitem__(
    "expressions", counts["expressions"] + 1), 10)
try:  # Enforce: a subscription the permissions deny is refused where it is created
    node.create_subscription(Image, "image_raw", lambda _: counts.__setitem__(
        "image_raw", counts["image_raw"] + 1), 10)
except Exception as error:
    counts["image_raw_refused"] = str(error)
end = time.monotonic() + 12
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
print(json.dumps(counts), flush=True)
"""


def test_an_offboard_enclave_reads_expressions_but_no_pixels(security_available, tmp_path):
    keystore = tmp_path / "keystore"
    enclaves = ["/fer_ros/pixels", "/fer_ros/results", "/fer_ros/offboard"]
    for command in (
        ["create_keystore", str(keystore)],
        ["generate_artifacts", "-k", str(keystore), "-p", str(config_dir() / "sros2_policy.xml"),
         "-e", *enclaves],
    ):  # fmt: skip
        done = subprocess.run(
            ["ros2", "security", *command],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    env = secure_env(keystore)
    sources = (("/fer_ros/pixels", "image_raw"), ("/fer_ros/results", "expressions"))
    publishers = [
        subprocess.Popen([sys.executable, "-c", PUBLISHER, enclave, topic], env=env)
        for enclave, topic in sources
    ]
    try:
        listener = subprocess.run(
            [sys.executable, "-c", LISTENER], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        for publisher in publishers:
            publisher.terminate()
            publisher.wait(timeout=20)
    counts = json.loads(listener.stdout.strip().splitlines()[-1])
    assert counts["expressions"] > 0, (counts, listener.stderr[-2000:])
    assert counts["image_raw"] == 0, counts
