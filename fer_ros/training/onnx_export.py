"""ONNX opset 13 written directly from the folded layers.

Only Conv, Relu, MaxPool, GlobalAveragePool, Flatten and Gemm: all standard ops that
TensorRT 8, ONNX Runtime and OpenVINO import. Writing the graph ourselves (instead of
tracing PyTorch) keeps it free of exporter-version quirks and makes the batch dimension
dynamic.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper, numpy_helper

from fer_ros.training.graph import Layer

OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def build_onnx(
    layers: list[Layer], input_shape: tuple[int, int, int], name: str
) -> onnx.ModelProto:
    """ModelProto taking float32 (batch, C, H, W) and returning (batch, classes) logits."""
    nodes, inits = [], []
    x = INPUT_NAME
    for i, lay in enumerate(layers):
        y = f"t{i}"
        if lay.kind == "conv":
            w = f"conv{i}.weight"
            inits.append(numpy_helper.from_array(lay.weights, w))
            inputs = [x, w]
            if lay.bias is not None:
                inits.append(numpy_helper.from_array(lay.bias, f"conv{i}.bias"))
                inputs.append(f"conv{i}.bias")
            kh, kw = lay.weights.shape[2:]
            p = lay.padding
            nodes.append(
                helper.make_node(
                    "Conv",
                    inputs,
                    [y],
                    kernel_shape=[kh, kw],
                    strides=[lay.stride] * 2,
                    pads=[p, p, p, p],
                    name=f"conv{i}",
                )
            )
        elif lay.kind == "maxpool":
            nodes.append(
                helper.make_node(
                    "MaxPool", [x], [y], kernel_shape=[2, 2], strides=[2, 2], name=f"pool{i}"
                )
            )
        elif lay.kind == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", [x], [y], name=f"gap{i}"))
        else:
            if len(layers) and i > 0 and layers[i - 1].kind != "dense":
                nodes.append(helper.make_node("Flatten", [x], [f"flat{i}"], axis=1))
                x = f"flat{i}"
            w, b = f"dense{i}.weight", f"dense{i}.bias"
            inits.append(numpy_helper.from_array(lay.weights, w))
            inputs = [x, w]
            if lay.bias is not None:
                inits.append(numpy_helper.from_array(lay.bias, b))
                inputs.append(b)
            nodes.append(helper.make_node("Gemm", inputs, [y], transB=1, name=f"dense{i}"))
        x = y
        if lay.relu:
            nodes.append(helper.make_node("Relu", [x], [f"{y}_relu"]))
            x = f"{y}_relu"
    nodes[-1].output[0] = OUTPUT_NAME
    n_out = layers[-1].out_shape[0]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", *input_shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", n_out])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, producer_name="fer_ros.training", opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.10 and TensorRT 8.x parsers
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(layers: list[Layer], input_shape: tuple[int, int, int], path: Path) -> None:
    onnx.save(build_onnx(layers, input_shape, path.stem), str(path))


def onnx_ops(path: Path) -> list[str]:
    """Distinct operator types in a saved model, in order of first use."""
    seen: dict[str, None] = {}
    for node in onnx.load(str(path)).graph.node:
        seen.setdefault(node.op_type, None)
    return list(seen)
