"""OpenVINO IR exports: FP16 weights, and INT8 by NNCF post-training quantisation.

Both start from our ONNX graph. FP16 is what the (legacy) NCS2/MYRIAD plugin ran; INT8 is
for CPU/iGPU deployments. Calibration uses training crops only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def export_openvino(
    onnx_path: Path, xml_path: Path, int8: bool, calib: np.ndarray
) -> dict[str, Any]:
    """Write ``xml_path`` (+ ``.bin`` beside it); returns card notes."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    notes: dict[str, Any] = {
        "layout": "NCHW float32 input, dynamic batch",
        "runtime": f"openvino {ov.get_version().split('-')[0]}",
        "bin": xml_path.with_suffix(".bin").name,
    }
    if int8:
        import nncf
        from nncf.quantization.advanced_parameters import (
            AdvancedQuantizationParameters,
            OverflowFix,
        )
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        dataset = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
        # 7-bit weights in every layer: x86 CPUs without VNNI (AVX2 only) multiply u8 x s8
        # with vpmaddubsw, whose pairwise int16 sums saturate for full 8-bit weights, so
        # the same IR scored differently on AVX2 and on VNNI machines. Activation ranges are
        # the calibration's min/max: NNCF's default (averaged per-sample extremes) clipped
        # the brighter CK+ faces when most calibration crops were in-the-wild photos
        # (softmax off by 0.11 on average on CK+, against 0.012 with min/max).
        model = nncf.quantize(
            model,
            dataset,
            subset_size=len(calib),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            advanced_parameters=AdvancedQuantizationParameters(
                overflow_fix=OverflowFix.ENABLE,
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX,
            ),
        )
        notes.update(
            {
                "precision": "INT8 activations (min/max ranges), 7-bit weights (NNCF PTQ, "
                "overflow fix on every layer), FP32 I/O",
                "calibration_samples": len(calib),
                "nncf": nncf.__version__,
            }
        )
        ov.save_model(model, str(xml_path), compress_to_fp16=False)
    else:
        notes["precision"] = "FP16 weights (compress_to_fp16), FP32 I/O"
        ov.save_model(model, str(xml_path), compress_to_fp16=True)
    return notes


def runner(xml_path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Logits from the IR on the CPU plugin, one thread."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(xml_path), "CPU", {"INFERENCE_NUM_THREADS": 1})
    return lambda x: compiled(x)[0]
