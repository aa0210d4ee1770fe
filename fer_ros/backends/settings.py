"""Inference-node parameters -> (backend name, BackendSettings, PowerConfig).

The parameters are the ``ros__parameters`` of a profile's inference node, either nested
as in the YAML file (``power: {source: auto}``) or flat as rclpy reports them
(``power.source``). Backend-specific options live under the backend's own name, as the
inference node already does for ``loihi.target``: ``onnxruntime.trt_cache_dir``,
``litert.edgetpu_export``, ``openvino.static_batch``, ``openvino.config.<KEY>``...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fer_ros.backends import BACKENDS
from fer_ros.backends.base import BackendSettings
from fer_ros.model_card import ModelCard, load_model_card
from fer_ros.power.factory import PowerConfig
from fer_ros.profiles import flatten, profile_parameters

__all__ = [
    "flatten",
    "nest",
    "power_config_from_parameters",
    "profile_parameters",
    "settings_from_parameters",
]

DEFAULT_CARD = "fer_cnn_cpu.json"
DEFAULT_EXPORTS = {
    "onnxruntime": "onnx",
    "litert": "tflite_fp32",
    "openvino": "openvino_fp16",
    "loihi": "snn",
}


def settings_from_parameters(
    params: Mapping[str, Any], card: ModelCard | None = None
) -> tuple[str, BackendSettings, PowerConfig]:
    """Read a profile's inference parameters; ``card`` overrides ``model_card`` (tests)."""
    flat = flatten(params)
    backend = str(flat.get("backend", "onnxruntime"))
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} not in {tuple(BACKENDS)}")
    if card is None:
        card = load_model_card(str(flat.get("model_card", DEFAULT_CARD)))
    settings = BackendSettings(
        card=card,
        model_export=str(flat.get("model_export") or DEFAULT_EXPORTS[backend]),
        device=str(flat.get("device", "")),
        num_threads=int(flat.get("num_threads", 1)),
        allow_cpu_fallback=_as_bool(flat.get("allow_cpu_fallback", False)),
        options=nest(
            {k[len(backend) + 1 :]: v for k, v in flat.items() if k.startswith(f"{backend}.")}
        ),
    )
    return backend, settings, power_config_from_parameters(flat)


def power_config_from_parameters(params: Mapping[str, Any]) -> PowerConfig:
    """The ``power.*`` parameters; ROS has no null, so 0.0 / "" / [] mean unset."""
    flat = flatten(params)
    active_w = float(flat.get("power.active_w", 0.0) or 0.0)
    return PowerConfig(
        source=str(flat.get("power.source", "auto")),
        model=str(flat.get("power.model", "")),
        fallback_model=str(flat.get("power.fallback_model", "")),
        sensor=str(flat.get("power.sensor", "auto")),
        rails=_as_names(flat.get("power.rails", ())),
        domains=_as_names(flat.get("power.domains", ())) or ("package",),
        active_w=active_w if active_w > 0 else None,
        sysfs_root=str(flat.get("power.sysfs_root", "/sys")),
    )


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys back to nested dicts (backend options such as ``openvino.config.X``)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"not a boolean: {value!r}")
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _as_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    # ROS string-array parameters cannot be empty lists, so [""] stands for "none".
    return tuple(str(v) for v in value or () if str(v))
