"""Whole graphs on a real face video through a real rclpy / Fast DDS graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_FPS, subprocess_env
from graph_harness import EVERY_FRAME, Graph, tuned_profile
from node_harness import Probe
from sensor_msgs.msg import Image

from fer_msgs.msg import ExpressionArray, FaceArray, Telemetry
from fer_ros.core.model_card import load_model_card
from fer_ros.core.profiles import profile_path

pytestmark = pytest.mark.slow  # whole graphs

DEMO_FRAMES = 72  # single_face.mp4: one face in every frame


def slow_cpu_profile(tmp_path: Path) -> Path:
    """The cpu profile with the camera at TEST_FPS and no stage skipping frames."""
    return tuned_profile(tmp_path, "cpu", camera_fps=TEST_FPS, queue_depth=EVERY_FRAME)


def run_bringup(
    profile: Path, *options: str, own_domain: bool = True, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``fer_ros_bringup PROFILE --quiet`` as users run it, in a clean process; in a DDS
    domain of its own unless a probe of this process listens to it."""
    return subprocess.run(
        [sys.executable, "-m", "fer_ros.bringup.main", str(profile), *options, "--quiet"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=subprocess_env() if own_domain else None,
    )


def frames_with_a_result(report: str) -> int:
    """N from the bringup's final report line 'frames with a result: N (M with faces)'."""
    assert "frames with a result:" in report, report
    return int(report.split("frames with a result:")[1].split()[0])


def test_cpu_graph_labels_nearly_every_frame_that_shows_a_face(ros, media, tmp_path):
    # The graph runs as users run it, in its own clean process (fer_ros_bringup); this
    # test process, which has loaded torch and OpenVINO for other tests, only listens.
    # The same run is the cpu half of test_demo_video_reads_neutral_then_happy.
    probe = Probe(ros)
    images = probe.listen("/image_raw", Image, sensor=True)
    faces = probe.listen("/faces", FaceArray)
    expressions = probe.listen("/expressions", ExpressionArray)
    telemetry = probe.listen("/telemetry", Telemetry)
    result = run_bringup(slow_cpu_profile(tmp_path), own_domain=False)
    assert result.returncode == 0, result.stderr[-2000:]
    # Every demo frame shows a face. The count is the graph's own final report: this test
    # process may be too busy to take every message before the graph exits.
    assert frames_with_a_result(result.stdout) >= 0.95 * DEMO_FRAMES, result.stdout
    assert images and expressions  # the topics are visible to other ROS 2 processes
    assert all(len(f.faces) <= 1 for f in faces)
    assert {t.accelerator for t in telemetry} == {"cpu"}
    assert all(e.accelerator == "cpu" and e.model_id == "fer_cnn_cpu" for e in expressions)
    assert_neutral_then_happy(course_of(result.stdout))


def test_loihi_graph_classifies_spike_trains_with_modelled_energy(ros, media):
    card = load_model_card("fer_snn_loihi.json")
    if "snn" not in card.files:
        pytest.skip("the SNN export of fer_snn_loihi is not committed")
    graph = Graph(ros, profile_path("loihi"), fps=TEST_FPS)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    telemetry = probe.listen("telemetry", Telemetry)
    graph.run(timeout_s=120)
    graph.release()
    labelled = [e for e in expressions if e.expressions]
    assert labelled, "no expression from the Loihi graph"
    assert all(e.accelerator == "loihi" for e in expressions)
    t = telemetry[-1]
    assert t.backend == "loihi" and "emulator" in t.device  # no NxSDK here
    assert t.spikes > 0 and t.synaptic_ops > 0 and len(t.layer_names) == len(t.layer_spikes)
    # No Loihi chip here: energy must be the model, and must say so.
    assert t.figure_source == Telemetry.SOURCE_MODELLED and t.figure_model
    assert t.energy_mj > 0


def test_bringup_runs_one_process_per_node_and_ends_with_the_video(media, tmp_path):
    profile = slow_cpu_profile(tmp_path)
    result = run_bringup(profile, "--processes")
    assert result.returncode == 0, result.stderr[-2000:]
    assert frames_with_a_result(result.stdout) >= 0.95 * DEMO_FRAMES, result.stdout


def test_bringup_reports_a_profile_that_cannot_configure(tmp_path):
    profile = tmp_path / "broken.yaml"
    profile.write_text("/**/inference:\n  ros__parameters:\n    model_card: missing_card.json\n")
    result = run_bringup(profile, timeout_s=60)
    assert result.returncode == 1
    assert "/inference failed to configure" in result.stderr
    assert "missing_card.json" in result.stderr


def course_of(report: str) -> list[str]:
    """The labels of the bringup's 'course (largest face):' line, in order."""
    line = next(x for x in report.splitlines() if x.startswith("course (largest face):"))
    course = line.split(":", 1)[1].strip()
    return [run.split(" (")[0] for run in course.split(", then ")]


def assert_neutral_then_happy(course: list[str]) -> None:
    # single_face.mp4: a man looks at the camera with a still face, then smiles broadly
    # (labelled frame by frame in fer_ros.compare.real_world). Every frame is classified.
    assert course[0] == "neutral" and course[-1] == "happy", course
    assert len(course) <= 3, course  # no flicker between other classes on the way


def test_demo_video_reads_neutral_then_happy(media, tmp_path):
    """The loihi graph; the cpu graph's course is checked on its run above."""
    card = load_model_card("fer_snn_loihi.json")
    if "neutral" not in card.classes:
        pytest.skip(f"{card.model_id} has no neutral class")
    path = tuned_profile(tmp_path, "loihi", camera_fps=TEST_FPS, queue_depth=EVERY_FRAME)
    result = run_bringup(path, timeout_s=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_neutral_then_happy(course_of(result.stdout))
