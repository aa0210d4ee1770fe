"""Hold out test groups, cross-validate, train the final model, export it, write its card."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.training import graph
from fer_ros.training.card import update_card, write_card
from fer_ros.training.checkpoint import Trained, load_checkpoint, save_checkpoint
from fer_ros.training.data import FaceDataset, load_dataset
from fer_ros.training.export import export_all
from fer_ros.training.fit import (
    TrainSettings,
    cv_figures,
    out_of_fold,
    predict_logits,
    prepare,
    train_model,
)
from fer_ros.training.loihi import loihi_report
from fer_ros.training.metrics import held_out_figures
from fer_ros.training.model import ArchConfig
from fer_ros.training.prior import (
    adjust_logits,
    load_out_of_fold,
    parse_tau,
    save_out_of_fold,
    shift_output_bias,
)
from fer_ros.training.splits import (
    assert_group_disjoint,
    groups_digest,
    holdout_split,
)

LICENCE = (
    "Weights trained on CK+ and/or in-the-wild photos collected in muxspace/facial_expressions "
    "(research use only; the photos' copyright stays with their owners). The images are not "
    "redistributed here; use the model for research only."
)
CALIBRATION_SAMPLES = 200


def dataset_names(data: str | Path) -> str:
    """The data files' names (not their machine paths), comma-separated as given."""
    return ",".join(Path(p.strip()).name for p in str(data).split(","))


def group_subset(ds: FaceDataset, n: int | None, seed: int) -> FaceDataset:
    """About ``n`` samples made of whole groups (seeded), for quick runs; None keeps all."""
    if not n or n >= len(ds):
        return ds
    order = np.random.default_rng(seed).permutation(np.unique(ds.groups))
    keep: list[int] = []
    for g in order:
        keep.extend(np.flatnonzero(ds.groups == g))
        if len(keep) >= n:
            break
    return ds.subset(np.sort(np.asarray(keep)))


def split_dataset(
    ds: FaceDataset, test_fraction: float, seed: int
) -> tuple[FaceDataset, FaceDataset, dict[str, Any]]:
    """(development set, held-out test set, split description for the card)."""
    tr, te = holdout_split(ds, test_fraction, seed)
    assert_group_disjoint(ds.groups, tr, te)
    info = {
        "method": "StratifiedGroupKFold fold 0 as test"
        if ds.usage is None
        else "FER2013 Usage == PrivateTest as test",
        "seed": seed,
        "test_fraction": test_fraction,
        "n_dev": len(tr),
        "n_test": len(te),
        "groups_dev": int(np.unique(ds.groups[tr]).size),
        "groups_test": int(np.unique(ds.groups[te]).size),
        "test_groups_sha1": groups_digest(ds.groups[te]),
    }
    return ds.subset(tr), ds.subset(te), info


def describe_layers(layers: list[graph.Layer]) -> str:
    parts = []
    for lay in layers:
        if lay.kind == "conv":
            o, i, kh, kw = lay.weights.shape
            bias = "" if lay.bias is not None else " nobias"
            parts.append(f"conv{kh}x{kw}/{lay.stride} {i}->{o}{bias}")
        elif lay.kind == "maxpool":
            parts.append("maxpool2")
        elif lay.kind == "gap":
            parts.append("global-avg-pool")
        else:
            parts.append(f"dense {lay.weights.shape[1]}->{lay.weights.shape[0]}")
    return " | ".join(parts)


def architecture_figures(t: Trained) -> dict[str, Any]:
    layers = graph.fold(t.model)
    return {
        "name": t.arch.name,
        "config": t.arch.to_json(),
        "layers": describe_layers(layers),
        "parameters": graph.count_params(layers),
        "macs": graph.count_macs(layers),
        "neurons_per_layer": graph.neurons_per_layer(layers),
    }


def run(
    data: str | Path,
    cfg: ArchConfig,
    s: TrainSettings,
    model_id: str,
    out_dir: Path,
    exports: list[str],
    folds: int = 5,
    test_fraction: float = 0.2,
    subset: int | None = None,
    workdir: Path = Path("build/training"),
    description: str = "",
    classes: tuple[str, ...] | None = None,
    group_regex: str | None = None,
    extra: dict[str, Any] | None = None,
    reuse: bool = False,
    logit_adjust: str = "0",
) -> ModelCard:
    """The whole training run for one model; returns the written card.

    The checkpoint and the CV figures are kept in ``workdir``; with ``reuse`` a run with
    the same data, split and model id takes them from there instead of training again
    (training can run on a GPU machine and exports and the card here). ``logit_adjust``
    is a tau for :mod:`.prior`, or ``cv`` to choose it on the out-of-fold logits."""
    started = time.time()
    tau = parse_tau(logit_adjust)
    out_dir = out_dir.resolve()
    full = load_dataset(data, classes, group_regex)
    ds = group_subset(full, subset, s.seed)
    dev, test, split = split_dataset(ds, test_fraction, s.seed)
    card_extra: dict[str, Any] = {"description": description} if description else {}
    checkpoint = workdir / f"{model_id}.pt"
    cv_file = workdir / f"{model_id}_cv.json"
    oof_file = workdir / f"{model_id}_cv_logits.npz"
    oof = None
    if reuse and cv_file.is_file() and (tau != "cv" or oof_file.is_file()):
        card_extra["cross_validation"] = json.loads(cv_file.read_text())
        oof = load_out_of_fold(oof_file, split, dev) if oof_file.is_file() else None
    elif folds >= 2:
        oof = out_of_fold(dev, cfg, s, folds)
        card_extra["cross_validation"] = cv_figures(dev, *oof)
        cv_file.parent.mkdir(parents=True, exist_ok=True)
        cv_file.write_text(json.dumps(card_extra["cross_validation"]))
        save_out_of_fold(oof_file, oof, split, dev)
    if reuse and checkpoint.is_file():
        model = _reused_model(checkpoint, split, ds.classes)
    else:
        model = train_model(dev, cfg, s, desc="final")
    shift = None
    if tau != 0:
        shift, card_extra["logit_adjustment"] = adjust_logits(model, dev, s, tau, oof)
        if oof is not None:
            card_extra["cross_validation"]["adjusted"] = cv_figures(dev, oof[0] + shift, oof[1])
    test_x = prepare(test, s)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = f"{model_id}_confusion.png"
    predicted = predict_logits(model, test_x).argmax(1)
    held = held_out_figures(
        test.labels, predicted, ds.classes, test.domains, out_dir / png, model_id
    )
    data_info = {
        "dataset": dataset_names(data),
        "samples": len(ds),
        "groups": int(np.unique(ds.groups).size),
        "class_counts": dict(
            zip(
                ds.classes, np.bincount(ds.labels, minlength=len(ds.classes)).tolist(), strict=False
            )
        ),
        "subset": subset,
        "split": split,
    }
    t = Trained(
        model,
        cfg,
        ds.classes,
        s.preprocessing,
        s.canny,
        info={
            "data": str(data),
            "subset": subset,
            "seed": s.seed,
            "test_fraction": test_fraction,
            "classes": list(ds.classes),
            "group_regex": group_regex,
            "card_dir": str(out_dir.resolve()),
            "model_id": model_id,
            "test_groups_sha1": split["test_groups_sha1"],
            # the deployed weights include it; --reuse takes it off again
            "output_bias_shift": [] if shift is None else shift.tolist(),
        },
    )
    save_checkpoint(t, checkpoint)
    files, notes, agree = export_all(
        t, exports, out_dir, model_id, _calibration(dev, s), test_x, test.labels
    )
    arch = architecture_figures(t)
    card_extra.update(
        {
            "architecture": arch,
            "data": data_info,
            "held_out": held,
            "confusion_png": png,
            "export_notes": notes,
            "export_agreement": agree,
            "training": {
                **{k: v for k, v in asdict(s).items() if k not in ("canny", "progress")},
                "wall_time_s": round(time.time() - started, 1),
                "checkpoint": f"{workdir}/{model_id}.pt (not committed)",
            },
            "licence": LICENCE,
        }
    )
    if cfg.downsample == "stride":
        card_extra["loihi"] = loihi_report(cfg, graph.fold(model))
    card_extra.update(extra or {})
    card = ModelCard(
        model_id=model_id,
        classes=ds.classes,
        input_height=ds.images.shape[1],
        input_width=ds.images.shape[2],
        preprocessing=s.preprocessing,
        canny=s.canny,
        files=files,
        extra=card_extra,
    )
    _warn_stale(out_dir / f"{model_id}.json", files)
    write_card(card, out_dir)
    return card


def _reused_model(checkpoint: Path, split: dict[str, Any], classes: tuple[str, ...]) -> Any:
    """A saved model, only if it was trained on the development part of this very split."""
    t = load_checkpoint(checkpoint)
    held = t.info.get("test_groups_sha1")
    if held != split["test_groups_sha1"] or tuple(t.classes) != tuple(classes):
        raise ValueError(
            f"{checkpoint}: trained on another split or class list (held-out groups {held}, "
            f"this split's {split['test_groups_sha1']}); remove it or run without --reuse"
        )
    if t.info.get("output_bias_shift"):  # back to the weights as trained
        shift_output_bias(t.model, -np.asarray(t.info["output_bias_shift"], np.float32))
    return t.model


def _warn_stale(card_path: Path, files: dict[str, str]) -> None:
    """Exports made by other tools from the old weights (e.g. ``snn``) are now stale."""
    if not card_path.is_file():
        return
    stale = sorted(set(load_model_card(card_path).files) - set(files))
    if stale:
        print(
            f"warning: {card_path.name} was rewritten; exports {', '.join(stale)} were made "
            "from the previous weights and are no longer listed: regenerate them",
            file=sys.stderr,
        )


def _calibration(dev: FaceDataset, s: TrainSettings) -> np.ndarray:
    """Preprocessed training crops for int8 calibration (never test data)."""
    idx = np.random.default_rng(s.seed).permutation(len(dev))[:CALIBRATION_SAMPLES]
    return prepare(dev.subset(np.sort(idx)), s)


def reexport(
    checkpoint: Path, exports: list[str], out_dir: Path | None, data: Path | None
) -> ModelCard:
    """Re-run exports of a saved checkpoint and merge them into its card."""
    t = load_checkpoint(checkpoint)
    info = t.info
    out_dir = (out_dir or Path(info["card_dir"])).resolve()  # card lookups need absolute
    s = TrainSettings(preprocessing=t.preprocessing, canny=t.canny, seed=int(info["seed"]))
    full = load_dataset(data or info["data"], tuple(info["classes"]), info.get("group_regex"))
    ds = group_subset(full, info.get("subset"), s.seed)
    dev, test, _ = split_dataset(ds, float(info["test_fraction"]), s.seed)
    model_id = info["model_id"]
    files, notes, agree = export_all(
        t, exports, out_dir, model_id, _calibration(dev, s), prepare(test, s), test.labels
    )
    for name, a in agree.items():
        print(
            f"export {name}: {files[name]} agreement {a['argmax_agreement']:.4f} "
            f"accuracy {a.get('accuracy', float('nan')):.4f}"
        )
    card_path = out_dir / f"{model_id}.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"exports written, but no card to update at {card_path}")
    old = load_model_card(card_path).extra
    return update_card(
        card_path,
        files,
        {
            "export_notes": {**old.get("export_notes", {}), **notes},
            "export_agreement": {**old.get("export_agreement", {}), **agree},
        },
    )
