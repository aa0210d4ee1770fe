"""Re-export a saved checkpoint and merge the exports into its card (``fer_ros_export``).

Usage::

    python -m fer_ros.training.reexport --checkpoint build/training/fer_cnn_cpu.pt \\
        --exports onnx,tflite_fp32,tflite_int8,openvino_fp16,openvino_int8

The checkpoint records its data set and split, so calibration and agreement crops are the
ones training used (:func:`fer_ros.training.pipeline.reexport`); each export is measured
as :mod:`fer_ros.training.export` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_ros.training.export import ALL_EXPORTS
from fer_ros.training.pipeline import reexport


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--exports", default="onnx", help=f"comma list of {', '.join(ALL_EXPORTS)}")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="models directory (default: the card's directory recorded in the checkpoint)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset for calibration/checks (default: the one recorded in the checkpoint)",
    )
    args = p.parse_args(argv)
    reexport(
        args.checkpoint,
        [e.strip() for e in args.exports.split(",") if e.strip()],
        args.out,
        args.data,
    )


if __name__ == "__main__":
    main()
