"""Per-image latency of an exported model, measured in the runtime its device uses.

The figure is taken on this machine's CPU (batch 1, one thread), so it ranks candidate
architectures for a device; it is not that device's latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RUNTIME_OF_EXPORT = {
    "onnx": "onnxruntime",
    "tflite_fp32": "ai-edge-litert",
    "tflite_int8": "ai-edge-litert",
    "openvino_fp16": "openvino",
    "openvino_int8": "openvino",
}


def _invoker(path: Path, export: str) -> Callable[[], object]:
    """A zero-argument call running one batch-1 inference on a fixed input."""
    if export == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.random.default_rng(0).random((1, *inp.shape[1:]), np.float32)
        return lambda: sess.run(None, {inp.name: x})
    if export.startswith("tflite"):
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(path), num_threads=1)
        interp.allocate_tensors()
        d = interp.get_input_details()[0]
        x = np.zeros(d["shape"], d["dtype"])

        def run() -> None:
            interp.set_tensor(d["index"], x)
            interp.invoke()

        return run
    if export.startswith("openvino"):
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": 1})
        request = compiled.create_infer_request()
        x = np.random.default_rng(0).random((1, 1, 48, 48), np.float32)
        return lambda: request.infer([x])
    raise ValueError(f"no latency runtime for export {export!r}")


def measure_latency(path: Path, export: str, runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Median and 90th-percentile wall time of one inference, in milliseconds."""
    call = _invoker(path, export)
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return {
        "median_ms": round(float(np.median(times) * 1e3), 4),
        "p90_ms": round(float(np.percentile(times, 90) * 1e3), 4),
        "runtime": RUNTIME_OF_EXPORT[export],
    }
