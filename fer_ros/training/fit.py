"""Training loop and cross-validation of one architecture."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from tqdm import tqdm

from fer_ros.core.model_card import CannySettings
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.training.augment import AugmentSettings, augment_crops
from fer_ros.training.data import FaceDataset
from fer_ros.training.metrics import summary_by_domain
from fer_ros.training.model import ArchConfig, FerCnn
from fer_ros.training.splits import assert_group_disjoint, group_kfold, strata


@dataclass(frozen=True)
class TrainSettings:
    preprocessing: str = "grayscale"
    canny: CannySettings = field(default_factory=CannySettings)
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-2  # one-cycle peak; 1e-2 beat 3e-3 and 1e-3 in 3-fold CV on CK+
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    augment: bool = True
    augmentation: AugmentSettings = field(default_factory=AugmentSettings)
    class_weighted: bool = True  # CK+ is unbalanced (45 contempt vs 199 surprise)
    # Weight of class c is (mean count / count_c) ** power: 1 balances the classes fully,
    # 0.5 (square root) leans towards them without drowning happy and neutral, which
    # make up 90 % of the in-the-wild faces, in the 7 contempt faces' weight.
    class_weight_power: float = 1.0
    device: str = "cpu"  # torch device for training ("cuda" where there is one)
    teacher: str = ""  # folder of a FER2013 teacher (training.teachers): distillation
    distill_alpha: float = 0.3  # weight of the teacher's soft labels in the loss
    distill_temperature: float = 2.0
    ema_decay: float = 0.0  # > 0: return an exponential moving average of the weights
    ema_start: float = 0.5  # fraction of the epochs after which the average starts
    recalibrate_bn: bool = False  # batchnorm statistics re-measured on un-augmented inputs
    mixup_alpha: float = 0.0  # > 0: mixup of batch pairs, Beta(alpha, alpha) weights
    seed: int = 0
    progress: bool = True


def seed_everything(seed: int) -> None:
    """Same seed, same model: Python, numpy and torch generators all seeded."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def prepare(ds: FaceDataset, s: TrainSettings) -> np.ndarray:
    """The network input for a dataset, via the runtime's own preprocessing."""
    return preprocess_crops(ds.images, s.preprocessing, s.canny)


def train_model(ds: FaceDataset, cfg: ArchConfig, s: TrainSettings, desc: str = "train") -> FerCnn:
    """Train a fresh :class:`FerCnn` on all of ``ds``; returns it in eval mode."""
    seed_everything(s.seed)
    rng = np.random.default_rng(s.seed)
    dev = torch.device(s.device)
    model = FerCnn(cfg, len(ds.classes), ds.images.shape[1:]).to(dev)
    weights = (
        class_weights(ds.labels, len(ds.classes), s.class_weight_power).to(dev)
        if s.class_weighted
        else None
    )
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=s.label_smoothing)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    steps = s.epochs * int(np.ceil(len(ds) / s.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=max(steps, 1))
    clean = None if s.augment else torch.from_numpy(prepare(ds, s))
    labels = torch.from_numpy(ds.labels).to(dev)
    soft = None
    if s.teacher:
        from fer_ros.training.teachers import teacher_probabilities

        soft = torch.from_numpy(
            teacher_probabilities(s.teacher, ds.images, ds.classes, s.distill_temperature)
        ).to(dev)
    ema = None
    bar = tqdm(range(s.epochs), desc=desc, disable=not s.progress, leave=False)
    for epoch in bar:
        model.train()
        if s.ema_decay > 0 and ema is None and epoch >= s.ema_start * s.epochs:
            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(s.ema_decay))
        if s.augment:
            x_all = torch.from_numpy(
                preprocess_crops(
                    augment_crops(ds.images, rng, s.augmentation), s.preprocessing, s.canny
                )
            ).to(dev)
        else:
            x_all = clean.to(dev)
        order = torch.from_numpy(rng.permutation(len(ds))).to(dev)
        total = 0.0
        for start in range(0, len(ds), s.batch_size):
            idx = order[start : start + s.batch_size]
            if len(idx) < 2 and start:  # batchnorm cannot train on one sample
                continue
            opt.zero_grad()
            if soft is None:
                loss = _batch_loss(model, loss_fn, x_all[idx], labels[idx], s.mixup_alpha, rng)
            else:
                loss = _distill_loss(model, loss_fn, x_all[idx], labels[idx], soft[idx], s)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total += loss.item() * len(idx)
        bar.set_postfix(loss=f"{total / len(ds):.3f}")
    final = model if ema is None else ema.module
    if ema is not None or s.recalibrate_bn:
        # Statistics of the final weights (averaging the raw ones' would not match them)
        # on the kind of input inference sees: un-augmented crops.
        x = clean if clean is not None else torch.from_numpy(prepare(ds, s))
        batches = [x[i : i + s.batch_size] for i in range(0, len(ds), s.batch_size)]
        update_bn(batches, final, device=dev)
    return final.cpu().eval()


def class_weights(labels: np.ndarray, n_classes: int, power: float = 1.0) -> torch.Tensor:
    """Loss weights (mean count / count) ** power; 0 for a class with no sample."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1) / n_classes) ** power, 0.0)
    return torch.tensor(w, dtype=torch.float32)


def _batch_loss(
    model: nn.Module,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Cross-entropy, on a mixup of the batch with a permutation of itself if ``alpha``."""
    if alpha <= 0:
        return loss_fn(model(x), y)
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(y))).to(y.device)
    out = model(lam * x + (1 - lam) * x[perm])
    return lam * loss_fn(out, y) + (1 - lam) * loss_fn(out, y[perm])


def _distill_loss(
    model: nn.Module,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    soft: torch.Tensor,
    s: TrainSettings,
) -> torch.Tensor:
    """(1 - a) x the usual loss + a x T^2 x KL(teacher || student), both softened by T
    (Hinton et al. 2015)."""
    out = model(x)
    t = s.distill_temperature
    kl = nn.functional.kl_div(nn.functional.log_softmax(out / t, 1), soft, reduction="batchmean")
    return (1 - s.distill_alpha) * loss_fn(out, y) + s.distill_alpha * t * t * kl


def predict_logits(model: nn.Module, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits of float32 NCHW inputs, in eval mode, without gradients."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[start : start + batch]).to(dev)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def out_of_fold(
    ds: FaceDataset, cfg: ArchConfig, s: TrainSettings, folds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group-aware stratified k-fold CV: every sample's logits from the model trained
    without its group, and its fold number (both in ``ds`` order)."""
    logits = np.zeros((len(ds), len(ds.classes)), np.float32)
    fold_of = np.full(len(ds), -1, np.int64)
    for k, (tr, te) in enumerate(group_kfold(strata(ds), ds.groups, folds, s.seed)):
        assert_group_disjoint(ds.groups, tr, te)
        model = train_model(ds.subset(tr), cfg, s, desc=f"fold {k + 1}/{folds}")
        logits[te] = predict_logits(model, prepare(ds.subset(te), s))
        fold_of[te] = k
    return logits, fold_of


def cv_figures(ds: FaceDataset, logits: np.ndarray, fold_of: np.ndarray) -> dict[str, object]:
    """Per-fold and mean ± std accuracy and pooled per-class recall of out-of-fold logits."""
    pred = logits.argmax(1)
    folds = int(fold_of.max()) + 1
    fold_acc = [float(np.mean(pred[fold_of == k] == ds.labels[fold_of == k])) for k in range(folds)]
    return {
        "folds": folds,
        "fold_accuracy": [round(a, 4) for a in fold_acc],
        "accuracy_mean": round(float(np.mean(fold_acc)), 4),
        "accuracy_std": round(float(np.std(fold_acc)), 4),
        "pooled": summary_by_domain(ds.labels, pred, ds.classes, ds.domains),
    }


def cross_validate(
    ds: FaceDataset, cfg: ArchConfig, s: TrainSettings, folds: int
) -> dict[str, object]:
    """Group-aware stratified k-fold CV: per-fold and mean ± std accuracy, pooled recall."""
    return cv_figures(ds, *out_of_fold(ds, cfg, s, folds))
