"""Loihi-aware training's model card: hold-out, CV of CNN and emulated SNN, files, card.

:func:`run_card` is the Loihi-aware counterpart of :func:`fer_ros.training.pipeline.run`
(the same split, data, licence and layer descriptions, taken from there); the SNN's card
section starts as the converter's (:func:`fer_ros.snn.convert.card_section`).
:func:`cross_validate_snn` is the objective a Loihi architecture search maximises
(:func:`search_objective` adds energy and core costs).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_ros.core.cnn_spec import CnnSpec, save_cnn_spec
from fer_ros.core.model_card import CannySettings, ModelCard
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.snn.convert import card_section, file_digest
from fer_ros.snn.evaluate import evaluate
from fer_ros.snn.params import SnnParams, save_snn_params
from fer_ros.training import graph
from fer_ros.training.card import write_card
from fer_ros.training.data import FaceDataset, load_dataset
from fer_ros.training.export import agreement, onnx_runner, spec_runner
from fer_ros.training.fit import class_weights
from fer_ros.training.loihi import loihi_report
from fer_ros.training.loihi_aware.folded import block_shapes_of, to_snn_params
from fer_ros.training.loihi_aware.neuron import set_mode
from fer_ros.training.loihi_aware.simulate import emulator_predict
from fer_ros.training.loihi_aware.train import (
    AwareModel,
    AwareSettings,
    load_aware,
    shift_logits,
    train_loihi_aware,
    train_rate,
)
from fer_ros.training.metrics import held_out_figures, summary
from fer_ros.training.model import ArchConfig
from fer_ros.training.onnx_export import onnx_ops, save_onnx
from fer_ros.training.pipeline import LICENCE, dataset_names, describe_layers, split_dataset
from fer_ros.training.prior import bias_shift, trained_prior
from fer_ros.training.splits import assert_group_disjoint, group_kfold

RECIPE = (
    "loihi-aware (fer_ros.training.loihi_aware): CNN, batchnorm folded, data-based "
    "normalisation, then spikes-in-the-loop fine-tuning on the integer-exact emulator"
)
SNN_CONVERSION = (
    "loihi-aware: SNN weights fine-tuned with the emulator's own spikes in the forward "
    "pass; CNN = the stage-1 network (cnn_spec/onnx)"
)


def _evaluate_fold(
    m: AwareModel, x: np.ndarray, y: np.ndarray, params: SnnParams
) -> dict[str, Any]:
    """CNN (ReLU stage 1) and SNN (emulator) predictions on one set of crops."""
    with torch.no_grad():
        set_mode(m.cnn, "relu")
        cnn = m.cnn(torch.from_numpy(x)).argmax(1).numpy()
    emu = emulator_predict(params, x, params.timesteps)
    return {"cnn": cnn, "snn": emu.predictions, "emu": emu}


def cross_validate_snn(
    ds: Any, cfg: ArchConfig, s: AwareSettings, folds: int, canny: CannySettings | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Group k-fold CV of the CNN and of its Loihi-aware SNN run in the emulator.

    ``ds`` is a :class:`~fer_ros.training.data.FaceDataset` (the development split). Returns
    (CNN block, SNN block) in the format of :func:`fer_ros.training.fit.cross_validate`; the
    SNN block adds agreement with the CNN, modelled energy per face, emulator ms per face
    and cores. This is the objective the Loihi search should maximise.
    """
    canny = canny or CannySettings()
    x = preprocess_crops(ds.images, s.preprocessing, canny)
    acc: dict[str, list[float]] = {"cnn": [], "snn": []}
    pooled: dict[str, tuple[list, list]] = {"cnn": ([], []), "snn": ([], [])}
    agree, energy, ms, cores = [], [], [], 0
    for k, (tr, te) in enumerate(group_kfold(ds.labels, ds.groups, folds, s.seed)):
        assert_group_disjoint(ds.groups, tr, te)
        m = train_loihi_aware(
            ds.images[tr], ds.labels[tr], len(ds.classes), cfg, s, canny, x[tr][:256]
        )
        params = to_snn_params(m.net, "cv", x[tr][:256])
        cores = params.n_cores
        r = _evaluate_fold(m, x[te], ds.labels[te], params)
        for key in ("cnn", "snn"):
            acc[key].append(float(np.mean(r[key] == ds.labels[te])))
            pooled[key][0].append(ds.labels[te])
            pooled[key][1].append(r[key])
        agree.append(float(np.mean(r["cnn"] == r["snn"])))
        energy.append(r["emu"].energy_uj)
        ms.append(r["emu"].ms_per_face)
        if s.progress:
            print(f"fold {k + 1}/{folds}: CNN {acc['cnn'][-1]:.3f} SNN {acc['snn'][-1]:.3f}")

    def block(key: str) -> dict[str, Any]:
        return {
            "folds": folds,
            "fold_accuracy": [round(a, 4) for a in acc[key]],
            "accuracy_mean": round(float(np.mean(acc[key])), 4),
            "accuracy_std": round(float(np.std(acc[key])), 4),
            "pooled": summary(
                np.concatenate(pooled[key][0]), np.concatenate(pooled[key][1]), ds.classes
            ),
        }

    snn = {
        **block("snn"),
        "target": "nengo-loihi emulator",
        "agreement_with_cnn_mean": round(float(np.mean(agree)), 4),
        "modelled_energy_uj_per_face_mean": round(float(np.mean(energy)), 2),
        "emulator_ms_per_face_mean": round(float(np.mean(ms)), 2),
        "cores": cores,
    }
    return block("cnn"), snn


def search_objective(
    snn_cv: dict[str, Any],
    energy_budget_uj: float = 100.0,
    energy_cost: float = 0.5,
    core_cost: float = 0.01,
) -> float:
    """SNN CV accuracy (emulator) minus costs: ``energy_cost`` times the fraction by which
    the modelled energy per face exceeds the budget (0.5: -5 points at 10 % over), and
    ``core_cost`` per chip's worth (128) of cores."""
    e = float(snn_cv["modelled_energy_uj_per_face_mean"])
    over = max(0.0, e / energy_budget_uj - 1.0)
    return float(snn_cv["accuracy_mean"]) - energy_cost * over - core_cost * snn_cv["cores"] / 128


def run_card(
    data: str,
    cfg: ArchConfig,
    s: AwareSettings,
    model_id: str,
    out_dir: Any,
    folds: int = 5,
    test_fraction: float = 0.2,
    workdir: Any = None,
    description: str = "",
    reuse: bool = False,
    logit_adjust: float = 0.0,
) -> ModelCard:
    """Loihi-aware counterpart of :func:`fer_ros.training.pipeline.run`: group-disjoint
    hold-out, k-fold CV of CNN *and* emulated SNN, final model on all development data,
    held-out evaluation, then ``<id>_cnn.npz``, ``<id>.onnx``, ``<id>_snn.npz``, the card
    (``<id>.json``/``.md``) and the confusion PNGs in ``out_dir``. ``reuse`` takes the
    model saved in ``workdir`` instead of training (no CV); ``logit_adjust`` is the tau of
    :mod:`fer_ros.training.prior`, folded into both read-outs."""
    started = time.time()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    canny = CannySettings()
    ds = load_dataset(data)
    saved_model = Path(workdir or "build/training") / f"{model_id}_aware.pt"
    m, kept = (None, {})
    if reuse and saved_model.is_file():
        m, kept = load_aware(saved_model, ds.classes)
        cfg, s = m.cfg, m.settings  # the split and the inputs as that run made them
    dev, test, split = split_dataset(ds, test_fraction, s.seed)
    if m is not None and kept["test_groups_sha1"] != split["test_groups_sha1"]:
        raise ValueError(f"{saved_model}: trained on another split of {data}; run without --reuse")
    if s.stage1_checkpoint and m is None:
        stage1 = torch.load(s.stage1_checkpoint, map_location="cpu", weights_only=True)
        if stage1["test_groups_sha1"] != split["test_groups_sha1"]:
            raise ValueError(f"{s.stage1_checkpoint}: trained on another split of {data}")
    x_dev = preprocess_crops(dev.images, s.preprocessing, canny)
    x_test = preprocess_crops(test.images, s.preprocessing, canny)
    extra: dict[str, Any] = {"description": description} if description else {}
    cv, cv_snn = kept.get("cross_validation", {}), kept.get("cross_validation_emulator", {})
    if m is None:
        if folds >= 2:
            cv, cv_snn = cross_validate_snn(dev, cfg, replace(s, progress=True), folds, canny)
        m = train_loihi_aware(dev.images, dev.labels, len(ds.classes), cfg, s, canny, x_dev[:256])
    if cv:
        extra["cross_validation"] = cv
    shift = np.zeros(len(ds.classes), np.float32)
    if logit_adjust:
        weights = class_weights(dev.labels, len(ds.classes), s.class_weight_power).numpy()
        prior = trained_prior(dev.labels, weights)
        shift = bias_shift(prior, logit_adjust)
        shift_logits(m.cnn, m.net, shift)
        extra["logit_adjustment"] = {
            "method": "logit adjustment, -tau * log(prior) folded into the CNN's and the "
            "SNN's read-out biases (Menon et al. 2021)",
            "tau": logit_adjust,
            "chosen": "given (--logit-adjust)",
            "prior": dict(zip(ds.classes, np.round(prior, 5).tolist(), strict=True)),
            "bias_shift": dict(zip(ds.classes, np.round(shift, 4).tolist(), strict=True)),
        }
    layers = graph.fold(m.cnn.eval())
    files = {
        "cnn_spec": f"{model_id}_cnn.npz",
        "onnx": f"{model_id}.onnx",
        "snn": f"{model_id}_snn.npz",
    }
    spec = graph.to_cnn_spec(layers, (1, *ds.images.shape[1:]))
    ref, export_agreement = _cnn_exports(m, spec, layers, out_dir, files, x_test, test.labels)
    params = to_snn_params(
        m.net,
        model_id,
        x_dev[:256],
        extra={"cnn_spec_sha1": file_digest(out_dir / files["cnn_spec"])},
    )
    save_snn_params(params, out_dir / files["snn"])
    png = f"{model_id}_confusion.png"
    held = held_out_figures(
        test.labels, ref.argmax(1), ds.classes, test.domains, out_dir / png, f"{model_id} CNN"
    )
    ev = evaluate(params, spec, x_test, test.labels, params.timesteps)
    emu = emulator_predict(params, x_test, params.timesteps)
    snn_png = f"{model_id}_snn_confusion.png"
    held_snn = held_out_figures(
        test.labels,
        emu.predictions,
        ds.classes,
        test.domains,
        out_dir / snn_png,
        f"{model_id} SNN (emulator)",
    )
    extra.update(
        {
            "architecture": {
                "name": cfg.name,
                "config": cfg.to_json(),
                "layers": describe_layers(layers),
                "parameters": graph.count_params(layers),
                "macs": graph.count_macs(layers),
                "neurons_per_layer": graph.neurons_per_layer(layers),
            },
            "data": _data_section(data, ds, split),
            "held_out": held,
            "confusion_png": png,
            "export_notes": {
                "cnn_spec": {
                    "layout": "PyTorch (out, in, kh, kw); dense input flattened C,H,W",
                    "biases": "batchnorm folded: conv biases are neuron bias currents on Loihi",
                },
                "onnx": {
                    "layout": "NCHW float32, dynamic batch",
                    "opset": 13,
                    "ops": onnx_ops(out_dir / files["onnx"]),
                },
            },
            "export_agreement": export_agreement,
            "training": {
                "recipe": RECIPE,
                **asdict_settings(s),
                "wall_time_s": round(time.time() - started, 1),
            },
            "licence": LICENCE,
            "loihi": _loihi_section(cfg, layers, params),
            "snn": {
                **card_section(params, files["snn"], s.percentile),
                "conversion": SNN_CONVERSION,
                "cross_validation_emulator": cv_snn,
                "held_out_emulator": {
                    "target": "nengo-loihi emulator",
                    **ev.as_dict(),
                    "per_class_recall": held_snn["per_class_recall"],
                    "balanced_accuracy": held_snn["balanced_accuracy"],
                    **({"by_dataset": held_snn["by_dataset"]} if "by_dataset" in held_snn else {}),
                    "confusion_png": snn_png,
                },
            },
        }
    )
    card = ModelCard(
        model_id=model_id,
        classes=ds.classes,
        input_height=ds.images.shape[1],
        input_width=ds.images.shape[2],
        preprocessing=s.preprocessing,
        canny=canny,
        files=files,
        extra=extra,
    )
    write_card(card, out_dir)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "cnn": m.cnn.state_dict(),
                "snn": m.net.state_dict(),
                "cfg": cfg.to_json(),
                "settings": asdict_settings(s),
                "output_bias_shift": shift.tolist(),
                "test_groups_sha1": split["test_groups_sha1"],
                "classes": list(ds.classes),
                "block_shapes": [list(b) for b in block_shapes_of(params)],
                "cross_validation": cv,
                "cross_validation_emulator": cv_snn,
            },
            Path(workdir) / f"{model_id}_aware.pt",
        )
    return card


def _cnn_exports(
    m: AwareModel,
    spec: CnnSpec,
    layers: list[graph.Layer],
    out_dir: Path,
    files: dict[str, str],
    x_test: np.ndarray,
    labels: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Write the stage-1 CNN as ``cnn_spec`` and ``onnx``; its (ReLU) held-out logits and
    each export's agreement with them."""
    save_cnn_spec(spec, str(out_dir / files["cnn_spec"]))
    save_onnx(layers, tuple(spec.input_shape), out_dir / files["onnx"])
    with torch.no_grad():
        set_mode(m.cnn, "relu")
        ref = m.cnn(torch.from_numpy(x_test)).numpy()
    return ref, {
        "cnn_spec": {
            "runtime": "numpy/torch reference",
            **agreement(spec_runner(out_dir / files["cnn_spec"]), x_test, ref, labels),
        },
        "onnx": {
            "runtime": "onnxruntime",
            **agreement(onnx_runner(out_dir / files["onnx"]), x_test, ref, labels),
        },
    }


def _data_section(data: str, ds: FaceDataset, split: dict[str, Any]) -> dict[str, Any]:
    counts = np.bincount(ds.labels, minlength=len(ds.classes)).tolist()
    return {
        "dataset": dataset_names(data),
        "samples": len(ds),
        "groups": int(np.unique(ds.groups).size),
        "class_counts": dict(zip(ds.classes, counts, strict=True)),
        "subset": None,
        "split": split,
    }


def _loihi_section(cfg: ArchConfig, layers: list[graph.Layer], params: SnnParams) -> dict:
    """:func:`~fer_ros.training.loihi.loihi_report` of the folded layers, with the cores
    the converted network really uses."""
    report = loihi_report(cfg, layers)
    # batchnorm folds into conv weights and per-channel biases, which the builder applies as
    # neuron bias currents (every compartment has one): not connection biases
    report["violations"] = [
        v for v in report["violations"] if "batchnorm" not in v and "biases" not in v
    ]
    report["fits_one_chip"] = not report["violations"]
    report["biases"] = (
        "batchnorm folded into conv weights and a per-channel neuron bias current "
        "(no connection biases); output bias applied at the read-out"
    )
    report["cores_total_built"] = params.n_cores
    report["cores_per_layer_built"] = [lay.n_blocks for lay in params.layers]
    return report


def save_stage1(data: str, cfg: ArchConfig, s: AwareSettings, path: Any) -> None:
    """Stage 1 alone on the development split of ``data``, saved for ``--stage1``."""
    dev, _, split = split_dataset(load_dataset(data), 0.2, s.seed)
    cnn = train_rate(dev.images, dev.labels, len(dev.classes), cfg, s, CannySettings())
    torch.save(
        {
            "state_dict": cnn.state_dict(),
            "classes": list(dev.classes),
            "test_groups_sha1": split["test_groups_sha1"],
        },
        path,
    )


def asdict_settings(s: AwareSettings) -> dict[str, Any]:
    return {k: v for k, v in asdict(s).items() if k != "progress"}
