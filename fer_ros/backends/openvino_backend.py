"""OpenVINO backend: Intel CPU, GPU, NPU, and the NCS2 (MYRIAD, OpenVINO <= 2022.3 only).

``device`` is an OpenVINO device name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``, ``MYRIAD``) or a
comma-separated preference list of them (``MYRIAD,NPU``), tried in order; virtual devices
(``AUTO``, ``AUTO:NPU,CPU``, ``HETERO:...``, ``MULTI:...``) are passed to OpenVINO whole.
The model is an IR (``.xml`` with its ``.bin``, FP16 or INT8) or anything ``read_model``
reads. The device reported is what the compiled model says executes it
(``EXECUTION_DEVICES``), not what was asked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from importlib import import_module
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from fer_ros.backends.base import (
    BackendSettings,
    BackendUnavailable,
    InferenceResult,
    InputKind,
)
from fer_ros.backends.crops import CropModel
from fer_ros.core.options import Param

_log = logging.getLogger(__name__)

VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
MYRIAD_LAST_RELEASE = (2022, 3)  # the MYRIAD plugin was removed from OpenVINO 2023.0 on
STATIC_SHAPE_DEVICES = ("NPU", "MYRIAD")  # compile for a fixed batch; feed chunks
DEVICE_HINTS = {
    "NPU": "install the Intel NPU driver (github.com/intel/linux-npu-driver) and give the "
    "user access to /dev/accel/accel0 (render group)",
    "GPU": "install the Intel GPU compute runtime (intel-opencl-icd) and add the user to "
    "the render group",
    "MYRIAD": "plug in the NCS2 and install its udev rule (97-myriad-usbboot.rules, "
    "docs/accelerators.md)",
}


class OpenVinoBackend:
    """A model compiled by OpenVINO for the first available requested device."""

    name: ClassVar[str] = "openvino"
    input_kind: ClassVar[InputKind] = InputKind.CROPS
    options: ClassVar[tuple[Param, ...]] = (
        Param(
            "static_batch",
            False,
            "Compile for batch 1 and feed faces one at a time (NPU and "
            "MYRIAD need static shapes and get it anyway)",
        ),
    )

    def __init__(self, settings: BackendSettings) -> None:
        ov = _import_openvino()
        release = openvino_release(_ov_attr(ov, "get_version")())
        self._runtime = f"openvino {_ov_attr(ov, 'get_version')()}"
        self._crops = CropModel(settings)
        path = self._crops.path()
        if path.suffix == ".xml" and not path.with_suffix(".bin").is_file():
            raise BackendUnavailable(f"IR weights missing: {path.with_suffix('.bin')}")
        core = _ov_attr(ov, "Core")()
        available = list(core.available_devices)
        requested = requested_devices(settings.device)
        chosen, reasons = None, []
        for device in requested:
            reason = unavailable_reason(device, available, release)
            if reason is None:
                chosen = device
                break
            reasons.append(reason)
        if chosen is None:
            if not settings.allow_cpu_fallback:
                raise BackendUnavailable(
                    f"openvino {'.'.join(map(str, release))} (devices: {', '.join(available)}): "
                    + "; ".join(reasons)
                )
            chosen = "CPU"
            _log.warning("openvino: %s; running on CPU instead", "; ".join(reasons))
        self._fallback = chosen != requested[0]

        model = core.read_model(str(path))
        self._static = chosen.split(".")[0] in STATIC_SHAPE_DEVICES or bool(
            settings.options.get("static_batch", False)
        )
        if not self._static:
            self._static = not _make_batch_dynamic(ov, model)
        config = _compile_config(chosen, settings.num_threads, settings.options)
        try:
            self._compiled = core.compile_model(model, chosen, config)
        except RuntimeError as exc:
            raise BackendUnavailable(f"openvino cannot compile {path} for {chosen}: {exc}") from exc
        self._virtual = chosen.split(":")[0] in VIRTUAL_DEVICES
        self._device = self._execution_devices()
        self._request = self._compiled.create_infer_request()
        self._output = self._compiled.output(0)
        shape = self._compiled.input(0).get_partial_shape()
        self._batch = shape[0].get_length() if shape[0].is_static else None

    @property
    def runtime(self) -> str:
        return self._runtime

    @property
    def device(self) -> str:
        # AUTO may start on the CPU while the target device compiles, then switch.
        if self._virtual and self._compiled is not None:
            self._device = self._execution_devices()
        return self._device

    def _execution_devices(self) -> str:
        # "(CPU)": AUTO's CPU serving the first inferences; it is still the CPU running.
        devices = self._compiled.get_property("EXECUTION_DEVICES")
        return ",".join(str(d).strip("()") for d in devices)

    @property
    def fallback(self) -> bool:
        return self._fallback

    def infer(self, batch: np.ndarray) -> InferenceResult:
        x = self._crops.check(batch)
        return self._crops.result(self._crops.run(self._run, x, self._batch))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.array(self._request.infer({0: x})[self._output], dtype=np.float32)

    def close(self) -> None:
        self._request = None
        self._compiled = None  # releases the device


def requested_devices(device: str) -> list[str]:
    """Device names in preference order; a virtual device string stays whole."""
    text = device.strip().upper() or "CPU"
    if text.split(":")[0] in VIRTUAL_DEVICES:
        return [text]
    return [d.strip() for d in text.split(",") if d.strip()]


def openvino_release(version: str) -> tuple[int, int]:
    """(year, release) from a version string such as ``2026.4.1-22982-...``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"cannot read an OpenVINO version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def unavailable_reason(device: str, available: list[str], release: tuple[int, int]) -> str | None:
    """Why ``device`` cannot run here, or None if it can (virtual devices: let OV decide)."""
    base = device.split(":")[0].split(".")[0]
    if base in VIRTUAL_DEVICES:
        return None
    if base == "MYRIAD" and release > MYRIAD_LAST_RELEASE:
        return (
            f"MYRIAD (Intel NCS2) needs OpenVINO <= 2022.3, but this is "
            f"{release[0]}.{release[1]}, which has no MYRIAD plugin; on the NCS2 host use the "
            "OpenVINO 2022.3 LTS archive (the 2022.3 PyPI wheels ship no MYRIAD plugin) and "
            "the NCS2 udev rules, see docs/accelerators.md"
        )
    if device in available or (
        "." not in device and any(a.split(".")[0] == device for a in available)
    ):
        return None
    hint = DEVICE_HINTS.get(base, "check the device name against Core().available_devices")
    return f"no {device} device found: {hint}"


def _make_batch_dynamic(ov: ModuleType, model: Any) -> bool:
    """Let the batch dimension vary; False if the graph hard-codes it."""
    port = model.input(0)
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic or shape[0].is_dynamic:
        return True
    dims = [_ov_attr(ov, "Dimension")(-1)] + [shape[i] for i in range(1, shape.rank.get_length())]
    try:
        model.reshape({port: _ov_attr(ov, "PartialShape")(dims)})
    except RuntimeError:
        return False
    return True


def _compile_config(device: str, threads: int, options: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if device.split(".")[0] == "CPU":
        config["INFERENCE_NUM_THREADS"] = max(int(threads), 1)
    config.update(options.get("config", {}))
    return config


def _import_openvino() -> ModuleType:
    try:
        return import_module("openvino")
    except ImportError as exc:
        raise BackendUnavailable(
            "openvino is not installed: `pip install openvino` (CPU/GPU/NPU); the NCS2 needs "
            "the OpenVINO 2022.3 LTS archive instead"
        ) from exc


def _ov_attr(ov: ModuleType, name: str) -> Any:
    # OpenVINO 2022.3 (the last with MYRIAD) keeps its API in openvino.runtime.
    if hasattr(ov, name):
        return getattr(ov, name)
    return getattr(import_module("openvino.runtime"), name)
