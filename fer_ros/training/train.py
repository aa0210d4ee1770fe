"""Train a FER CNN with group-aware cross-validation, export it and write its model card.

Example (the committed CPU model)::

    python -m fer_ros.training.train --data /work/shared/data/ck_plus_48_dev.npz \\
        --arch cpu --preprocessing grayscale --model-id fer_cnn_cpu --exports onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from fer_ros.core.model_card import CannySettings
from fer_ros.core.paths import models_dir
from fer_ros.training.augment import ROBOT_CAMERA, AugmentSettings
from fer_ros.training.export import ALL_EXPORTS
from fer_ros.training.fit import TrainSettings
from fer_ros.training.model import PRESETS, ArchConfig


def default_models_dir() -> Path:
    """The source tree's models/ when running from a checkout (where artifacts are
    committed), else the installed package's."""
    source = Path(__file__).resolve().parents[2] / "models"
    return source if source.is_dir() else models_dir()


def arch_from_arg(value: str) -> ArchConfig:
    """A preset name, a JSON file (``search`` writes these) or inline JSON."""
    if value in PRESETS:
        return PRESETS[value]
    path = Path(value)
    text = path.read_text() if path.is_file() else value
    data = json.loads(text)
    return ArchConfig.from_json(data.get("config", data))


def search_provenance(value: str) -> dict[str, object]:
    """The search result a ``best_arch.json`` records, for the card (else nothing)."""
    path = Path(value)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    keys = ("target", "budget", "trials", "best")
    return {"search": {k: data[k] for k in keys if k in data}} if "best" in data else {}


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Data, preprocessing and training options shared by ``train`` and ``search``."""
    p.add_argument(
        "--data",
        required=True,
        help="CK+ or in-the-wild .npz, FER2013 .csv or class-per-folder dir; "
        "several joined with commas (a.npz,b.npz), reported apart",
    )
    p.add_argument(
        "--classes",
        default=None,
        help="comma list of class names to keep, in output order "
        "(default: the dataset's, in the project's order)",
    )
    p.add_argument(
        "--group-regex",
        default=None,
        help="folder datasets: regex on file stems giving the group id",
    )
    p.add_argument("--preprocessing", choices=("grayscale", "canny"), default="grayscale")
    p.add_argument("--canny-blur", type=int, default=CannySettings.blur_kernel)
    p.add_argument("--canny-low", type=int, default=CannySettings.low_threshold)
    p.add_argument("--canny-high", type=int, default=CannySettings.high_threshold)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument(
        "--ema-decay", type=float, default=TrainSettings.ema_decay, help="weight EMA (0: off)"
    )
    p.add_argument("--mixup-alpha", type=float, default=TrainSettings.mixup_alpha)
    p.add_argument("--erase-probability", type=float, default=AugmentSettings.erase_probability)
    p.add_argument(
        "--camera-augment",
        action="store_true",
        help="robot-camera augmentation: blur, gamma, low light and noise, JPEG, far faces, "
        "a hand over the face (augment.ROBOT_CAMERA)",
    )
    p.add_argument(
        "--class-weight-power",
        type=float,
        default=TrainSettings.class_weight_power,
        help="class weights (mean count / count) ** P: 1 balanced, 0.5 square root, 0 none",
    )
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda")
    p.add_argument(
        "--teacher",
        default="",
        help="unpacked facial-emotion-recognition 0.3.4 sdist: distil its FER2013 soft "
        "labels (training.teachers)",
    )
    p.add_argument("--distill-alpha", type=float, default=TrainSettings.distill_alpha)
    p.add_argument(
        "--recalibrate-bn",
        action=argparse.BooleanOptionalAction,
        default=TrainSettings.recalibrate_bn,
        help="re-measure batchnorm statistics on un-augmented crops after training",
    )
    p.add_argument("--folds", type=int, default=5, help="CV folds on the dev portion (0: none)")
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="group-disjoint held-out fraction"
    )
    p.add_argument("--subset", type=int, default=None, help="use ~N samples (whole groups)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(
        preprocessing=args.preprocessing,
        canny=CannySettings(args.canny_blur, args.canny_low, args.canny_high),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        augment=not args.no_augment,
        augmentation=AugmentSettings(
            erase_probability=args.erase_probability,
            **(ROBOT_CAMERA if args.camera_augment else {}),
        ),
        class_weight_power=args.class_weight_power,
        device=args.device,
        teacher=args.teacher,
        distill_alpha=args.distill_alpha,
        ema_decay=args.ema_decay,
        mixup_alpha=args.mixup_alpha,
        recalibrate_bn=args.recalibrate_bn,
        seed=args.seed,
        progress=not args.quiet,
    )


def classes_from_args(args: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(c.strip() for c in args.classes.split(",")) if args.classes else None


def main(argv: list[str] | None = None) -> None:
    from fer_ros.training.pipeline import run

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument(
        "--arch",
        default="cpu",
        help=f"preset ({', '.join(PRESETS)}), JSON file or inline JSON config",
    )
    p.add_argument("--model-id", required=True)
    p.add_argument("--exports", default="onnx", help=f"comma list of {', '.join(ALL_EXPORTS)}")
    p.add_argument("--out", type=Path, default=None, help="models dir (default: package's)")
    p.add_argument(
        "--workdir", type=Path, default=Path("build/training"), help="checkpoints (not committed)"
    )
    p.add_argument("--description", default="")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="take the checkpoint and CV figures already in --workdir (same split) "
        "instead of training again, e.g. after training on a GPU machine",
    )
    p.add_argument(
        "--logit-adjust",
        default="0",
        help="tau of the post-hoc logit adjustment folded into the output bias "
        "(training.prior): 0 none, 1 the learned prior removed, or 'cv' to choose it on "
        "the out-of-fold CV logits",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    card = run(
        args.data,
        arch_from_arg(args.arch),
        settings_from_args(args),
        args.model_id,
        args.out or default_models_dir(),
        [e.strip() for e in args.exports.split(",") if e.strip()],
        folds=args.folds,
        test_fraction=args.test_fraction,
        subset=args.subset,
        workdir=args.workdir,
        description=args.description,
        classes=classes_from_args(args),
        group_regex=args.group_regex,
        extra=search_provenance(args.arch),
        reuse=args.reuse,
        logit_adjust=args.logit_adjust,
    )
    e = card.extra
    if "cross_validation" in e:
        cv = e["cross_validation"]
        print(
            f"CV accuracy {cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f} "
            f"(folds: {cv['fold_accuracy']})"
        )
    print(
        f"held-out accuracy {e['held_out']['accuracy']:.4f} "
        f"per-class recall {e['held_out']['per_class_recall']}"
    )
    for name, a in e.get("export_agreement", {}).items():
        print(f"export {name}: agreement {a['argmax_agreement']:.4f}")
    print(f"card: {(args.out or default_models_dir()) / (card.model_id + '.json')}")


if __name__ == "__main__":
    main()
