"""Stopping a graph with SIGINT or SIGTERM is clean: exit 0, no traceback, no noise."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

NOISE = ("Traceback", "never retrieved", "terminate called", "Segmentation fault")
RUNS = {"one process": ([], 6), "--processes": (["--processes"], 4)}


def start_and_stop(extra: list[str], stop: signal.Signals) -> tuple[int, str]:
    command = [sys.executable, "-m", "fer_ros.bringup", "cpu", "--loop", *extra]
    graph = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert graph.stdout is not None
    deadline = time.monotonic() + 60
    for line in graph.stdout:  # the per-second summary: results are flowing
        if (line.startswith("[") and " frames " in line) or time.monotonic() > deadline:
            break
    graph.send_signal(stop)
    rest, _ = graph.communicate(timeout=60)
    return graph.returncode, rest


@pytest.mark.parametrize("mode", list(RUNS))
def test_repeated_starts_and_stops_are_clean(mode: str):
    extra, runs = RUNS[mode]
    for i in range(runs):
        stop = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
        code, output = start_and_stop(extra, stop)
        noise = [line for line in output.splitlines() if any(n in line for n in NOISE)]
        assert code == 0 and not noise, f"run {i} ({stop.name}): exit {code}\n{output[-3000:]}"
        assert "frames with a result:" in output  # the final report was printed
