"""Accuracy, quantisation gap and export agreement of the committed models, per target.

Reads the model cards in models/ (figures written by fer_ros.training) and prints one
row per deployment target. With ``--live`` it re-runs every export on the card's
held-out CK+ split (from shared/data) and reports the measured figures instead, plus
per-image latency in each runtime (this CPU, batch 1, one thread).

    python benchmarks/bench_models.py [--live] [--data PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.model_card import ModelCard, load_model_card  # noqa: E402

MODELS = REPO / "models"
DATA = REPO.parent / "shared" / "data" / "ck_plus_48_dev.npz"
# target -> (cards in order of preference, export the target runs, fp32 export compared)
TARGETS = {
    "cpu": (("fer_cnn_cpu.json",), "onnx", None),
    "jetson": (("fer_cnn_cpu.json",), "onnx", None),
    "rpi": (("fer_cnn_rpi.json", "fer_cnn_cpu.json"), "tflite_fp32", None),
    "rpi-int8": (("fer_cnn_rpi.json", "fer_cnn_cpu.json"), "tflite_int8", "tflite_fp32"),
    "coral": (("fer_cnn_cpu.json",), "tflite_int8", "tflite_fp32"),
    "ncs2": (("fer_cnn_cpu.json",), "openvino_fp16", None),
    "ncs2-int8": (("fer_cnn_cpu.json",), "openvino_int8", "openvino_fp16"),
    "loihi": (("fer_snn_loihi.json",), "cnn_spec", None),
}
CV_GOAL, INT8_GAP_GOAL = 0.95, 0.01


def live_figures(card: ModelCard, data: Path) -> dict[str, dict[str, float]]:
    """Accuracy, agreement with ONNX and latency of every export, measured now."""
    from fer_ros.core.preprocessing import preprocess_crops
    from fer_ros.training import export as ex
    from fer_ros.training.latency import measure_latency
    from fer_ros.training.splits import held_out
    from fer_ros.training.tflite_export import runner as tflite_runner

    part = held_out(card, data)
    x = preprocess_crops(part.dataset.images[part.test], card.preprocessing, card.canny)
    labels = part.dataset.labels[part.test]
    ref = ex.onnx_runner(card.file("onnx"))(x).argmax(1)
    out = {}
    for export in card.files:
        if export == "cnn_spec":
            run = ex.spec_runner(card.file(export))
        elif export == "onnx":
            run = ex.onnx_runner(card.file(export))
        elif export.startswith("tflite"):
            run = tflite_runner(card.file(export))
        elif export.startswith("openvino"):
            from fer_ros.training.openvino_export import runner

            run = runner(card.file(export))
        else:
            continue
        pred = np.concatenate([run(x[i : i + 1]) for i in range(len(x))]).argmax(1)
        fig = {
            "accuracy": float(np.mean(pred == labels)),
            "argmax_agreement": float(np.mean(pred == ref)),
        }
        if export != "cnn_spec":
            fig["latency_ms"] = measure_latency(card.file(export), export)["median_ms"]
        out[export] = fig
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--live", action="store_true", help="re-run exports on held-out data")
    p.add_argument("--data", type=Path, default=DATA)
    args = p.parse_args()
    if args.live and not args.data.is_file():
        sys.exit(f"--live needs the CK+ dev set: {args.data} not found")
    cards: dict[str, ModelCard] = {}
    live: dict[str, dict] = {}
    header = (
        f"{'target':10} {'model':14} {'export':14} {'CV acc (mean±std)':20} "
        f"{'held-out':9} {'int8 gap':9} {'agree':7} {'latency':9} goals"
    )
    print(header)
    print("-" * len(header))
    for target, (names, export, fp32) in TARGETS.items():
        name = next((n for n in names if (MODELS / n).is_file()), None)
        if name is None:
            print(f"{target:10} {names[0]}: not committed")
            continue
        card = cards.setdefault(name, load_model_card(MODELS / name))
        if export not in card.files:
            print(f"{target:10} {card.model_id:14} {export:14} export not in card")
            continue
        if args.live and name not in live:
            live[name] = live_figures(card, args.data)
        agree = live[name][export] if args.live else card.extra["export_agreement"][export]
        cv = card.extra.get("cross_validation")
        cv_txt = f"{cv['accuracy_mean']:.3f} ± {cv['accuracy_std']:.3f}" if cv else "n/a"
        gap_txt, gap = "", None
        if fp32:
            base = live[name][fp32] if args.live else card.extra["export_agreement"][fp32]
            gap = base["accuracy"] - agree["accuracy"]
            gap_txt = f"{100 * gap:+.1f} pt"
        goals = []
        if cv:
            goals.append("CV>=95%:" + ("ok" if cv["accuracy_mean"] >= CV_GOAL else "MISSED"))
        if gap is not None:
            goals.append("int8<=1pt:" + ("ok" if gap <= INT8_GAP_GOAL else "MISSED"))
        lat = agree.get("latency_ms")
        print(
            f"{target:10} {card.model_id:14} {export:14} {cv_txt:20} "
            f"{agree['accuracy']:<9.3f} {gap_txt:9} {agree['argmax_agreement']:<7.3f} "
            f"{'' if lat is None else f'{lat:.3f} ms':9} {' '.join(goals)}"
        )
    print(
        "\nagree = argmax agreement with the PyTorch model (card) or the ONNX export "
        "(--live), on the card's group-disjoint held-out split; int8 gap = fp32 accuracy "
        "minus int8 accuracy."
    )


if __name__ == "__main__":
    main()
