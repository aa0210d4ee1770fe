"""Loihi-aware training: stage 1 the CNN, then the folded network with spikes in the loop.

1. *rate* training (:func:`train_rate`): a :class:`~fer_ros.training.model.FerCnn`
   (stride-2 downsampling, batchnorm) whose ReLUs are
   :class:`~fer_ros.training.loihi_aware.neuron.LoihiRate` (``stage1_mode="relu"``: an
   ordinary CNN, then :func:`~fer_ros.training.loihi_aware.folded.normalise`);
   batchnorm is then folded (:class:`~fer_ros.training.loihi_aware.folded.FoldedNet`);
2. *spike-in-the-loop* fine-tuning (:func:`finetune_spiking`) of the folded network with
   weights under the builder's 8-bit quantisation: the forward pass is a time-stepped
   simulation of the emulator's neuron (:mod:`.simulate`), the backward pass goes through
   each layer's rate model fed with the simulated counts (tandem learning, Wu et al. 2021).

Block shapes come from the converter's build-and-split search
(:func:`fer_ros.snn.convert.auto_block_shapes`) before stage 2, so weights quantise per
core as on the chip.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.optim.swa_utils import update_bn

from fer_ros.core.model_card import CannySettings
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.snn.convert import auto_block_shapes
from fer_ros.training import graph
from fer_ros.training.augment import ROBOT_CAMERA, AugmentSettings, augment_crops
from fer_ros.training.fit import class_weights, seed_everything
from fer_ros.training.loihi_aware.folded import (
    FoldedNet,
    block_shapes_of,
    fold_model,
    normalise,
    to_snn_params,
)
from fer_ros.training.loihi_aware.neuron import SYNOP_J, LoihiRate, loihi_cnn, set_mode
from fer_ros.training.loihi_aware.simulate import encode_rate, simulate, simulate_exact
from fer_ros.training.model import ArchConfig, FerCnn
from fer_ros.training.prior import shift_output_bias


@dataclass(frozen=True)
class AwareSettings:
    """Loihi-aware training recipe (on top of the usual CNN recipe's choices).

    These defaults are also the command line's (:mod:`.cli` reads them from here); the
    committed models' cards record their settings, docs/training.md the flags."""

    preprocessing: str = "grayscale"
    timesteps: int = 25
    epochs: int = 60  # stage 1, rate model
    smooth_epochs: float = 0.0  # fraction of stage 1 trained with the smooth rate first
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    mixup_alpha: float = 0.2
    augment: bool = True
    finetune_epochs: int = 10  # stage 2, simulated spikes in the loop
    finetune_lr: float = 1e-3
    finetune_batch: int = 32
    finetune_energy_weight: float = 0.03  # loss per uJ of synaptic energy (simulated spikes)
    energy_weight: float = 0.0  # loss per uJ of modelled synaptic energy (rate model)
    delay: float = 0.0  # steps of latency per layer in the rate model (0: none)
    energy_target_uj: float = 30.0  # the energy terms only charge synaptic uJ above this
    stage1_mode: str = "relu"  # "relu": ordinary CNN first, then normalised (see normalise)
    gain: float = 0.5  # normalise: drive (thresholds/step) at the percentile activation
    percentile: float = 99.9
    rate_epochs: int = 0  # stage 1b: rate-model (staircase) fine-tuning of the folded net
    distill: float = 0.0  # stage 2: weight of the KL to the stage-1 CNN's (ReLU) logits
    distill_temp: float = 2.0  # 0: match logits (MSE) instead of softened probabilities
    finetune_augment: bool = True
    exact: bool = True  # stage 2 simulates the emulator's integers (simulate_exact)
    class_weight_power: float = 1.0  # fit.class_weights: 1 balanced, 0.5 square root
    camera_augment: bool = False  # augment.ROBOT_CAMERA on top of the usual augmentation
    finetune_subset: int = 0  # stage 2 on this many seeded samples (0: all); CPU cost
    device: str = "cpu"  # stage 1 may train on a GPU; stage 2 and conversion run on CPU
    stage1_checkpoint: str = ""  # a saved stage-1 CNN (--stage1-only) instead of training
    seed: int = 0
    progress: bool = False


@dataclass
class AwareModel:
    cfg: ArchConfig
    settings: AwareSettings
    cnn: FerCnn  # stage-1 model (batchnorm, LoihiRate)
    net: FoldedNet  # folded, fine-tuned, quantised on-chip network
    stage1_net: FoldedNet = field(repr=False, default=None)  # type: ignore[assignment]


def _fan_outs(model_layers: list[graph.Layer]) -> list[float]:
    """Mean structural fan-out of each layer's *input* neurons into that layer."""
    fans = []
    for lay in model_layers:
        if lay.kind == "conv":
            o, _, kh, kw = lay.weights.shape
            fans.append(o * kh * kw / (lay.stride**2))
        else:
            fans.append(float(lay.weights.shape[0]))
    return fans


def _loss_fn(labels: np.ndarray, n_classes: int, smoothing: float, power: float = 1.0) -> nn.Module:
    return nn.CrossEntropyLoss(
        weight=class_weights(labels, n_classes, power), label_smoothing=smoothing
    )


def _epoch_inputs(
    images: np.ndarray, s: AwareSettings, canny: CannySettings, rng: np.random.Generator
) -> torch.Tensor:
    settings = AugmentSettings(**(ROBOT_CAMERA if s.camera_augment else {}))
    crops = augment_crops(images, rng, settings) if s.augment else images
    return torch.from_numpy(preprocess_crops(crops, s.preprocessing, canny))


def train_rate(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: ArchConfig,
    s: AwareSettings,
    canny: CannySettings,
) -> FerCnn:
    """Stage 1: the CNN with :class:`LoihiRate` activations (batchnorm still separate)."""
    seed_everything(s.seed)
    rng = np.random.default_rng(s.seed)
    first = (
        s.stage1_mode if s.stage1_mode != "rate" else ("smooth" if s.smooth_epochs > 0 else "rate")
    )
    dev = torch.device(s.device)
    model = loihi_cnn(cfg, n_classes, s.timesteps, first, s.delay).to(dev)
    loss_fn = _loss_fn(labels, n_classes, s.label_smoothing, s.class_weight_power).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    per_epoch = int(np.ceil(len(labels) / s.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, s.lr, total_steps=max(s.epochs * per_epoch, 1))
    y_all = torch.from_numpy(labels).to(dev)
    fans = None
    for epoch in range(s.epochs):
        if (
            s.stage1_mode == "rate"
            and s.smooth_epochs > 0
            and epoch == int(s.smooth_epochs * s.epochs)
        ):
            set_mode(model, "rate")
        model.train()
        x_all = _epoch_inputs(images, s, canny, rng).to(dev)
        order = torch.from_numpy(rng.permutation(len(labels))).to(dev)
        for start in range(0, len(labels), s.batch_size):
            idx = order[start : start + s.batch_size]
            if len(idx) < 2:
                continue
            x, y = x_all[idx], y_all[idx]
            opt.zero_grad()
            if s.mixup_alpha > 0:
                lam = float(rng.beta(s.mixup_alpha, s.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(len(y))).to(dev)
                out = model(lam * x + (1 - lam) * x[perm])
                loss = lam * loss_fn(out, y) + (1 - lam) * loss_fn(out, y[perm])
            else:
                out = model(x)
                loss = loss_fn(out, y)
            if s.energy_weight > 0:
                if fans is None:
                    fans = _fan_outs(graph.fold(model))
                excess = F.relu(_synaptic_uj(model, x, fans, s.timesteps) - s.energy_target_uj)
                loss = loss + s.energy_weight * excess
            loss.backward()
            opt.step()
            sched.step()
    clean = torch.from_numpy(preprocess_crops(images, s.preprocessing, canny))
    update_bn([clean[i : i + 64] for i in range(0, len(clean), 64)], model, device=dev)
    return model.cpu().eval()


def load_stage1(path: str, cfg: ArchConfig, n_classes: int, s: AwareSettings) -> FerCnn:
    """A stage-1 CNN saved by ``--stage1-only`` (e.g. trained on a GPU machine)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    model = loihi_cnn(cfg, n_classes, s.timesteps, "relu", s.delay)
    model.load_state_dict(data["state_dict"])
    return model.eval()


def _synaptic_uj(model: FerCnn, x: torch.Tensor, fans: list[float], timesteps: int) -> torch.Tensor:
    """Rate-model synaptic energy per face (uJ) of the hidden layers' spikes."""
    total = torch.zeros(())
    h = x
    j = 0
    for m in model.net:
        h = m(h)
        if isinstance(m, LoihiRate):
            j += 1
            if j < len(fans):
                total = total + h.flatten(1).sum(1).mean() * timesteps * fans[j]
    return total * SYNOP_J * 1e6


def finetune_spiking(
    net: FoldedNet,
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    s: AwareSettings,
    canny: CannySettings,
) -> FoldedNet:
    """Stage 2: simulated spikes forward, rate model backward, quantised weights; with
    ``s.distill`` the loss also pulls the SNN's read-out towards the stage-1 CNN's logits
    (knowledge distillation), so that the SNN agrees with the CNN it came from."""
    if s.finetune_epochs <= 0:
        return net
    teacher = copy.deepcopy(net) if s.distill > 0 else None
    rng = np.random.default_rng(s.seed + 1)
    loss_fn = _loss_fn(labels, n_classes, s.label_smoothing, s.class_weight_power)
    if 0 < s.finetune_subset < len(labels):
        keep = np.sort(rng.permutation(len(labels))[: s.finetune_subset])
        images, labels = images[keep], labels[keep]
    opt = torch.optim.Adam(net.parameters(), lr=s.finetune_lr)
    per_epoch = int(np.ceil(len(labels) / s.finetune_batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(s.finetune_epochs * per_epoch, 1))
    y_all = torch.from_numpy(labels)
    for _ in range(s.finetune_epochs):
        x_all = _epoch_inputs(
            images, replace(s, augment=s.augment and s.finetune_augment), canny, rng
        )
        order = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(labels), s.finetune_batch):
            idx = order[start : start + s.finetune_batch]
            x, y = x_all[idx], y_all[idx]
            sim = simulate_exact if s.exact else simulate
            counts, readout = sim(net, encode_rate(x, net.timesteps))
            opt.zero_grad()
            out, hidden = net.rate_forward(x, counts, readout, return_hidden=True)
            loss = loss_fn(out, y)
            if teacher is not None:
                with torch.no_grad():
                    target = F.softmax(
                        teacher.rate_forward(x, mode="relu") / max(s.distill_temp, 1e-6), 1
                    )
                    logits = teacher.rate_forward(x, mode="relu")
                if s.distill_temp > 0:
                    kl = F.kl_div(
                        F.log_softmax(out / s.distill_temp, 1), target, reduction="batchmean"
                    )
                    loss = (1 - s.distill) * loss + s.distill * s.distill_temp**2 * kl
                else:  # logit matching (read-out / T against the CNN's logits)
                    loss = (1 - s.distill) * loss + s.distill * F.mse_loss(out, logits)
            if s.finetune_energy_weight > 0:
                excess = F.relu(net.synaptic_uj(hidden) - s.energy_target_uj)
                loss = loss + s.finetune_energy_weight * excess
            loss.backward()
            opt.step()
            sched.step()
    return net


def finetune_rate(
    net: FoldedNet,
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    s: AwareSettings,
    canny: CannySettings,
) -> FoldedNet:
    """Stage 1b: the folded, quantised net trained with the staircase rate model."""
    if s.rate_epochs <= 0:
        return net
    rng = np.random.default_rng(s.seed + 2)
    loss_fn = _loss_fn(labels, n_classes, s.label_smoothing)
    opt = torch.optim.Adam(net.parameters(), lr=s.finetune_lr)
    y_all = torch.from_numpy(labels)
    for _ in range(s.rate_epochs):
        x_all = _epoch_inputs(images, s, canny, rng)
        order = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(labels), s.batch_size):
            idx = order[start : start + s.batch_size]
            opt.zero_grad()
            out, hidden = net.rate_forward(x_all[idx], return_hidden=True)
            loss = loss_fn(out, y_all[idx])
            if s.finetune_energy_weight > 0:
                excess = F.relu(net.synaptic_uj(hidden) - s.energy_target_uj)
                loss = loss + s.finetune_energy_weight * excess
            loss.backward()
            opt.step()
    return net


def train_loihi_aware(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: ArchConfig,
    s: AwareSettings,
    canny: CannySettings | None = None,
    calibration: np.ndarray | None = None,
) -> AwareModel:
    """Stages 1 and 2 on uint8 crops (n, 48, 48) with labels; returns the model."""
    canny = canny or CannySettings()
    cnn = (
        load_stage1(s.stage1_checkpoint, cfg, n_classes, s)
        if s.stage1_checkpoint
        else train_rate(images, labels, n_classes, cfg, s, canny)
    )
    net = fold_model(cnn, s.timesteps, s.delay)
    if calibration is None:
        calibration = preprocess_crops(images[:256], s.preprocessing, canny)
    if s.stage1_mode == "relu":
        normalise(net, calibration, s.percentile, s.gain)
    net.set_block_shapes(
        block_shapes_of(auto_block_shapes(to_snn_params(net, "probe", calibration)))
    )
    net = finetune_rate(net, images, labels, n_classes, s, canny)
    stage1 = copy.deepcopy(net)
    net = finetune_spiking(net, images, labels, n_classes, s, canny)
    return AwareModel(cfg, s, cnn, net, stage1)


def load_aware(path: str | Path, classes: tuple[str, ...]) -> tuple[AwareModel, dict[str, Any]]:
    """The model a run saved in its workdir (``<id>_aware.pt``), as trained (a logit
    adjustment folded in by that run, ``output_bias_shift``, is taken off again), and what
    that run recorded with it (split digest, CV figures)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    missing = {"test_groups_sha1", "classes", "block_shapes"} - set(data)
    if missing:
        raise ValueError(f"{path}: saved without {', '.join(sorted(missing))}; train it again")
    if tuple(data["classes"]) != tuple(classes):
        raise ValueError(f"{path}: trained on classes {data['classes']}, not {list(classes)}")
    cfg = ArchConfig.from_json(data["cfg"])
    s = AwareSettings(**data["settings"])
    cnn = loihi_cnn(cfg, len(classes), s.timesteps, "relu", s.delay)
    cnn.load_state_dict(data["cnn"])
    net = fold_model(cnn.eval(), s.timesteps, s.delay)
    net.load_state_dict(data["snn"])
    net.set_block_shapes([tuple(b) for b in data["block_shapes"]])
    shift = data.get("output_bias_shift")
    if shift is not None and len(shift):
        shift_logits(cnn, net, -np.asarray(shift, np.float32))
    return AwareModel(cfg, s, cnn, net), data


def shift_logits(cnn: FerCnn, net: FoldedNet, shift: np.ndarray) -> None:
    """Add ``shift`` to the read-out biases of both the CNN and the on-chip network (the
    folded net's read-out is in the CNN's logit units: see ``normalise``)."""
    shift_output_bias(cnn, shift)
    with torch.no_grad():
        net.biases[-1] += torch.from_numpy(np.asarray(shift, np.float32))
