"""Deployment targets: which export each device runs and the budget a model must meet.

Latency budgets are for batch-1 inference measured on this development CPU with one
thread, in the runtime the device uses; they are proxies that keep the model small
enough for the device, scaled from the devices' relative speed (a Raspberry Pi 4 runs
LiteRT roughly ten times slower than a desktop core; the Edge TPU and NCS2 run int8/fp16
models far faster than they run here, but are limited by on-chip memory, which the
parameter budget reflects). Override with ``--max-latency-ms`` / ``--max-params``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    export: str  # the export its runtime loads; "cnn_spec" for Loihi
    max_latency_ms: float | None  # on this CPU, batch 1, one thread
    max_params: int
    loihi: bool = False
    note: str = ""


TARGETS = {
    "cpu": Target("cpu", "onnx", 1.0, 1_000_000, note="ONNX Runtime on the robot's CPU"),
    "jetson": Target(
        "jetson",
        "onnx",
        1.0,
        2_000_000,
        note="ONNX (TensorRT on the Jetson); measured with ONNX Runtime here",
    ),
    "rpi": Target(
        "rpi",
        "tflite_fp32",
        0.3,
        500_000,
        note="LiteRT fp32 on a Raspberry Pi (about 10x slower than this CPU)",
    ),
    "coral": Target(
        "coral",
        "tflite_int8",
        0.3,
        2_000_000,
        note="full-int8 LiteRT for Edge TPU compilation; params must stay "
        "well inside the 8 MB on-chip SRAM to avoid off-chip streaming",
    ),
    "ncs2": Target(
        "ncs2",
        "openvino_fp16",
        1.0,
        1_000_000,
        note="OpenVINO FP16 IR (MYRIAD plugin needs OpenVINO <= 2022.3); "
        "measured on the OpenVINO CPU plugin",
    ),
    "loihi": Target(
        "loihi",
        "cnn_spec",
        None,
        500_000,
        loihi=True,
        note="SNN on Loihi: no pooling, strided convs, no conv bias, "
        "<= 1024 neurons per core, <= 128 cores per chip",
    ),
}
