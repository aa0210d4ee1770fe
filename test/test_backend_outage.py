"""A backend child outage is one ERROR and one recovery line; a backend child whose
node process dies (kill -9) ends by itself, quietly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for
from node_harness import Probe, make_node, start
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from fer_msgs.msg import ExpressionArray, Face, FaceArray
from fer_ros.nodes.image_codec import array_to_image
from fer_ros.nodes.inference_node import InferenceNode


def one_face(node: InferenceNode) -> FaceArray:
    crop = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    face = Face(
        face_id=1,
        roi=RegionOfInterest(width=100, height=100),
        crop=array_to_image(crop, "mono8", Header()),
    )
    stamp = node.get_clock().now().to_msg()  # now: no latency alarm from an old stamp
    return FaceArray(header=Header(stamp=stamp), faces=[face])


def test_a_backend_outage_logs_one_error_and_one_recovery_line(ros, capfd):
    node = make_node(ros, InferenceNode, backend_process=True, backend_restart_delay_s=2.0)
    start(node)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    faces = probe.publisher("faces", FaceArray)
    faces.publish(one_face(node))
    assert wait_for(lambda: len(expressions) == 1, 10)
    os.kill(node.backend.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while node.backend.restarts == 0 or len(expressions) < 2:  # frames at 10 Hz throughout
        assert time.monotonic() < deadline, "the backend never came back"
        faces.publish(one_face(node))
        time.sleep(0.1)
    assert node.frames_lost >= 10  # an outage of a few seconds, several diagnostics periods
    # the ERROR is published by the next 1 Hz report, which may come after the recovery
    assert wait_for(lambda: probe.saw_diagnostic("inference", "backend down", b"\x02"), 10)

    def cleared() -> bool:
        statuses = probe.diagnostics_of("inference")
        return bool(statuses) and "backend down" not in statuses[-1].message

    assert wait_for(cleared, 15)
    lines = capfd.readouterr().err.splitlines()
    errors = [line for line in lines if "[ERROR]" in line and "[inference]" in line]
    assert len(errors) == 1 and "backend down" in errors[0], errors
    recovered = [line for line in lines if "resolved: backend down" in line]
    assert len(recovered) == 1, lines
    node.release()


# A node's process: an isolated cpu backend answering batches of argv[1] faces in a loop.
OWNER = """
import sys
import numpy as np
from fer_ros.backends.isolated import IsolatedBackend
from fer_ros.backends.settings import settings_from_parameters
from fer_ros.core.preprocessing import preprocess_crops

if __name__ == "__main__":
    name, settings, _ = settings_from_parameters({})
    card = settings.card
    crops = np.zeros((int(sys.argv[1]), card.input_height, card.input_width), np.uint8)
    batch = preprocess_crops(crops, card.preprocessing, card.canny)
    backend = IsolatedBackend(name, settings)
    backend.infer(batch)
    print(backend.pid, flush=True)
    while True:
        backend.infer(batch)
"""


def ended(pid: int) -> int | None:
    """The exit status of ``pid`` once it has ended (-1 when already reaped), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return -1
    if fields[0] != "Z":
        return None
    return int(fields[-1])  # exit_code, kept until its new parent reaps it (Linux >= 3.5)


@pytest.mark.parametrize(
    ("faces", "when"),
    [(1000, "answering a request (a broken pipe)"), (1, "between requests (end of file)")],
)
def test_the_backend_child_of_a_killed_process_ends_quietly(faces, when):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(faces)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(owner.stdout.readline())
        time.sleep(0.2)  # 1000 faces take ~0.5 s (AVX-512 VNNI): the child is computing
    finally:
        owner.kill()
        owner.wait()
    # it notices when it writes its answer: 1000 faces take seconds on a loaded AVX2 core
    assert wait_for(lambda: ended(child) is not None, 30), f"child {child} outlived its parent"
    assert ended(child) in (0, -1), f"exit status {ended(child)} {when}"
    output = owner.stderr.read()  # the child wrote to the same stream, now closed
    assert "Traceback" not in output and "Error" not in output, output
