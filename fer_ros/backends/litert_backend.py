"""LiteRT (TensorFlow Lite) backend: XNNPACK on CPUs (Raspberry Pi), Coral Edge TPU.

``device``: ``cpu`` (default) or ``edgetpu`` with an optional libedgetpu device selector,
``edgetpu:usb``, ``edgetpu:usb:0``, ``edgetpu:pci:0``. The Edge TPU runs the
``edgetpu_compiler`` output of the int8 export: the card's ``<export>_edgetpu`` file, or
``<stem>_edgetpu.tflite`` beside the export. Without the Edge TPU runtime, a profile with
``allow_cpu_fallback`` runs the (uncompiled) int8 export on the CPU instead.

Models may be float32 or fully int8/uint8; quantised inputs and outputs are converted
with the tensors' own scale and zero point. Input layout is NHWC or NCHW, from the card's
``layout`` key or the input tensor's shape.
"""

from __future__ import annotations

import ctypes
import logging
import platform
from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
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

EDGETPU_LIBRARIES = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}
EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"  # what edgetpu_compiler puts in a compiled model
EDGETPU_INSTALL = (
    "install the Edge TPU runtime: add the Coral apt repository "
    "(deb https://packages.cloud.google.com/apt coral-edgetpu-stable main), then "
    "`sudo apt-get install libedgetpu1-std`; the package's udev rule gives the plugdev group "
    "access to the USB Accelerator (replug it, and add your user to plugdev). "
    "See docs/accelerators.md"
)


class LiteRtBackend:
    """A .tflite model in a LiteRT interpreter, optionally with the Edge TPU delegate."""

    name: ClassVar[str] = "litert"
    input_kind: ClassVar[InputKind] = InputKind.CROPS
    options: ClassVar[tuple[Param, ...]] = (
        Param(
            "edgetpu_library",
            "",
            "Edge TPU delegate library; empty: the platform's "
            "libedgetpu (libedgetpu.so.1 on Linux)",
        ),
        Param(
            "edgetpu_export",
            "",
            "Model card export compiled for the Edge TPU; empty: <model_export>_edgetpu",
        ),
    )

    def __init__(self, settings: BackendSettings) -> None:
        interpreter_cls, load_delegate, self.runtime = _import_litert()
        self._crops = crops = CropModel(settings)
        kind, _, selector = (settings.device.strip().lower() or "cpu").partition(":")
        delegates: list[Any] = []
        self.fallback = False
        if kind == "edgetpu":
            try:
                delegates = [_load_edgetpu(load_delegate, selector, settings.options)]
                path = _edgetpu_model_path(settings, crops)
                self.device = f"edgetpu:{selector}" if selector else "edgetpu"
            except BackendUnavailable as exc:
                if not settings.allow_cpu_fallback:
                    raise
                delegates = []
                path = crops.path()
                self.device, self.fallback = "cpu", True
                _log.warning(
                    "litert: Edge TPU unavailable (%s); running %s on the CPU", exc, path.name
                )
        elif kind == "cpu":
            path = crops.path()
            self.device = "cpu"
        else:
            raise ValueError(f"unknown litert device {settings.device!r}; use cpu or edgetpu[:...]")

        threads = max(int(settings.num_threads), 1)
        try:
            self._interpreter = interpreter_cls(
                model_path=str(path), num_threads=threads, experimental_delegates=delegates
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendUnavailable(f"LiteRT could not load {path}: {exc}") from exc
        self._delegates = delegates  # the interpreter needs them alive

        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        self._input_index, self._output_index = inp["index"], out["index"]
        self._input_dtype = np.dtype(inp["dtype"])
        self._input_q = _quantisation(inp)
        self._output_q = _quantisation(out)
        self._batch = int(inp["shape"][0])
        # Only a graph exported with a free batch (-1) can be resized; Edge TPU graphs
        # are compiled for a fixed shape. Others get their batch size at a time.
        signature = inp.get("shape_signature", inp["shape"])
        self._resizable = not delegates and len(signature) > 0 and int(signature[0]) == -1
        self._nhwc = _is_nhwc(inp["shape"], settings.card.extra.get("layout"), settings.card)

    def infer(self, batch: np.ndarray) -> InferenceResult:
        batch = self._crops.check(batch)
        x = batch.transpose(0, 2, 3, 1) if self._nhwc else batch
        x = _quantise(np.asarray(x, np.float32), self._input_dtype, self._input_q)
        resized = len(x) != self._batch and self._resizable and len(x) > 0 and self._resize(len(x))
        fixed = None if resized else self._batch  # fixed-shape graph: its batch at a time
        raw = self._crops.run(self._invoke, x, fixed)
        return self._crops.result(_dequantise(raw, self._output_q))

    def _resize(self, batch: int) -> bool:
        """Resize the input batch; on failure restore the old one and stop resizing."""
        shape = [batch, *self._interpreter.get_input_details()[0]["shape"][1:]]
        try:
            self._interpreter.resize_tensor_input(self._input_index, shape)
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            _log.warning(
                "litert: cannot resize the batch to %d (%s); feeding %d at a time",
                batch,
                _first_line(exc),
                self._batch,
            )
            old = [self._batch, *shape[1:]]
            self._interpreter.resize_tensor_input(self._input_index, old)
            self._interpreter.allocate_tensors()
            self._resizable = False
            return False
        self._batch = batch
        return True

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input_index, np.ascontiguousarray(x))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output_index)

    def close(self) -> None:
        self._interpreter = None  # type: ignore[assignment]
        self._delegates = []  # releases the Edge TPU after the interpreter


def edgetpu_library() -> str:
    """The Edge TPU runtime's shared library name on this platform."""
    return EDGETPU_LIBRARIES.get(platform.system(), EDGETPU_LIBRARIES["Linux"])


def _import_litert() -> tuple[type, Callable[..., Any], str]:
    for module, package in (
        ("ai_edge_litert.interpreter", "ai-edge-litert"),
        ("tflite_runtime.interpreter", "tflite-runtime"),
    ):
        try:
            mod = import_module(module)
        except ImportError:
            continue
        try:
            runtime = f"{package} {version(package)}"
        except PackageNotFoundError:
            runtime = package
        return mod.Interpreter, mod.load_delegate, runtime
    raise BackendUnavailable(
        "no LiteRT interpreter: `pip install ai-edge-litert` (or tflite-runtime on "
        "platforms without LiteRT wheels)"
    )


def _load_edgetpu(load_delegate: Callable[..., Any], selector: str, options: Mapping) -> Any:
    library = str(options.get("edgetpu_library") or edgetpu_library())  # "" means default
    try:
        # Open it ourselves first: LiteRT's Delegate raises from __del__ when the
        # library is missing, which would print a spurious traceback.
        ctypes.CDLL(library)
        return load_delegate(library, {"device": selector} if selector else {})
    except (ValueError, OSError, RuntimeError) as exc:
        raise BackendUnavailable(
            f"cannot load the Edge TPU delegate {library} ({_first_line(exc)}): the Edge TPU "
            f"runtime is missing or no accessible Edge TPU is attached; {EDGETPU_INSTALL}"
        ) from exc


def _edgetpu_model_path(settings: BackendSettings, crops: CropModel) -> Path:
    card, export = settings.card, settings.model_export
    name = settings.options.get("edgetpu_export") or f"{export}_edgetpu"
    if name in card.files:
        path = card.file(name)
    else:  # edgetpu_compiler writes <stem>_edgetpu.tflite next to its input
        base = crops.path(must_exist=False)
        path = base.with_name(f"{base.stem}_edgetpu.tflite")
    if not path.is_file():
        raise BackendUnavailable(
            f"no Edge TPU model {path}: compile the int8 export with "
            f"`edgetpu_compiler {path.name.replace('_edgetpu', '')}` and list it as "
            f"{name!r} in the model card"
        )
    if EDGETPU_CUSTOM_OP not in path.read_bytes():
        raise BackendUnavailable(f"{path} is not compiled for the Edge TPU (no edgetpu op)")
    return path


def _is_nhwc(shape: Any, layout: str | None, card: Any) -> bool:
    """Input layout: the card's ``layout`` (first word, e.g. "NHWC"), else the shape's."""
    dims = tuple(int(d) for d in shape[1:])
    nhwc, nchw = (card.input_height, card.input_width, 1), (1, card.input_height, card.input_width)
    want = str(layout).split()[0].strip(",").upper() if layout else ""
    if want and want not in ("NHWC", "NCHW"):
        raise ValueError(f"model card layout {layout!r} is neither NHWC nor NCHW")
    want = want or ("NHWC" if dims == nhwc else "NCHW")
    if dims != (nhwc if want == "NHWC" else nchw):
        raise BackendUnavailable(
            f"model input {list(shape)} does not match layout {want} of "
            f"a {card.input_height}x{card.input_width} grey crop"
        )
    return want == "NHWC"


def _quantisation(detail: Mapping[str, Any]) -> tuple[float, int] | None:
    """Per-tensor (scale, zero point) of an integer tensor; None for float tensors."""
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return None
    params = detail["quantization_parameters"]
    if len(params["scales"]) != 1:
        raise BackendUnavailable("per-channel quantised model inputs/outputs are not supported")
    return float(params["scales"][0]), int(params["zero_points"][0])


def _quantise(x: np.ndarray, dtype: np.dtype, q: tuple[float, int] | None) -> np.ndarray:
    if q is None:
        return x.astype(dtype, copy=False)
    scale, zero_point = q
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantise(y: np.ndarray, q: tuple[float, int] | None) -> np.ndarray:
    if q is None:
        return y.astype(np.float32, copy=False)
    scale, zero_point = q
    return (y.astype(np.float32) - zero_point) * scale


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
