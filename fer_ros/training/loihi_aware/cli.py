"""``python -m fer_ros.training.loihi_aware``: train a Loihi SNN and write its model card.

Every default is :class:`~fer_ros.training.loihi_aware.train.AwareSettings`' (and
:class:`~fer_ros.training.model.ArchConfig`'s dropout), so the command line and the
library train the same recipe. ``--stage1-only`` trains stage 1 alone and saves it (for a
GPU machine); ``--stage1`` starts from such a file.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path

import torch

from fer_ros.training.loihi_aware.card import run_card, save_stage1
from fer_ros.training.loihi_aware.train import AwareSettings
from fer_ros.training.model import ArchConfig


def _parser() -> argparse.ArgumentParser:
    d = AwareSettings()
    p = argparse.ArgumentParser(
        prog="python -m fer_ros.training.loihi_aware",
        description="Loihi-aware training of a Loihi SNN with its card.",
    )
    p.add_argument("--data", required=True)
    p.add_argument(
        "--arch",
        required=True,
        help='inline JSON, e.g. {"blocks": [[16],[32],[64],[128]], "dense": [64]}',
    )
    p.add_argument("--preprocessing", choices=("grayscale", "canny"), default=d.preprocessing)
    p.add_argument("--timesteps", type=int, default=d.timesteps)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--mixup-alpha", type=float, default=d.mixup_alpha)
    p.add_argument("--dropout", type=float, default=ArchConfig().dropout)
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs)
    p.add_argument("--finetune-lr", type=float, default=d.finetune_lr)
    p.add_argument(
        "--energy-weight",
        type=float,
        default=d.finetune_energy_weight,
        help="loss per synaptic uJ above the target",
    )
    p.add_argument(
        "--energy-target",
        type=float,
        default=d.energy_target_uj,
        help="synaptic uJ per face not charged",
    )
    p.add_argument("--gain", type=float, default=d.gain)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--model-id", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workdir", type=Path, default=Path("build/training"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--description", default="")
    p.add_argument("--class-weight-power", type=float, default=d.class_weight_power)
    p.add_argument("--camera-augment", action="store_true", default=d.camera_augment)
    p.add_argument("--finetune-subset", type=int, default=d.finetune_subset)
    p.add_argument("--device", default=d.device, help="stage 1's torch device: cpu, cuda")
    p.add_argument(
        "--stage1-only",
        type=Path,
        default=None,
        help="train stage 1 on the development split, save it here and stop",
    )
    p.add_argument(
        "--stage1", default=d.stage1_checkpoint, help="a --stage1-only file instead of stage 1"
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="take the model saved in --workdir (<id>_aware.pt) instead of training; no CV",
    )
    p.add_argument(
        "--logit-adjust",
        type=float,
        default=0.0,
        help="tau of the logit adjustment folded into both read-outs (training.prior)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")
    logging.getLogger("nengo_loihi").setLevel(logging.WARNING)
    d = json.loads(a.arch)
    cfg = ArchConfig(
        blocks=tuple(tuple(b) for b in d["blocks"]),
        dense=tuple(d["dense"]),
        dropout=d.get("dropout", a.dropout),
        downsample="stride",
        batchnorm=True,
        conv_bias=False,
    )
    s = AwareSettings(
        preprocessing=a.preprocessing,
        timesteps=a.timesteps,
        epochs=a.epochs,
        lr=a.lr,
        mixup_alpha=a.mixup_alpha,
        finetune_epochs=a.finetune_epochs,
        finetune_lr=a.finetune_lr,
        finetune_energy_weight=a.energy_weight,
        energy_target_uj=a.energy_target,
        gain=a.gain,
        class_weight_power=a.class_weight_power,
        camera_augment=a.camera_augment,
        finetune_subset=a.finetune_subset,
        device=a.device,
        stage1_checkpoint=a.stage1,
        seed=a.seed,
    )
    if a.stage1_only is not None:
        save_stage1(a.data, cfg, s, a.stage1_only)
        return 0
    card = run_card(
        a.data,
        cfg,
        s,
        a.model_id,
        a.out,
        a.folds,
        workdir=a.workdir,
        description=a.description,
        reuse=a.reuse,
        logit_adjust=a.logit_adjust,
    )
    e = card.extra
    if "cross_validation" in e:
        cv, cvs = e["cross_validation"], e["snn"]["cross_validation_emulator"]
        print(
            f"CV CNN {cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f}; "
            f"SNN {cvs['accuracy_mean']:.4f} ± {cvs['accuracy_std']:.4f}"
        )
    h = e["snn"]["held_out_emulator"]
    print(
        f"held-out CNN {e['held_out']['accuracy']:.4f} SNN {h['accuracy']:.4f} agreement "
        f"{h['agreement_with_cnn']:.4f} energy {h['modelled_energy_uj_per_face']} uJ"
    )
    return 0
