"""The inference node's parameters, and how they become (backend, BackendSettings, PowerConfig).

ROS-free and beside the backends (not in the nodes layer), so that the inference node,
``fer_ros_compare``, benchmarks and notebooks build a profile's settings the same way:
:data:`INFERENCE_PARAMETERS` is the node's table, and its defaults fill whatever a
profile leaves out.

The parameters are the ``ros__parameters`` of a profile's inference node, either nested
as in the YAML file (``power: {source: auto}``) or flat as rclpy reports them
(``power.source``). Backend-specific options live under the backend's own name, as the
inference node already does for ``loihi.target``: ``onnxruntime.trt_cache_dir``,
``litert.edgetpu_export``, ``openvino.static_batch``, ``openvino.config.<KEY>``...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fer_ros.backends import BACKENDS, DEFAULT_EXPORTS, backend_class
from fer_ros.backends.base import BackendSettings
from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.options import Param
from fer_ros.core.profiles import PROFILES, flatten, profile_parameters
from fer_ros.power import POWER_MODELS
from fer_ros.power.factory import SENSOR_CHOICES, SOURCE_CHOICES, PowerConfig

__all__ = [
    "DEFAULTS",
    "INFERENCE_PARAMETERS",
    "flatten",
    "nest",
    "power_config_from_parameters",
    "profile_parameters",
    "settings_from_parameters",
]

ACCELERATORS = PROFILES  # each installed profile stands for one accelerator
COMMON_PARAMETERS = (
    Param(
        "accelerator",
        "cpu",
        "Accelerator this profile stands for (reported in outputs)",
        choices=ACCELERATORS,
    ),
    Param("backend", "onnxruntime", "Inference runtime", choices=tuple(BACKENDS)),
    Param("model_card", "fer_cnn_cpu.json", "Model card in the package's models/ (or a path)"),
    Param(
        "model_export",
        "",
        "Which export of the card to load (a key of its files); empty: the backend's default "
        f"({', '.join(f'{b}: {e}' for b, e in DEFAULT_EXPORTS.items())})",
    ),
    Param("device", "", "Device to run on; backend-specific, empty for the backend default"),
    Param("num_threads", 1, "CPU threads the runtime may use", minimum=1, maximum=64),
    Param(
        "backend_process",
        False,
        "Run the backend in a child process, so that a runtime computing in Python "
        "(the nengo-loihi emulator) does not share the interpreter with the other nodes",
    ),
    Param(
        "backend_restart_delay_s",
        0.5,
        "backend_process: first wait before restarting a backend process that died; "
        "doubles after each failed start, up to 30 s",
        minimum=0.0,
        maximum=60.0,
    ),
    Param(
        "backend_max_restarts",
        5,
        "backend_process: failed starts in a row before the node gives up (ERROR)",
        minimum=1,
        maximum=1000,
    ),
    Param(
        "allow_cpu_fallback",
        False,
        "Run on the CPU when the device is absent (reported "
        "as fallback in Telemetry) instead of failing to configure",
    ),
    Param(
        "power.source",
        "auto",
        "Power figures: 'measured' needs a sensor, 'model' uses "
        "published constants, 'auto' measures when a sensor covers the device, 'none' "
        "reports none",
        choices=SOURCE_CHOICES,
    ),
    Param(
        "power.model",
        "",
        "Published power model of the accelerator (empty: none)",
        choices=("", *POWER_MODELS),
    ),
    Param(
        "power.fallback_model",
        "",
        "Power model of the host CPU for a declared fallback",
        choices=("", *POWER_MODELS),
    ),
    Param("power.sensor", "auto", "Sensor to measure with", choices=SENSOR_CHOICES),
    Param("power.rails", [""], "INA3221 rails to sum (empty: the module input rail)"),
    Param("power.domains", ["package"], "RAPL zones to sum"),
    Param(
        "power.active_w",
        0.0,
        "Override the model's active power in W (0: the model's); "
        "document where the figure comes from",
        minimum=0.0,
        maximum=1000.0,
    ),
    Param(
        "warn_latency_ms",
        60.0,
        "Diagnostics WARN above this p95 end-to-end latency",
        minimum=0.0,
        maximum=1e6,
    ),
    Param(
        "error_latency_ms",
        500.0,
        "Diagnostics ERROR above this p95 end-to-end latency",
        minimum=0.0,
        maximum=1e6,
    ),
)


def backend_parameters() -> tuple[Param, ...]:
    """Every backend's tunables as ``<backend>.<option>`` parameters."""
    rows = []
    for name in BACKENDS:
        for option in getattr(backend_class(name), "options", ()):
            rows.append(
                replace(
                    option,
                    name=f"{name}.{option.name}",
                    description=f"{name} backend: {option.description}",
                )
            )
    return tuple(rows)


INFERENCE_PARAMETERS = COMMON_PARAMETERS + backend_parameters()
DEFAULTS = {p.name: p.default for p in INFERENCE_PARAMETERS}


def settings_from_parameters(
    params: Mapping[str, Any], card: ModelCard | None = None
) -> tuple[str, BackendSettings, PowerConfig]:
    """Read a profile's inference parameters; ``card`` overrides ``model_card`` (tests).

    Parameters the profile leaves out take the node's defaults (:data:`DEFAULTS`), so a
    profile read here and one declared on a node give the same settings."""
    flat = {**DEFAULTS, **flatten(params)}
    backend = str(flat["backend"])
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} not in {tuple(BACKENDS)}")
    if card is None:
        card = load_model_card(str(flat["model_card"]))
    settings = BackendSettings(
        card=card,
        model_export=str(flat["model_export"] or DEFAULT_EXPORTS[backend]),
        device=str(flat["device"]),
        num_threads=int(flat["num_threads"]),
        allow_cpu_fallback=_as_bool(flat["allow_cpu_fallback"]),
        options=nest(
            {k[len(backend) + 1 :]: v for k, v in flat.items() if k.startswith(f"{backend}.")}
        ),
    )
    return backend, settings, power_config_from_parameters(flat)


def power_config_from_parameters(params: Mapping[str, Any]) -> PowerConfig:
    """The ``power.*`` parameters; ROS has no null, so 0.0 / "" / [] mean unset."""
    flat = {**DEFAULTS, **flatten(params)}
    active_w = float(flat["power.active_w"] or 0.0)
    return PowerConfig(
        source=str(flat["power.source"]),
        model=str(flat["power.model"]),
        fallback_model=str(flat["power.fallback_model"]),
        sensor=str(flat["power.sensor"]),
        rails=_as_names(flat["power.rails"]),
        domains=_as_names(flat["power.domains"]) or ("package",),
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
