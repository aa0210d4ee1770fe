"""ONNX Runtime backend: CPU anywhere, TensorRT / CUDA on Jetson and NVIDIA GPUs.

``device`` is a comma-separated preference list of execution providers, by alias
(``tensorrt``, ``cuda``, ``cpu``, ``openvino``, ``dnnl``, ``coreml``, ``xnnpack``) or by full
provider name; ``jetson`` means ``tensorrt,cuda``. Only providers this onnxruntime build
offers (``onnxruntime.get_available_providers()``) are used. CPU runs only when it is in
the list or the profile declares ``allow_cpu_fallback``.
"""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path
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

CPU = "CPUExecutionProvider"
PROVIDER_ALIASES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
DEVICE_SHORTHANDS = {"": ("cpu",), "jetson": ("tensorrt", "cuda")}
INSTALL_HINTS = {
    "TensorrtExecutionProvider": (
        "an onnxruntime build with TensorRT: on Jetson the onnxruntime-gpu wheel built for "
        "your JetPack (NVIDIA's Jetson Zoo), elsewhere `pip install onnxruntime-gpu` plus "
        "TensorRT libraries on LD_LIBRARY_PATH"
    ),
    "CUDAExecutionProvider": "`pip install onnxruntime-gpu` (or the JetPack wheel) and CUDA/cuDNN",
}


class OnnxRuntimeBackend:
    """A model on the first available execution provider of the requested list."""

    name: ClassVar[str] = "onnxruntime"
    input_kind: ClassVar[InputKind] = InputKind.CROPS
    options: ClassVar[tuple[Param, ...]] = (
        Param(
            "trt_cache_dir",
            "~/.cache/fer_ros/tensorrt",
            "TensorRT engine cache (building an engine takes minutes on a Jetson)",
        ),
        Param("fp16", True, "Let TensorRT run in FP16"),
    )

    def __init__(self, settings: BackendSettings) -> None:
        ort = _import_onnxruntime()
        self._crops = CropModel(settings)
        path = self._crops.path()
        requested = requested_providers(settings.device)
        available = ort.get_available_providers()
        chain = [p for p in requested if p in available]
        cpu_allowed = CPU in requested or settings.allow_cpu_fallback
        if settings.allow_cpu_fallback and CPU not in chain:
            chain.append(CPU)
        if not chain:
            missing = [p for p in requested if p not in available]
            raise BackendUnavailable(_missing_message(missing, available, ort.__version__))

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(settings.num_threads), 1)
        options.inter_op_num_threads = 1
        # Idle intra-op threads (num_threads > 1) would spin for work between faces, taking
        # a core from the graph's other stages; a face every 33 ms leaves nothing to gain.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provider_options = [_provider_options(p, settings.options) for p in chain]
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=chain, provider_options=provider_options
            )
        except Exception as exc:  # ORT raises its own types for bad files and EP failures
            raise BackendUnavailable(f"onnxruntime cannot load {path} on {chain}: {exc}") from exc

        self.device = self._session.get_providers()[0]
        if self.device == CPU and not cpu_allowed:
            raise BackendUnavailable(
                f"onnxruntime put {path.name} on the CPU although {requested} was requested "
                "and the profile does not allow a CPU fallback"
            )
        self.fallback = self.device != requested[0]
        if self.fallback:
            _log.warning(
                "onnxruntime: %s unavailable (this build offers %s); running on %s instead",
                requested[0],
                ", ".join(available),
                self.device,
            )
        self.runtime = f"onnxruntime {ort.__version__}"
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        batch_dim = inp.shape[0]
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    def infer(self, batch: np.ndarray) -> InferenceResult:
        x = self._crops.check(batch)
        return self._crops.result(self._crops.run(self._run, x, self._fixed_batch))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input_name: batch})[0]

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]  # frees the EP's device memory


def requested_providers(device: str) -> list[str]:
    """Execution provider names for a ``device`` parameter, in preference order."""
    key = device.strip().lower()
    items = DEVICE_SHORTHANDS.get(key) or [d.strip() for d in device.split(",") if d.strip()]
    providers = []
    for item in items:
        provider = PROVIDER_ALIASES.get(item.lower(), item)
        if not provider.endswith("ExecutionProvider"):
            raise ValueError(
                f"unknown onnxruntime device {item!r}; use one of "
                f"{', '.join(PROVIDER_ALIASES)} or an ExecutionProvider name"
            )
        providers.append(provider)
    return providers


def _provider_options(provider: str, options: Any) -> dict[str, Any]:
    """Per-provider options from ``backend_options.<alias>``, with TensorRT defaults."""
    alias = next((a for a, p in PROVIDER_ALIASES.items() if p == provider), provider)
    given = dict(options.get(alias, {}))
    if provider == "TensorrtExecutionProvider":
        # Building a TensorRT engine takes minutes on a Jetson: cache it across runs.
        cache = Path(options.get("trt_cache_dir", "~/.cache/fer_ros/tensorrt")).expanduser()
        given.setdefault("trt_engine_cache_enable", True)
        given.setdefault("trt_engine_cache_path", str(cache))
        given.setdefault("trt_fp16_enable", bool(options.get("fp16", True)))
    return {key: str(value) for key, value in given.items()}  # ORT parses strings


def _missing_message(missing: list[str], available: list[str], version: str) -> str:
    hints = "; ".join(f"{p}: install {INSTALL_HINTS[p]}" for p in missing if p in INSTALL_HINTS)
    return (
        f"onnxruntime {version} offers {', '.join(available)} but not "
        f"{', '.join(missing)}, and the profile does not allow a CPU fallback"
        + (f". {hints}" if hints else "")
    )


def _import_onnxruntime() -> ModuleType:
    try:
        return import_module("onnxruntime")
    except ImportError as exc:
        raise BackendUnavailable(
            "onnxruntime is not installed: `pip install onnxruntime` (CPU) or "
            "onnxruntime-gpu / the JetPack wheel for CUDA and TensorRT"
        ) from exc
