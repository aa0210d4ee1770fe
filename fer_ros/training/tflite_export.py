"""LiteRT (.tflite) exports: fp32 for the Raspberry Pi, full int8 for the Coral Edge TPU.

Conversion runs ``tflite_convert.py`` in the export interpreter: ``FER_EXPORT_PYTHON``,
else ``build/export-venv/bin/python`` in the source tree, else this interpreter if it
can import litert_torch. Checking the result needs only ``ai-edge-litert``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.training.checkpoint import Trained, save_checkpoint

_ROOT = Path(__file__).resolve().parents[2]


def export_python() -> str:
    """The interpreter that has litert-torch."""
    env = os.environ.get("FER_EXPORT_PYTHON")
    if env:
        return env
    venv = _ROOT / "build" / "export-venv" / "bin" / "python"
    if venv.is_file():
        return str(venv)
    if importlib.util.find_spec("litert_torch") is not None:
        return sys.executable
    raise RuntimeError(
        "tflite export needs litert-torch: create build/export-venv (see docs/training.md) "
        "or set FER_EXPORT_PYTHON to an interpreter that has it"
    )


def export_tflite(t: Trained, path: Path, int8: bool, calib: np.ndarray) -> dict[str, Any]:
    """Write ``path``; returns card notes (layout, I/O types, quantisation, ops)."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.pt"
        save_checkpoint(t, ckpt)
        cmd = [
            export_python(),
            "-m",
            "fer_ros.training.tflite_convert",
            "--checkpoint",
            str(ckpt),
            "--out",
            str(path),
        ]
        if int8:
            np.save(Path(tmp) / "calib.npy", calib.astype(np.float32))
            cmd += ["--int8", "--calib", str(Path(tmp) / "calib.npy")]
        env = {**os.environ, "PYTHONPATH": str(_ROOT), "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"tflite conversion failed:\n{proc.stderr[-3000:]}")
    return describe(path, int8, len(calib))


def describe(path: Path, int8: bool, calib_n: int) -> dict[str, Any]:
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    ops = sorted({op["op_name"] for op in interp._get_ops_details()})
    notes: dict[str, Any] = {
        "layout": f"NHWC input {list(inp['shape'])}, output {list(out['shape'])}, batch 1",
        "input_dtype": np.dtype(inp["dtype"]).name,
        "output_dtype": np.dtype(out["dtype"]).name,
        "ops": ops,
        "runtime": f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '')}".strip(),
    }
    if int8:
        notes.update(
            {
                "quantisation": "full int8 (PT2E static; per-channel weights, per-tensor "
                "activations), int8 input/output; scale/zero point in the model",
                "input_quant": [float(inp["quantization"][0]), int(inp["quantization"][1])],
                "output_quant": [float(out["quantization"][0]), int(out["quantization"][1])],
                "calibration_samples": calib_n,
                "edgetpu": "not compiled here (no edgetpu_compiler offline); compile with "
                "`edgetpu_compiler` and add a `tflite_edgetpu` entry",
            }
        )
    return notes


def runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Logits (float) from NCHW float input, quantising/dequantising int8 I/O as needed."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        results = []
        for sample in x:
            v = np.transpose(sample, (1, 2, 0))[None]
            if inp["dtype"] == np.int8:
                scale, zero = inp["quantization"]
                v = np.clip(np.round(v / scale + zero), -128, 127).astype(np.int8)
            interp.set_tensor(inp["index"], v.astype(inp["dtype"]))
            interp.invoke()
            y = interp.get_tensor(out["index"]).astype(np.float32)
            if out["dtype"] == np.int8:
                scale, zero = out["quantization"]
                y = (y - zero) * scale
            results.append(y.reshape(1, -1))
        return np.concatenate(results)

    return run
