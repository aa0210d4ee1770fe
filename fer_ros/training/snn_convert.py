"""Convert a model card's CNN into a Loihi SNN and record it in the card (command line).

    python -m fer_ros.training.snn_convert --card fer_snn_loihi_canny.json

Rebuilds the card's training split (:mod:`fer_ros.training.card_data`), converts its
CnnSpec on training crops (:func:`fer_ros.snn.convert.convert`), writes
``<id>_snn.npz`` beside the card, measures SNN/CNN agreement on the held-out crops in
nengo-loihi's emulator and writes the card's ``snn`` section. It lives in training, not in
snn, because rebuilding the split needs the training package.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from fer_ros.core.cnn_spec import load_cnn_spec
from fer_ros.core.model_card import load_model_card, save_model_card
from fer_ros.snn.convert import DEFAULT_PERCENTILE, card_section, convert, file_digest
from fer_ros.snn.evaluate import evaluate
from fer_ros.snn.params import save_snn_params
from fer_ros.training.card_data import calibration_subset, card_split

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fer_ros.training.snn_convert",
        description="Convert a model card's CnnSpec into a Loihi SNN parameter file, "
        "measure SNN/CNN agreement on the card's held-out crops and record both in the card.",
    )
    parser.add_argument("--card", required=True, help="model card (name in models/ or path)")
    parser.add_argument(
        "--data", type=Path, default=None, help="labelled crops (default: $FER_ROS_DATA, shared)"
    )
    parser.add_argument("--timesteps", type=int, default=50, help="steps per face")
    parser.add_argument("--max-rate", type=float, default=500.0, help="hidden-layer max Hz")
    parser.add_argument(
        "--input-rate", type=float, default=1000.0, help="spike encoder max_rate (Hz)"
    )
    parser.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    parser.add_argument("--calibration", type=int, default=256, help="training crops used")
    parser.add_argument("--eval-limit", type=int, default=0, help="held-out crops (0: all)")
    parser.add_argument("--no-eval", action="store_true", help="skip the emulator evaluation")
    parser.add_argument("--output", type=Path, default=None, help="default models/<id>_snn.npz")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    card = load_model_card(args.card)
    assert card.path is not None
    spec_path = card.file("cnn_spec")
    spec = load_cnn_spec(str(spec_path))
    logging.getLogger("nengo_loihi").setLevel(logging.WARNING)  # one INFO line per run
    train, held_out = card_split(card, args.data)
    params = convert(
        spec,
        calibration_subset(train, args.calibration),
        card.model_id,
        max_rate=args.max_rate,
        input_rate=args.input_rate,
        timesteps=args.timesteps,
        percentile=args.percentile,
    )
    params = replace(params, extra={**params.extra, "cnn_spec_sha1": file_digest(spec_path)})
    out = args.output or card.path.parent / f"{card.model_id}_snn.npz"
    save_snn_params(params, out)
    log.info("wrote %s (%d layers, %d cores)", out, len(params.layers), params.n_cores)
    figures: dict[str, object] = card_section(params, out.name, args.percentile)
    if not args.no_eval:
        limit = args.eval_limit or len(held_out.x)
        result = evaluate(params, spec, held_out.x[:limit], held_out.y[:limit], args.timesteps)
        figures["held_out_emulator"] = {"target": "nengo-loihi emulator", **result.as_dict()}
        log.info(
            "held-out: agreement %.3f, accuracy %.3f (CNN %.3f), %.1f ms/face",
            result.agreement,
            result.accuracy,
            result.cnn_accuracy,
            result.ms_per_face,
        )
    files = dict(card.files)
    if out.parent == card.path.parent:
        files["snn"] = out.name
    extra = dict(card.extra)
    extra["snn"] = figures
    save_model_card(replace(card, files=files, extra=extra), card.path)
    log.info("updated %s", card.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
