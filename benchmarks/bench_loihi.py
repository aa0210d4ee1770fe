"""Loihi SNN benchmark: emulator latency, SNN/CNN agreement, accuracy, energy, spikes.

For each model card (Canny and, when given, grayscale input) and each number of
timesteps, every held-out CK+ crop of the card's split is rate-encoded, presented to the
nengo-loihi emulator and compared with the CNN. Prints one table row per (card, T):

    python benchmarks/bench_loihi.py                       # Canny and grayscale models
    python benchmarks/bench_loihi.py --gray-card ""        # Canny model only

A card without an ``snn`` export is converted in memory with the converter's defaults.
The grayscale twin is the loihi profile's own model (fer_snn_loihi): the same network and
recipe as fer_snn_loihi_canny, on grayscale input (docs/training.md says how both were made).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.cnn_spec import load_cnn_spec  # noqa: E402
from fer_ros.core.model_card import load_model_card  # noqa: E402
from fer_ros.core.paths import data_path  # noqa: E402
from fer_ros.snn.convert import convert  # noqa: E402
from fer_ros.snn.evaluate import Evaluation, evaluate  # noqa: E402
from fer_ros.snn.params import SnnParams, load_snn_params  # noqa: E402
from fer_ros.snn.runner import SnnRunner  # noqa: E402
from fer_ros.training.card_data import calibration_subset, card_split  # noqa: E402

TIMESTEPS = (10, 20, 30, 50, 100)


def load_params(card, train) -> tuple[SnnParams, str]:
    if "snn" in card.files and card.file("snn").is_file():
        return load_snn_params(card.file("snn")), "file"
    spec = load_cnn_spec(str(card.file("cnn_spec")))
    return convert(spec, calibration_subset(train, 256), card.model_id), "converted"


def row(label: str, ev: Evaluation) -> str:
    spikes = " ".join(f"{s:.0f}" for s in ev.spikes_per_layer)
    return (
        f"| {label} | {ev.timesteps} | {ev.ms_per_face:.1f} | {ev.agreement:.3f} | "
        f"{ev.accuracy:.3f} | {ev.cnn_accuracy:.3f} | {ev.energy.total * 1e6:.1f} | "
        f"{ev.energy.dynamic * 1e6:.1f} | {ev.energy.seconds * 1e6:.0f} | "
        f"{ev.energy.power * 1e3:.1f} | {spikes} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default="fer_snn_loihi_canny.json", help="Canny Loihi card")
    parser.add_argument(
        "--gray-card", default="fer_snn_loihi.json", help="grayscale Loihi card ('': none)"
    )
    parser.add_argument("--data", type=Path, default=data_path())
    parser.add_argument("--timesteps", default=",".join(map(str, TIMESTEPS)))
    parser.add_argument("--limit", type=int, default=0, help="held-out crops (0: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write figures here")
    args = parser.parse_args(argv)
    logging.getLogger("nengo_loihi").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="nengo_loihi")
    steps = [int(s) for s in args.timesteps.split(",")]
    cards = [("canny", args.card)] + ([("grayscale", args.gray_card)] if args.gray_card else [])
    results = []
    print(
        "| input | T | emulator ms/face | SNN/CNN agreement | SNN acc | CNN acc | "
        "energy uJ/face | dynamic uJ | chip us/face | power mW | spikes/face "
        "(input, layers...) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, name in cards:
        card = load_model_card(name)
        if card.preprocessing != label:
            print(f"note: {name} uses {card.preprocessing} input", file=sys.stderr)
        train, held_out = card_split(card, args.data)
        params, origin = load_params(card, train)
        spec = load_cnn_spec(str(card.file("cnn_spec")))
        limit = args.limit or len(held_out.x)
        runner = SnnRunner(params, target="sim")  # built once, reused for every T
        try:
            for t in steps:
                ev = evaluate(
                    params, spec, held_out.x[:limit], held_out.y[:limit], t, runner=runner
                )
                print(row(f"{card.preprocessing} ({card.model_id}, {origin})", ev), flush=True)
                results.append({"card": card.model_id, "input": card.preprocessing, **ev.as_dict()})
        finally:
            runner.close()
    print(
        "\nlayers: "
        + ", ".join(("input", *params.layer_names))
        + f"; energy: {params.model_id} modelled, Davies et al. 2018 Table 2 constants, "
        "static = per-core share of 104 mW/chip (Frady et al. 2020), unthrottled chip time"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
