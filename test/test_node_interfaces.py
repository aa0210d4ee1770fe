"""What a user of a node executable meets: --help, parameter changes, the device it runs
on, and a node waiting for /clock."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest
from conftest import subprocess_env, wait_for
from node_harness import Probe, destroy, make_node, start
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock

from fer_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from fer_ros.core.profiles import NODE_TYPES
from fer_ros.nodes import inference_node, pipeline_base
from fer_ros.nodes.camera_node import CameraNode
from fer_ros.nodes.inference_node import InferenceNode
from fer_ros.nodes.pipeline_base import OK, WARN


# --- --help -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NODE_TYPES)
def test_every_node_executable_answers_help_with_its_parameters(name, capsys):
    node_type = NODE_TYPES[name]
    module = import_module(node_type.module)
    node_class = getattr(module, node_type.class_name)
    # main() as the console script calls it; --help returns before rclpy is initialised
    module.main([node_type.executable, "--help"])
    text = capsys.readouterr().out
    assert text.startswith(f"usage: ros2 run fer_ros {node_type.executable} ")
    assert f"default name {name!r}" in text
    flat = " ".join(text.split())  # descriptions are wrapped
    for param in node_class.parameters:
        assert f"  {param.name} (" in text
        assert " ".join(param.description.split()) in flat, param.name


def test_help_from_the_executable_exits_0_without_starting_ros():
    result = subprocess.run(
        [sys.executable, "-m", "fer_ros.nodes.camera_node", "--help", "--ros-args", "-p", "x:=1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "usage: ros2 run fer_ros camera_node" in result.stdout
    assert "reconnect_period_s (double, default 1.0)" in result.stdout
    assert "Range 0.1 to 60" in result.stdout
    assert "[INFO]" not in result.stderr  # no node was created


# --- configure-time parameters --------------------------------------------------------------
def test_configure_time_parameters_are_refused_once_configured(ros):
    node = make_node(ros, InferenceNode)
    start(node)
    (result,) = node.set_parameters([Parameter("model_card", value="fer_cnn_rpi.json")])
    assert not result.successful
    assert "model_card: read at configure time" in result.reason
    assert "is active; deactivate and clean up" in result.reason
    assert node.get_parameter("model_card").value == "fer_cnn_cpu.json"
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    (result,) = node.set_parameters([Parameter("accelerator", value="rpi")])
    assert not result.successful and "is inactive; clean up" in result.reason
    (result,) = node.set_parameters([Parameter("use_sim_time", value=False)])
    assert result.successful  # rclpy's own parameter: applies at once, not ours to refuse
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    (result,) = node.set_parameters([Parameter("model_card", value="fer_cnn_rpi.json")])
    assert result.successful
    start(node)
    assert node.backend is not None and node._card.model_id == "fer_cnn_rpi"
    node.release()


# --- declared fallbacks ----------------------------------------------------------------------
def running_status(probe: Probe, node_name: str = "inference") -> object:
    """The first report of the node once it is active."""
    assert wait_for(
        lambda: any(
            kv.key == "state" and kv.value == "active"
            for s in probe.diagnostics_of(node_name)
            for kv in s.values
        ),
        10,
    )
    return next(
        s
        for s in probe.diagnostics_of(node_name)
        if any(kv.key == "state" and kv.value == "active" for kv in s.values)
    )


@pytest.mark.parametrize(
    "parameters",
    [
        # jetson's chain (TensorRT, CUDA) is absent here; the profile allows the CPU
        {"device": "jetson", "allow_cpu_fallback": True},
        # the loihi profile: target auto declares the emulator for a machine without Loihi
        {
            "accelerator": "loihi",
            "backend": "loihi",
            "model_card": "fer_snn_loihi.json",
            "model_export": "snn",
            "loihi.target": "auto",
        },
    ],
    ids=["cpu-fallback", "loihi-emulator"],
)
def test_a_declared_fallback_is_ok_and_names_the_device(ros, parameters):
    node = make_node(ros, InferenceNode, **parameters)
    probe = Probe(ros)
    start(node)
    backend = node.backend
    if not backend.fallback:
        pytest.skip(f"the requested device is present here ({backend.device})")
    status = running_status(probe)
    assert status.level == OK
    assert status.message == (
        f"running on {backend.device} (declared fallback: requested device absent)"
    )
    values = {kv.key: kv.value for kv in status.values}
    assert (values["device"], values["fallback"], values["fallback_declared"]) == (
        backend.device,
        "True",
        "True",
    )
    node.release()


class UndeclaredFallback(OnnxRuntimeBackend):
    """A backend that ran elsewhere than asked although the profile declared no fallback."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.fallback = True


def test_an_undeclared_fallback_is_a_warning(ros, monkeypatch):
    monkeypatch.setattr(inference_node, "backend_class", lambda name: UndeclaredFallback)
    node = make_node(ros, InferenceNode)
    probe = Probe(ros)
    start(node)
    status = running_status(probe)
    assert status.level == WARN
    assert status.message == (
        "requested device absent and no fallback declared; running on CPUExecutionProvider"
    )
    node.release()


# --- use_sim_time without /clock ---------------------------------------------------------------
def test_a_node_on_sim_time_says_once_that_it_waits_for_clock(ros, monkeypatch, capfd):
    monkeypatch.setattr(pipeline_base, "CLOCK_WAIT_S", 1.0)
    camera = make_node(ros, CameraNode, use_sim_time=True)
    probe = Probe(ros)
    text = "use_sim_time is true and no /clock for 1 s: waiting for /clock"
    assert wait_for(lambda: probe.saw_diagnostic("camera", text, WARN), 10)
    count = len(probe.diagnostics_of("camera"))
    assert wait_for(lambda: len(probe.diagnostics_of("camera")) >= count + 2, 15)  # still waiting
    clock = probe.node.create_publisher(Clock, "/clock", 10)
    assert wait_for(lambda: clock.get_subscription_count() > 0, 10)
    clock.publish(Clock(clock=probe.node.get_clock().now().to_msg()))
    assert wait_for(lambda: camera.get_clock().now().nanoseconds > 0, 5)
    # a status sent before /clock arrived may still be on its way: wait for a clean one
    assert wait_for(
        lambda: "waiting for /clock" not in probe.diagnostics_of("camera")[-1].message, 15
    )
    logged = capfd.readouterr().err.splitlines()
    warnings = [line for line in logged if "[WARN]" in line and "waiting for /clock" in line]
    assert len(warnings) == 1, logged  # once, not every diagnostics period
    assert any("[INFO]" in line and "resolved: use_sim_time" in line for line in logged)
    destroy(camera)


def test_wall_time_nodes_do_not_wait_for_clock(ros, monkeypatch):
    monkeypatch.setattr(pipeline_base, "CLOCK_WAIT_S", 0.0)
    camera = make_node(ros, CameraNode)
    probe = Probe(ros)
    assert wait_for(lambda: len(probe.diagnostics_of("camera")) >= 2, 15)
    assert not probe.saw_diagnostic("camera", "waiting for /clock")
    destroy(camera)
