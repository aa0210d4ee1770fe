"""fer_ros_bringup --processes from outside: a killed stage comes back, a frozen one is
reported, both on /diagnostics naming the stage (issue #21)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TEST_FPS, wait_for
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from graph_harness import tuned_profile
from node_harness import Probe

from fer_msgs.msg import ExpressionArray

pytestmark = pytest.mark.slow  # a whole graph in four processes


def children(pid: int) -> dict[str, int]:
    """Child pid by the node executable it runs (``-m fer_ros.core.entry <name>_node``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and cmdline[1:3] == [b"-m", b"fer_ros.core.entry"]:
            found[cmdline[3].decode()] = int(entry.name)
    return found


def statuses(messages: list[DiagnosticArray], stage: str) -> list[DiagnosticStatus]:
    return [s for m in list(messages) for s in m.status if s.name == f"fer_ros_bringup: {stage}"]


def test_killed_and_frozen_stages_are_seen_from_outside(ros, media, tmp_path):
    probe = Probe(ros)
    expressions = probe.listen("/expressions", ExpressionArray)
    diagnostics = probe.listen("/diagnostics", DiagnosticArray, depth=200)
    profile = tuned_profile(tmp_path, "cpu", camera_fps=TEST_FPS)
    graph = subprocess.Popen(
        [sys.executable, "-m", "fer_ros.bringup.main", str(profile), "--processes", "--loop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(lambda: len(expressions) > 5, 60), "the graph never labelled a frame"
        pids = children(graph.pid)
        assert {"inference_node", "face_detection_node"} <= set(pids), pids

        # kill -9: ERROR naming the stage, then expressions again
        os.kill(pids["inference_node"], signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(
            lambda: any(
                s.level == DiagnosticStatus.ERROR for s in statuses(diagnostics, "inference")
            ),
            10,
        ), "no ERROR on /diagnostics for the dead inference stage"
        before = len(expressions)
        assert wait_for(lambda: len(expressions) > before + 3, 30), "no expressions after restart"
        back_s = time.monotonic() - killed
        assert wait_for(
            lambda: statuses(diagnostics, "inference")[-1].level == DiagnosticStatus.OK, 10
        )
        assert children(graph.pid)["inference_node"] != pids["inference_node"]

        # kill -STOP: reported as not answering while frozen, cleared after kill -CONT
        frozen = children(graph.pid)["face_detection_node"]
        os.kill(frozen, signal.SIGSTOP)
        try:
            assert wait_for(
                lambda: "does not answer" in statuses(diagnostics, "face_detection")[-1].message,
                10,
            ), "a frozen stage was not reported"
        finally:
            os.kill(frozen, signal.SIGCONT)
        assert wait_for(
            lambda: statuses(diagnostics, "face_detection")[-1].level == DiagnosticStatus.OK, 10
        ), "the stale report did not clear"
    finally:
        graph.send_signal(signal.SIGINT)
        out, _ = graph.communicate(timeout=60)
    assert graph.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    print(f"expressions back {back_s:.1f} s after kill -9 of the inference process")
