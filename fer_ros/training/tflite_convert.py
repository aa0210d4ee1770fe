"""PyTorch -> .tflite with litert-torch; run as a script in the export interpreter.

litert-torch pulls numpy 2 and ~2 GB of build-time packages, which the main venv (numpy<2
for nengo-loihi) cannot hold, so :mod:`fer_ros.training.tflite_export` runs this file in a
separate interpreter. It imports only torch, litert-torch and :mod:`fer_ros.training.model`.

int8: PT2E static quantisation (per-channel symmetric weights, per-tensor int8
activations) calibrated on training crops, then the float input/output interface is
replaced by int8 (``modify_model_interface``) so the model is integer-only, as the Edge
TPU compiler requires.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from fer_ros.training.model import ArchConfig, FerCnn

TFLITE_INT8 = 9  # tflite schema TensorType.INT8


def load_model(checkpoint: Path) -> FerCnn:
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = FerCnn(ArchConfig.from_json(data["arch"]), len(data["classes"]))
    model.load_state_dict(data["state_dict"])
    return model.eval()


class ChannelLastFlatten(torch.nn.Module):
    """The same network, flattening features in (H, W, C) order.

    TFLite keeps activations NHWC; flattening in PyTorch's (C, H, W) order forces a
    TRANSPOSE op before the first dense layer. Permuting that layer's weight columns
    instead gives an identical function without it.
    """

    def __init__(self, model: FerCnn) -> None:
        super().__init__()
        mods = list(model.net)
        cut = next(i for i, m in enumerate(mods) if isinstance(m, torch.nn.Flatten))
        self.features = torch.nn.Sequential(*mods[:cut])
        self.head = torch.nn.Sequential(*mods[cut + 1 :])
        with torch.no_grad():
            c, h, w = self.features(torch.zeros(1, 1, *model.input_hw)).shape[1:]
            first = next(m for m in self.head if isinstance(m, torch.nn.Linear))
            o = first.weight.shape[0]
            first.weight.copy_(first.weight.reshape(o, c, h, w).permute(0, 2, 3, 1).reshape(o, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).permute(0, 2, 3, 1).flatten(1))


def convert(checkpoint: Path, out: Path, int8: bool, calib: Path | None) -> None:
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize.quant_config import QuantConfig

    torch.set_num_threads(1)
    model = load_model(checkpoint)
    h, w = model.input_hw
    nhwc = litert_torch.to_channel_last_io(ChannelLastFlatten(model), args=[0]).eval()
    sample = (torch.zeros(1, h, w, 1),)
    if not int8:
        litert_torch.convert(nhwc, sample).export(str(out))
        return
    from torchao.quantization.pt2e import quantize_pt2e

    quantizer = pq.PT2EQuantizer().set_global(
        pq.get_symmetric_quantization_config(is_per_channel=True)
    )
    graph = torch.export.export(nhwc, sample).module()
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    x = np.load(calib).astype(np.float32)  # (n, 1, H, W)
    with torch.no_grad():
        for i in range(len(x)):
            graph(torch.from_numpy(x[i : i + 1]).permute(0, 2, 3, 1))
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    edge = litert_torch.convert(graph, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    from ai_edge_litert import _pywrap_modify_model_interface as mmi

    with tempfile.TemporaryDirectory() as tmp:
        float_io = Path(tmp) / "float_io.tflite"
        edge.export(str(float_io))
        status = mmi.modify_model_interface(str(float_io), str(out), TFLITE_INT8, TFLITE_INT8)
    if status != 0 or not out.is_file():
        raise RuntimeError(f"modify_model_interface failed with status {status}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--int8", action="store_true")
    p.add_argument("--calib", type=Path, default=None, help=".npy float32 (n,1,H,W) crops")
    a = p.parse_args()
    convert(a.checkpoint, a.out, a.int8, a.calib)


if __name__ == "__main__":
    main()
