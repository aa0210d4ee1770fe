"""Measured GPU power of a discrete NVIDIA GPU through NVML (``nvidia-ml-py``).

Where the jetson profile's ONNX Runtime CUDA/TensorRT path runs on a desktop or server
GPU instead of a Jetson module, the board's own sensor is read through NVML: the total
energy counter (millijoules since the driver loaded; Volta and newer) when the GPU has
one, else the instantaneous board power (milliwatts, averaged by the driver over about
one second). Jetson modules have no NVML power readings: they use the INA3221 rails
(:mod:`.jetson`). The figure covers the whole GPU board, not this process alone.
"""

from __future__ import annotations

from typing import Any

from fer_ros.power.base import PowerUnavailable
from fer_ros.power.sampled import SampledPowerSource

INSTALL_HINT = "pip install nvidia-ml-py"


class NvmlPowerSource(SampledPowerSource):
    """Board energy (counter) or power (instantaneous) of GPU ``index`` via NVML."""

    def __init__(self, index: int = 0, max_samples: int = 4096) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise PowerUnavailable(f"NVML bindings not installed ({INSTALL_HINT})") from exc
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
        except pynvml.NVMLError as exc:
            raise PowerUnavailable(f"NVML: no NVIDIA GPU {index} ({exc})") from exc
        self._nvml: Any = pynvml
        self._handle = handle
        name = name.decode() if isinstance(name, bytes) else str(name)
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            counter = True
        except pynvml.NVMLError:
            try:
                pynvml.nvmlDeviceGetPowerUsage(handle)
            except pynvml.NVMLError as exc:
                raise PowerUnavailable(f"NVML: {name} reports no power ({exc})") from exc
            counter = False
        what = "total energy counter" if counter else "board power (~1 s driver average)"
        super().__init__(
            cumulative=counter,
            description=f"NVML {what}, GPU {index} {name} (whole board)",
            max_samples=max_samples,
        )

    def _read(self) -> float:
        if self._cumulative:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0
        return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
