"""Export a trained model for each device runtime and check every export against PyTorch.

The training pipeline (:mod:`fer_ros.training.pipeline`) calls :func:`export_all`; the
command line that re-exports a saved checkpoint is :mod:`fer_ros.training.reexport`
(``fer_ros_export``), so this module imports nothing of the pipeline.

Export names match the model-card contract: ``onnx``, ``tflite_fp32``, ``tflite_int8``,
``openvino_fp16``, ``openvino_int8`` and ``cnn_spec``. Each one is run in its own runtime
on held-out crops; argmax agreement with the PyTorch model goes into the card.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.core.cnn_spec import load_cnn_spec, save_cnn_spec
from fer_ros.training import graph
from fer_ros.training.checkpoint import Trained
from fer_ros.training.fit import predict_logits
from fer_ros.training.onnx_export import onnx_ops, save_onnx

ALL_EXPORTS = ("onnx", "tflite_fp32", "tflite_int8", "openvino_fp16", "openvino_int8", "cnn_spec")
Runner = Callable[[np.ndarray], np.ndarray]


def _file_name(model_id: str, export: str) -> str:
    return {
        "onnx": f"{model_id}.onnx",
        "tflite_fp32": f"{model_id}_fp32.tflite",
        "tflite_int8": f"{model_id}_int8.tflite",
        "openvino_fp16": f"{model_id}_fp16.xml",
        "openvino_int8": f"{model_id}_int8.xml",
        "cnn_spec": f"{model_id}_cnn.npz",
    }[export]


def export_one(
    t: Trained, export: str, out_dir: Path, model_id: str, calib: np.ndarray
) -> tuple[str, dict[str, Any], Runner]:
    """Write one export; returns (file name, card notes, runner giving logits)."""
    layers = graph.fold(t.model)
    shape = (1, *t.model.input_hw)
    path = out_dir / _file_name(model_id, export)
    if export == "onnx":
        save_onnx(layers, shape, path)
        notes = {
            "layout": "NCHW float32, dynamic batch",
            "opset": 13,
            "ops": onnx_ops(path),
            "tensorrt": "standard ops only, batchnorm folded (TensorRT 8 parser safe)",
        }
        return path.name, notes, onnx_runner(path)
    if export == "cnn_spec":
        save_cnn_spec(graph.to_cnn_spec(layers, shape), str(path))
        notes = {
            "layout": "PyTorch (out, in, kh, kw); dense input flattened C,H,W",
            "biases": "conv biases are zero arrays when the net has none; dense biases "
            "are meant as neuron bias currents",
        }
        return path.name, notes, spec_runner(path)
    if export.startswith("tflite"):
        from fer_ros.training import tflite_export

        notes = tflite_export.export_tflite(t, path, int8=export == "tflite_int8", calib=calib)
        return path.name, notes, tflite_export.runner(path)
    if export.startswith("openvino"):
        from fer_ros.training import openvino_export

        onnx_tmp = out_dir / f".{model_id}_tmp.onnx"
        save_onnx(layers, shape, onnx_tmp)
        try:
            notes = openvino_export.export_openvino(
                onnx_tmp, path, int8=export == "openvino_int8", calib=calib
            )
        finally:
            onnx_tmp.unlink(missing_ok=True)
        return path.name, notes, openvino_export.runner(path)
    raise ValueError(f"unknown export {export!r}; choose from {', '.join(ALL_EXPORTS)}")


def onnx_runner(path: Path) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def spec_runner(path: Path) -> Runner:
    spec = load_cnn_spec(str(path))
    layers = [
        graph.Layer(s.kind, s.weights, s.bias, s.stride, s.padding, s.activation == "relu")
        for s in spec.layers
    ]
    return lambda x: graph.forward_numpy(layers, x)


def agreement(
    runner: Runner, x: np.ndarray, ref_logits: np.ndarray, labels: np.ndarray | None
) -> dict[str, Any]:
    """Argmax agreement and logit error of an export against the reference logits."""
    out = np.concatenate([runner(x[i : i + 1]) for i in range(len(x))]) if len(x) else ref_logits
    out = out.astype(np.float32)
    pred = out.argmax(1)
    result = {
        "n": len(x),
        "argmax_agreement": round(float(np.mean(pred == ref_logits.argmax(1))), 4),
        "max_abs_logit_diff": round(float(np.max(np.abs(out - ref_logits))), 5),
    }
    if labels is not None:
        result["accuracy"] = round(float(np.mean(pred == labels)), 4)
    return result


def export_all(
    t: Trained,
    exports: list[str],
    out_dir: Path,
    model_id: str,
    calib: np.ndarray,
    check_x: np.ndarray,
    check_labels: np.ndarray | None,
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """Write each export and measure it; returns (files, notes, agreement) for the card."""
    ref = predict_logits(t.model, check_x)
    files, notes, agree = {}, {}, {}
    for export in exports:
        file, note, runner = export_one(t, export, out_dir, model_id, calib)
        files[export] = file
        notes[export] = note
        agree[export] = {
            "runtime": note.get("runtime", _runtime_name(export)),
            **agreement(runner, check_x, ref, check_labels),
        }
    return files, notes, agree


def _runtime_name(export: str) -> str:
    if export == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    return "numpy/torch reference" if export == "cnn_spec" else export
