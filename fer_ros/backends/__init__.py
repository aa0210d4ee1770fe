"""Inference backends, imported lazily so that a missing runtime only matters when used.

:mod:`.base` is the interface (:class:`InferenceBackend`, settings, results); one module
per runtime (:mod:`.onnxruntime_backend`, :mod:`.litert_backend`, :mod:`.openvino_backend`
sharing :mod:`.crops`; :mod:`.loihi_backend` on :mod:`fer_ros.snn`); :mod:`.isolated`
runs any of them in a child process and :mod:`.metered` adds the energy figure.
:mod:`.settings` turns a profile's inference parameters into a backend and its
settings, without ROS. Backends use core, snn and power, never the nodes above them.
"""

from __future__ import annotations

from importlib import import_module

from fer_ros.backends.base import (
    BackendSettings,
    BackendUnavailable,
    InferenceBackend,
    InputKind,
)

# backend parameter value -> "module:class"; the module is imported only when chosen.
BACKENDS: dict[str, str] = {
    "onnxruntime": "fer_ros.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "litert": "fer_ros.backends.litert_backend:LiteRtBackend",
    "openvino": "fer_ros.backends.openvino_backend:OpenVinoBackend",
    "loihi": "fer_ros.backends.loihi_backend:LoihiBackend",
}
# The export each backend loads when a profile names none (an empty ``model_export``).
DEFAULT_EXPORTS: dict[str, str] = {
    "onnxruntime": "onnx",
    "litert": "tflite_fp32",
    "openvino": "openvino_fp16",
    "loihi": "snn",
}


def backend_class(name: str) -> type[InferenceBackend]:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(import_module(module_name), class_name)


def create_backend(name: str, settings: BackendSettings) -> InferenceBackend:
    """Load ``name`` with ``settings``; raises :class:`BackendUnavailable` with advice."""
    return backend_class(name)(settings)


__all__ = [
    "BACKENDS",
    "DEFAULT_EXPORTS",
    "BackendSettings",
    "BackendUnavailable",
    "InferenceBackend",
    "InputKind",
    "backend_class",
    "create_backend",
]
