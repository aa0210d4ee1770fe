"""Profile parameters -> backend name, BackendSettings and PowerConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_ros.backends.settings import (
    flatten,
    nest,
    profile_parameters,
    settings_from_parameters,
)
from fer_ros.core.model_card import ModelCard

CARD = ModelCard("tiny", ("a", "b"), files={"tflite_int8": "t.tflite"})

CORAL_YAML = """
/**/camera:
  ros__parameters:
    source: demo
/**/inference:
  ros__parameters:
    accelerator: coral
    backend: litert
    model_card: fer_cnn_cpu.json
    model_export: tflite_int8
    device: edgetpu
    num_threads: 4
    allow_cpu_fallback: true
    litert:
      edgetpu_export: tflite_int8_edgetpu
    power:
      source: auto
      model: coral_usb
      fallback_model: rpi4
"""


def test_nested_yaml_parameters(tmp_path: Path):
    path = tmp_path / "coral.yaml"
    path.write_text(CORAL_YAML)
    params = profile_parameters(path)
    backend, settings, power = settings_from_parameters(params, card=CARD)
    assert backend == "litert"
    assert (settings.model_export, settings.device, settings.num_threads) == (
        "tflite_int8",
        "edgetpu",
        4,
    )
    assert settings.allow_cpu_fallback is True
    # the profile's option, and the node's default for the one it leaves out
    assert settings.options == {"edgetpu_export": "tflite_int8_edgetpu", "edgetpu_library": ""}
    assert (power.source, power.model, power.fallback_model) == ("auto", "coral_usb", "rpi4")
    assert power.active_w is None and power.domains == ("package",)


def test_flat_ros_parameters_and_defaults():
    params = {
        "backend": "openvino",
        "device": "MYRIAD,NPU",
        "openvino.config.PERFORMANCE_HINT": "THROUGHPUT",
        "openvino.static_batch": True,
        "loihi.target": "sim",  # another backend's option: not passed on
        "power.source": "model",
        "power.model": "ncs2",
        "power.rails": "VDD_IN, VDD_SOC",
        "power.active_w": 0.0,
    }
    backend, settings, power = settings_from_parameters(params, card=CARD)
    assert backend == "openvino" and settings.model_export == "openvino_fp16"
    assert settings.options == {"config": {"PERFORMANCE_HINT": "THROUGHPUT"}, "static_batch": True}
    assert "target" not in settings.options
    assert settings.num_threads == 1 and settings.allow_cpu_fallback is False
    assert power.rails == ("VDD_IN", "VDD_SOC") and power.active_w is None


def test_bad_parameters_fail_fast(tmp_path: Path):
    with pytest.raises(ValueError, match="backend 'tensorflow'"):
        settings_from_parameters({"backend": "tensorflow"}, card=CARD)
    with pytest.raises(ValueError, match="not a boolean"):
        settings_from_parameters({"allow_cpu_fallback": "maybe"}, card=CARD)
    with pytest.raises(ValueError, match="power model"):
        settings_from_parameters({"power": {"model": "tpu"}}, card=CARD)
    path = tmp_path / "p.yaml"
    path.write_text(CORAL_YAML)
    with pytest.raises(KeyError, match="no 'detector' node"):
        profile_parameters(path, node="detector")


def test_flatten_and_nest_round_trip():
    nested = {"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2]}
    assert flatten(nested) == {"a.b": 1, "a.c.d": "x", "e": [1, 2]}
    assert nest(flatten(nested)) == nested


def test_a_backend_without_model_export_loads_its_own_default_export():
    """A litert profile naming no export gets the .tflite one, not the node's old "onnx"."""
    backend, settings, _ = settings_from_parameters({"backend": "litert"})
    assert backend == "litert" and settings.model_export == "tflite_fp32"
    assert settings.card.file(settings.model_export).suffix == ".tflite"
