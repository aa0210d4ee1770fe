"""Edge backends on this machine's CPU path, against an onnxruntime / numpy reference.

The models are small but real: an ONNX graph written with onnx.helper, the same weights
as a .tflite flatbuffer (float32 NHWC, a float32 NCHW dense variant, and a fully int8
one) written with LiteRT's own schema, and OpenVINO IRs converted from the ONNX graphs
(FP16, and INT8 from a QuantizeLinear/DequantizeLinear graph). Device-absent paths run
against the real runtimes of this machine, which has no Edge TPU, NCS2, NPU or GPU.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
from ai_edge_litert import schema_py_generated as tfl

from fer_ros.backends import BackendSettings, BackendUnavailable, InferenceBackend, create_backend
from fer_ros.backends.base import softmax
from fer_ros.backends.litert_backend import LiteRtBackend, edgetpu_library
from fer_ros.backends.onnxruntime_backend import OnnxRuntimeBackend, requested_providers
from fer_ros.backends.openvino_backend import (
    OpenVinoBackend,
    openvino_release,
    requested_devices,
    unavailable_reason,
)
from fer_ros.core.model_card import ModelCard, load_model_card, save_model_card

# onnx writes the fixture graphs; it is a test dependency (requirements-dev.txt).
onnx = pytest.importorskip("onnx", reason="the onnx package builds these tests' models")
TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper

SIDE, CONV_CH, KERNEL, CLASSES = 48, 4, 3, 7
FLAT = CONV_CH * 24 * 24  # conv 3x3 stride 2, TF "SAME" padding: 48 -> 24
CLASS_NAMES = ("happy", "contempt", "fear", "surprise", "sadness", "anger", "disgust")


# --- the reference network in numpy -------------------------------------------------------
@dataclass(frozen=True)
class Weights:
    conv_w: np.ndarray  # (out, in, kh, kw)
    conv_b: np.ndarray
    fc_w: np.ndarray  # (classes, FLAT), input flattened in (C, H, W) order
    fc_b: np.ndarray

    @staticmethod
    def random(seed: int = 0) -> Weights:
        rng = np.random.default_rng(seed)
        return Weights(
            rng.normal(0, 0.5, (CONV_CH, 1, KERNEL, KERNEL)).astype(np.float32),
            rng.normal(0, 0.1, CONV_CH).astype(np.float32),
            rng.normal(0, 3.0 / np.sqrt(FLAT), (CLASSES, FLAT)).astype(np.float32),
            rng.normal(0, 0.1, CLASSES).astype(np.float32),
        )

    def fc_w_hwc(self) -> np.ndarray:
        """FC weights for an input flattened in (H, W, C) order, as NHWC graphs do."""
        return (
            self.fc_w.reshape(CLASSES, CONV_CH, 24, 24).transpose(0, 2, 3, 1).reshape(CLASSES, FLAT)
        )


def conv_relu(x: np.ndarray, w: Weights) -> np.ndarray:
    """(n, 1, 48, 48) -> (n, 4, 24, 24); stride 2, zero padding of 1 at bottom/right only."""
    padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    out = np.zeros((len(x), CONV_CH, 24, 24), np.float32)
    for i in range(KERNEL):
        for j in range(KERNEL):
            patch = padded[:, 0, i : i + 47 : 2, j : j + 47 : 2]
            out += patch[:, None] * w.conv_w[None, :, 0, i, j, None, None]
    return np.maximum(out + w.conv_b[None, :, None, None], 0)


def numpy_logits(x: np.ndarray, w: Weights) -> np.ndarray:
    return conv_relu(x, w).reshape(len(x), -1) @ w.fc_w.T + w.fc_b


# --- ONNX ---------------------------------------------------------------------------------
def _onnx_model(name: str, nodes: list, arrays: dict[str, np.ndarray], batch: str | int) -> bytes:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, SIDE, SIDE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
        [numpy_helper.from_array(a, n) for n, a in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_conv(w: Weights, batch: str | int = "N") -> bytes:
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c"], strides=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], transB=1),
    ]
    arrays = {"w1": w.conv_w, "b1": w.conv_b, "w2": w.fc_w, "b2": w.fc_b}
    return _onnx_model("tiny_conv", nodes, arrays, batch)


def onnx_dense(fc_w: np.ndarray, fc_b: np.ndarray) -> bytes:
    nodes = [
        helper.make_node("Flatten", ["input"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w", "b"], ["logits"], transB=1),
    ]
    return _onnx_model("tiny_dense", nodes, {"w": fc_w, "b": fc_b}, "N")


def onnx_qdq(w: Weights, calibration: np.ndarray) -> bytes:
    """The conv graph with QuantizeLinear/DequantizeLinear pairs (what INT8 IRs come from).

    Weights use 7 bits ([-63, 63]), as our NNCF export does (overflow fix): x86 CPUs
    without VNNI multiply u8 x s8 with vpmaddubsw, whose pairwise s16 sums saturate for
    full-range weights (2 * 255 * 127 > 32767), so 8-bit weights score differently there.
    """
    act_scale = conv_relu(calibration, w).max() / 255
    w1_scale = (np.abs(w.conv_w).reshape(CONV_CH, -1).max(1) / 63).astype(np.float32)
    w2_scale = np.float32(np.abs(w.fc_w).max() / 63)
    arrays = {
        "w1_q": np.round(w.conv_w / w1_scale[:, None, None, None]).astype(np.int8),
        "w1_s": w1_scale,
        "w1_z": np.zeros(CONV_CH, np.int8),
        "b1": w.conv_b,
        "w2_q": np.round(w.fc_w / w2_scale).astype(np.int8),
        "w2_s": np.array(w2_scale, np.float32),
        "w2_z": np.array(0, np.int8),
        "b2": w.fc_b,
        "x_s": np.array(1 / 255, np.float32),
        "x_z": np.array(0, np.uint8),
        "a_s": np.array(act_scale, np.float32),
        "a_z": np.array(0, np.uint8),
    }
    node = helper.make_node
    nodes = [
        node("QuantizeLinear", ["input", "x_s", "x_z"], ["xq"]),
        node("DequantizeLinear", ["xq", "x_s", "x_z"], ["xd"]),
        node("DequantizeLinear", ["w1_q", "w1_s", "w1_z"], ["w1"], axis=0),
        node("Conv", ["xd", "w1", "b1"], ["c"], strides=[2, 2], pads=[0, 0, 1, 1]),
        node("Relu", ["c"], ["r"]),
        node("QuantizeLinear", ["r", "a_s", "a_z"], ["rq"]),
        node("DequantizeLinear", ["rq", "a_s", "a_z"], ["rd"]),
        node("Flatten", ["rd"], ["f"], axis=1),
        node("DequantizeLinear", ["w2_q", "w2_s", "w2_z"], ["w2"]),
        node("Gemm", ["f", "w2", "b2"], ["logits"], transB=1),
    ]
    return _onnx_model("tiny_qdq", nodes, arrays, "N")


# --- TFLite flatbuffers through LiteRT's schema ---------------------------------------------
class TfliteWriter:
    """Just enough of the TFLite object API to write one-subgraph models."""

    def __init__(self) -> None:
        self.buffers = [tfl.BufferT()]  # buffer 0 is the empty sentinel
        self.tensors: list = []
        self.operators: list = []
        self.codes: list[tuple[int, int]] = []

    def tensor(self, name, shape, ttype, data=None, quant=None, signature=None) -> int:
        tensor = tfl.TensorT()
        tensor.name, tensor.shape, tensor.type = name, list(shape), ttype
        if signature is not None:
            tensor.shapeSignature = list(signature)
        buffer = tfl.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        self.buffers.append(buffer)
        tensor.buffer = len(self.buffers) - 1
        if quant is not None:  # (scale, zero point[, quantized dimension])
            q = tfl.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(quant[0])]
            q.zeroPoint = [int(z) for z in np.atleast_1d(quant[1])]
            q.quantizedDimension = quant[2] if len(quant) > 2 else 0
            tensor.quantization = q
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def operator(self, code, version, inputs, outputs, options_type, options) -> None:
        if (code, version) not in self.codes:
            self.codes.append((code, version))
        op = tfl.OperatorT()
        op.opcodeIndex = self.codes.index((code, version))
        op.inputs, op.outputs = list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def finish(self, inputs, outputs) -> bytes:
        subgraph = tfl.SubGraphT()
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs, subgraph.outputs, subgraph.name = list(inputs), list(outputs), "main"
        model = tfl.ModelT()
        model.version, model.description = 3, "fer_ros test model"
        model.buffers, model.subgraphs = self.buffers, [subgraph]
        model.operatorCodes = []
        for code, version in self.codes:
            opcode = tfl.OperatorCodeT()
            opcode.builtinCode, opcode.deprecatedBuiltinCode = code, min(code, 127)
            opcode.version = version
            model.operatorCodes.append(opcode)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _conv_options() -> tfl.Conv2DOptionsT:
    options = tfl.Conv2DOptionsT()
    options.padding, options.strideW, options.strideH = tfl.Padding.SAME, 2, 2
    options.dilationWFactor = options.dilationHFactor = 1
    options.fusedActivationFunction = tfl.ActivationFunctionType.RELU
    return options


def _reshape_options(size: int) -> tfl.ReshapeOptionsT:
    options = tfl.ReshapeOptionsT()
    options.newShape = [-1, size]
    return options


def _fc_options() -> tfl.FullyConnectedOptionsT:
    options = tfl.FullyConnectedOptionsT()
    options.fusedActivationFunction = tfl.ActivationFunctionType.NONE
    return options


def _conv_net(m: TfliteWriter, dtype, q: dict, data: dict, batch: int = -1) -> tuple[int, int]:
    """input NHWC -> CONV_2D(+ReLU) -> RESHAPE(-1, FLAT) -> FULLY_CONNECTED -> logits.

    ``batch`` -1 lets the interpreter resize the batch; 1 fixes it, like exports that
    hard-code their shapes.
    """
    int8 = dtype == tfl.TensorType.INT8
    bias_type = tfl.TensorType.INT32 if int8 else tfl.TensorType.FLOAT32
    x = m.tensor("input", (1, SIDE, SIDE, 1), dtype, None, q.get("x"), (batch, SIDE, SIDE, 1))
    f = m.tensor("w1", (CONV_CH, KERNEL, KERNEL, 1), dtype, data["w1"], q.get("w1"))
    b = m.tensor("b1", (CONV_CH,), bias_type, data["b1"], q.get("b1"))
    c = m.tensor("conv", (1, 24, 24, CONV_CH), dtype, quant=q.get("a"))
    s = m.tensor("shape", (2,), tfl.TensorType.INT32, np.array([-1, FLAT], np.int32))
    r = m.tensor("flat", (1, FLAT), dtype, quant=q.get("a"))
    fw = m.tensor("w2", (CLASSES, FLAT), dtype, data["w2"], q.get("w2"))
    fb = m.tensor("b2", (CLASSES,), bias_type, data["b2"], q.get("b2"))
    y = m.tensor("logits", (1, CLASSES), dtype, quant=q.get("y"))
    ops, opts = tfl.BuiltinOperator, tfl.BuiltinOptions
    m.operator(ops.CONV_2D, 3 if int8 else 1, [x, f, b], [c], opts.Conv2DOptions, _conv_options())
    m.operator(ops.RESHAPE, 1, [c, s], [r], opts.ReshapeOptions, _reshape_options(FLAT))
    m.operator(
        ops.FULLY_CONNECTED,
        4 if int8 else 1,
        [r, fw, fb],
        [y],
        opts.FullyConnectedOptions,
        _fc_options(),
    )
    return x, y


def tflite_fp32_nhwc(w: Weights, batch: int = -1) -> bytes:
    m = TfliteWriter()
    data = {"w1": w.conv_w.transpose(0, 2, 3, 1), "b1": w.conv_b, "w2": w.fc_w_hwc(), "b2": w.fc_b}
    x, y = _conv_net(m, tfl.TensorType.FLOAT32, {}, data, batch)
    return m.finish([x], [y])


def tflite_int8_nhwc(w: Weights, calibration: np.ndarray) -> bytes:
    """Full-integer model: int8 input/output with scale and zero point, int32 biases."""
    x_scale, x_zero = 1 / 255, -128
    w1_scale = np.abs(w.conv_w).reshape(CONV_CH, -1).max(1) / 127  # per output channel
    a_scale, a_zero = float(conv_relu(calibration, w).max()) / 255, -128
    w2_scale = float(np.abs(w.fc_w).max()) / 127
    logits = numpy_logits(calibration, w)
    low, high = min(float(logits.min()), 0.0), max(float(logits.max()), 0.0)
    y_scale = (high - low) / 255
    y_zero = int(np.round(-128 - low / y_scale))
    w1_q = np.round(w.conv_w / w1_scale[:, None, None, None]).astype(np.int8)
    data = {
        "w1": w1_q.transpose(0, 2, 3, 1),
        "b1": np.round(w.conv_b / (x_scale * w1_scale)).astype(np.int32),
        "w2": np.round(w.fc_w_hwc() / w2_scale).astype(np.int8),
        "b2": np.round(w.fc_b / (a_scale * w2_scale)).astype(np.int32),
    }
    q = {
        "x": (x_scale, x_zero),
        "w1": (w1_scale, np.zeros(CONV_CH), 0),
        "b1": (x_scale * w1_scale, np.zeros(CONV_CH), 0),
        "a": (a_scale, a_zero),
        "w2": (w2_scale, 0),
        "b2": (a_scale * w2_scale, 0),
        "y": (y_scale, y_zero),
    }
    m = TfliteWriter()
    x, y = _conv_net(m, tfl.TensorType.INT8, q, data)
    return m.finish([x], [y])


def tflite_fp32_nchw_dense(fc_w: np.ndarray, fc_b: np.ndarray) -> bytes:
    """NCHW input (n, 1, 48, 48) -> RESHAPE -> FULLY_CONNECTED: exercises the NCHW path."""
    m = TfliteWriter()
    t = tfl.TensorType
    x = m.tensor("input", (1, 1, SIDE, SIDE), t.FLOAT32, signature=(-1, 1, SIDE, SIDE))
    s = m.tensor("shape", (2,), t.INT32, np.array([-1, SIDE * SIDE], np.int32))
    r = m.tensor("flat", (1, SIDE * SIDE), t.FLOAT32)
    fw = m.tensor("w", fc_w.shape, t.FLOAT32, fc_w)
    fb = m.tensor("b", fc_b.shape, t.FLOAT32, fc_b)
    y = m.tensor("logits", (1, CLASSES), t.FLOAT32)
    ops, opts = tfl.BuiltinOperator, tfl.BuiltinOptions
    m.operator(ops.RESHAPE, 1, [x, s], [r], opts.ReshapeOptions, _reshape_options(SIDE * SIDE))
    m.operator(ops.FULLY_CONNECTED, 1, [r, fw, fb], [y], opts.FullyConnectedOptions, _fc_options())
    return m.finish([x], [y])


# --- fixtures -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyModels:
    card: ModelCard
    crops: np.ndarray  # float32 (n, 1, 48, 48) in [0, 1]
    reference: np.ndarray  # softmax of the float network (onnxruntime)
    qdq_reference: np.ndarray  # softmax of the QDQ graph (onnxruntime)
    dense_reference: np.ndarray


def _smooth_crops(n: int, seed: int) -> np.ndarray:
    """Face-crop-like inputs: smooth random fields in [0, 1] (not noise, not real faces)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 1, 6, 6), dtype=np.float32)
    return np.clip(
        np.kron(coarse, np.ones((1, 1, 8, 8), np.float32))
        + rng.normal(0, 0.05, (n, 1, SIDE, SIDE)).astype(np.float32),
        0,
        1,
    )


def _ort_scores(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return softmax(session.run(None, {"input": x})[0])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    root = tmp_path_factory.mktemp("tiny_models")
    w = Weights.random()
    calibration = _smooth_crops(64, seed=1)
    crops = _smooth_crops(24, seed=2)
    dense_w = np.random.default_rng(3).normal(0, 0.05, (CLASSES, SIDE * SIDE)).astype(np.float32)
    dense_b = np.zeros(CLASSES, np.float32)
    files = {
        "onnx": ("tiny.onnx", onnx_conv(w)),
        "onnx_batch1": ("tiny_b1.onnx", onnx_conv(w, batch=1)),
        "onnx_qdq": ("tiny_qdq.onnx", onnx_qdq(w, calibration)),
        "onnx_dense": ("tiny_dense.onnx", onnx_dense(dense_w, dense_b)),
        "tflite_fp32": ("tiny_fp32.tflite", tflite_fp32_nhwc(w)),
        "tflite_batch1": ("tiny_fp32_b1.tflite", tflite_fp32_nhwc(w, batch=1)),
        "tflite_int8": ("tiny_int8.tflite", tflite_int8_nhwc(w, calibration)),
        "tflite_nchw": ("tiny_nchw.tflite", tflite_fp32_nchw_dense(dense_w, dense_b)),
    }
    for name, data in files.values():
        (root / name).write_bytes(data)
    for src, dst, fp16 in (
        ("tiny.onnx", "tiny_fp16.xml", True),
        ("tiny_qdq.onnx", "tiny_int8.xml", False),
    ):
        ov.save_model(ov.convert_model(str(root / src)), str(root / dst), compress_to_fp16=fp16)
    exports = {k: name for k, (name, _) in files.items()}
    exports |= {"openvino_fp16": "tiny_fp16.xml", "openvino_int8": "tiny_int8.xml"}
    save_model_card(ModelCard("tiny", CLASS_NAMES, files=exports), root / "tiny.json")
    card = load_model_card(root / "tiny.json")
    reference = _ort_scores(root / "tiny.onnx", crops)
    np.testing.assert_allclose(reference, softmax(numpy_logits(crops, w)), atol=1e-5)
    return TinyModels(
        card,
        crops,
        reference,
        _ort_scores(root / "tiny_qdq.onnx", crops),
        _ort_scores(root / "tiny_dense.onnx", crops),
    )


def settings(card: ModelCard, export: str, device: str = "", **kwargs) -> BackendSettings:
    return BackendSettings(card=card, model_export=export, device=device, **kwargs)


def assert_agrees(scores: np.ndarray, reference: np.ndarray, atol: float) -> None:
    assert scores.dtype == np.float32 and scores.shape == reference.shape
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(scores.argmax(axis=1), reference.argmax(axis=1))
    np.testing.assert_allclose(scores, reference, atol=atol)


# --- onnxruntime ------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2])
def test_onnxruntime_cpu_agrees_with_reference(tiny: TinyModels, threads: int):
    backend = OnnxRuntimeBackend(settings(tiny.card, "onnx", num_threads=threads))
    assert isinstance(backend, InferenceBackend)
    assert backend.device == "CPUExecutionProvider" and not backend.fallback
    assert backend.runtime == f"onnxruntime {ort.__version__}"
    for n in (1, 5, len(tiny.crops)):  # dynamic batch
        assert_agrees(backend.infer(tiny.crops[:n]).scores, tiny.reference[:n], atol=1e-5)
    backend.close()


def test_onnxruntime_fixed_batch_export_runs_any_batch(tiny: TinyModels):
    backend = OnnxRuntimeBackend(settings(tiny.card, "onnx_batch1"))
    assert_agrees(backend.infer(tiny.crops[:5]).scores, tiny.reference[:5], atol=1e-5)


def test_onnxruntime_tensorrt_without_fallback_is_unavailable(tiny: TinyModels):
    with pytest.raises(BackendUnavailable, match=r"TensorrtExecutionProvider.*not allow a CPU"):
        OnnxRuntimeBackend(settings(tiny.card, "onnx", "tensorrt"))


def test_onnxruntime_jetson_chain_declared_fallback(tiny: TinyModels, caplog):
    with caplog.at_level(logging.WARNING, "fer_ros.backends.onnxruntime_backend"):
        backend = OnnxRuntimeBackend(settings(tiny.card, "onnx", "jetson", allow_cpu_fallback=True))
    assert backend.fallback and backend.device == "CPUExecutionProvider"
    assert len(caplog.records) == 1 and "TensorrtExecutionProvider" in caplog.text
    assert_agrees(backend.infer(tiny.crops).scores, tiny.reference, atol=1e-5)


def test_onnxruntime_missing_model_file(tiny: TinyModels, tmp_path: Path):
    card = ModelCard("gone", CLASS_NAMES, files={"onnx": "gone.onnx"}, path=tmp_path / "c.json")
    with pytest.raises(BackendUnavailable, match="model file missing"):
        OnnxRuntimeBackend(settings(card, "onnx"))
    with pytest.raises(BackendUnavailable, match="no 'tflite_int8' export"):
        OnnxRuntimeBackend(settings(card, "tflite_int8"))


def test_onnxruntime_device_parsing():
    assert requested_providers("") == ["CPUExecutionProvider"]
    assert requested_providers("jetson") == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert requested_providers("TensorRT, cuda,CPU") == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    with pytest.raises(ValueError, match="unknown onnxruntime device"):
        requested_providers("tpu")


# --- LiteRT -----------------------------------------------------------------------------------
def test_litert_fp32_nhwc_agrees_and_resizes(tiny: TinyModels):
    backend = LiteRtBackend(settings(tiny.card, "tflite_fp32", num_threads=2))
    assert isinstance(backend, InferenceBackend)
    assert backend.device == "cpu" and not backend.fallback
    assert backend.runtime.startswith("ai-edge-litert ")
    for n in (1, len(tiny.crops), 3):
        assert_agrees(backend.infer(tiny.crops[:n]).scores, tiny.reference[:n], atol=1e-5)
    backend.close()


def test_litert_fixed_batch_model_runs_any_batch(tiny: TinyModels):
    backend = LiteRtBackend(settings(tiny.card, "tflite_batch1"))
    assert_agrees(backend.infer(tiny.crops[:5]).scores, tiny.reference[:5], atol=1e-5)
    assert_agrees(backend.infer(tiny.crops[:1]).scores, tiny.reference[:1], atol=1e-5)


def test_litert_nchw_model(tiny: TinyModels):
    backend = LiteRtBackend(settings(tiny.card, "tflite_nchw"))
    assert_agrees(backend.infer(tiny.crops).scores, tiny.dense_reference, atol=1e-5)


def test_litert_layout_from_card_must_match_the_model(tiny: TinyModels):
    card = ModelCard(
        "tiny", CLASS_NAMES, files=tiny.card.files, extra={"layout": "NCHW"}, path=tiny.card.path
    )
    with pytest.raises(BackendUnavailable, match="does not match layout NCHW"):
        LiteRtBackend(settings(card, "tflite_fp32"))


def test_litert_int8_quantises_inputs_and_outputs(tiny: TinyModels):
    backend = LiteRtBackend(settings(tiny.card, "tflite_int8", num_threads=4))
    scores = backend.infer(tiny.crops).scores
    agreement = (scores.argmax(1) == tiny.reference.argmax(1)).mean()
    assert agreement >= 0.9, agreement
    assert np.abs(scores - tiny.reference).max() < 0.05


def _edgetpu_runtime_present() -> bool:
    try:
        ctypes.CDLL(edgetpu_library())
    except OSError:
        return False
    return True


@pytest.mark.skipif(_edgetpu_runtime_present(), reason="this machine has the Edge TPU runtime")
def test_litert_edgetpu_without_runtime_is_unavailable(tiny: TinyModels):
    with pytest.raises(BackendUnavailable, match=r"libedgetpu\.so\.1.*libedgetpu1-std"):
        LiteRtBackend(settings(tiny.card, "tflite_int8", "edgetpu"))


@pytest.mark.skipif(_edgetpu_runtime_present(), reason="this machine has the Edge TPU runtime")
def test_litert_edgetpu_declared_fallback_runs_int8_on_cpu(tiny: TinyModels, caplog):
    cpu = LiteRtBackend(settings(tiny.card, "tflite_int8"))
    with caplog.at_level(logging.WARNING, "fer_ros.backends.litert_backend"):
        backend = LiteRtBackend(
            settings(tiny.card, "tflite_int8", "edgetpu:usb", allow_cpu_fallback=True)
        )
    assert backend.fallback and backend.device == "cpu"
    assert len(caplog.records) == 1 and "tiny_int8.tflite" in caplog.text
    np.testing.assert_array_equal(backend.infer(tiny.crops).scores, cpu.infer(tiny.crops).scores)


def test_litert_rejects_unknown_device(tiny: TinyModels):
    with pytest.raises(ValueError, match="unknown litert device"):
        LiteRtBackend(settings(tiny.card, "tflite_fp32", "gpu"))


# --- OpenVINO ---------------------------------------------------------------------------------
def test_openvino_fp16_ir_on_cpu(tiny: TinyModels):
    backend = OpenVinoBackend(settings(tiny.card, "openvino_fp16", "CPU", num_threads=1))
    assert isinstance(backend, InferenceBackend)
    assert backend.device == "CPU" and not backend.fallback
    assert backend.runtime.startswith("openvino 20")
    for n in (1, len(tiny.crops)):
        assert_agrees(backend.infer(tiny.crops[:n]).scores, tiny.reference[:n], atol=5e-3)
    backend.close()


def test_openvino_int8_ir_matches_the_quantised_graph(tiny: TinyModels):
    backend = OpenVinoBackend(settings(tiny.card, "openvino_int8"))
    scores = backend.infer(tiny.crops).scores
    assert_agrees(scores, tiny.qdq_reference, atol=2e-3)
    assert (scores.argmax(1) == tiny.reference.argmax(1)).mean() >= 0.9


def test_openvino_static_batch_feeds_chunks(tiny: TinyModels):
    backend = OpenVinoBackend(
        settings(tiny.card, "openvino_fp16", "CPU", options={"static_batch": True})
    )
    assert_agrees(backend.infer(tiny.crops[:3]).scores, tiny.reference[:3], atol=5e-3)


def test_openvino_myriad_needs_2022_3(tiny: TinyModels):
    if openvino_release(ov.get_version()) <= (2022, 3):
        pytest.skip("this OpenVINO still has the MYRIAD plugin")
    with pytest.raises(BackendUnavailable, match=r"MYRIAD .*needs OpenVINO <= 2022\.3"):
        OpenVinoBackend(settings(tiny.card, "openvino_fp16", "MYRIAD"))


def test_openvino_ncs2_profile_falls_back_to_cpu(tiny: TinyModels, caplog):
    if {"NPU"} & {d.split(".")[0] for d in ov.Core().available_devices}:
        pytest.skip("this machine has an NPU")
    with caplog.at_level(logging.WARNING, "fer_ros.backends.openvino_backend"):
        backend = OpenVinoBackend(
            settings(tiny.card, "openvino_fp16", "MYRIAD,NPU", allow_cpu_fallback=True)
        )
    assert backend.fallback and backend.device == "CPU"
    assert len(caplog.records) == 1 and "NPU" in caplog.text
    assert_agrees(backend.infer(tiny.crops).scores, tiny.reference, atol=5e-3)


def test_openvino_auto_reports_the_executing_device(tiny: TinyModels):
    if {"NPU", "GPU"} & {d.split(".")[0] for d in ov.Core().available_devices}:
        pytest.skip("AUTO may pick an accelerator on this machine")
    backend = OpenVinoBackend(settings(tiny.card, "openvino_int8", "AUTO:NPU,CPU"))
    assert backend.device == "CPU" and not backend.fallback
    assert_agrees(backend.infer(tiny.crops).scores, tiny.qdq_reference, atol=2e-3)


def test_openvino_device_parsing_and_reasons():
    assert requested_devices("") == ["CPU"]
    assert requested_devices("myriad, npu") == ["MYRIAD", "NPU"]
    assert requested_devices("AUTO:NPU,CPU") == ["AUTO:NPU,CPU"]
    assert openvino_release("2026.4.1-22982-e213a147257-releases/2026/4") == (2026, 4)
    assert unavailable_reason("MYRIAD", ["CPU", "MYRIAD"], (2022, 3)) is None
    assert "udev" in unavailable_reason("MYRIAD", ["CPU"], (2022, 3))
    assert unavailable_reason("GPU", ["CPU", "GPU.0"], (2026, 4)) is None
    assert "linux-npu-driver" in unavailable_reason("NPU", ["CPU"], (2026, 4))


# --- registry ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "export"),
    [("onnxruntime", "onnx"), ("litert", "tflite_fp32"), ("openvino", "openvino_fp16")],
)
def test_backends_load_through_the_registry(tiny: TinyModels, name: str, export: str):
    backend = create_backend(name, settings(tiny.card, export))
    assert backend.name == name
    assert backend.infer(tiny.crops[:0]).scores.shape == (0, CLASSES)
    backend.close()
