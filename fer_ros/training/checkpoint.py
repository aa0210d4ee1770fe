"""A trained model and everything needed to re-export or re-evaluate it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fer_ros.core.model_card import CannySettings
from fer_ros.training.model import ArchConfig, FerCnn


@dataclass
class Trained:
    model: FerCnn
    arch: ArchConfig
    classes: tuple[str, ...]
    preprocessing: str
    canny: CannySettings
    info: dict[str, Any] = field(default_factory=dict)  # data path, split, seed, figures


def save_checkpoint(t: Trained, path: Path) -> None:
    """Weights plus metadata; plain tensors and JSON-able values only (weights_only load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": t.model.state_dict(),
            "arch": t.arch.to_json(),
            "classes": list(t.classes),
            "preprocessing": t.preprocessing,
            "canny": vars(t.canny),
            "info": t.info,
        },
        path,
    )


def load_checkpoint(path: Path) -> Trained:
    data = torch.load(path, map_location="cpu", weights_only=True)
    arch = ArchConfig.from_json(data["arch"])
    classes = tuple(data["classes"])
    model = FerCnn(arch, len(classes))
    model.load_state_dict(data["state_dict"])
    return Trained(
        model.eval(),
        arch,
        classes,
        data["preprocessing"],
        CannySettings(**data["canny"]),
        data.get("info", {}),
    )
