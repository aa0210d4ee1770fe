"""VGG-style CNNs described by a small config, as the architecture search explores them.

A config names blocks of 3x3 convolutions; each block ends by halving the resolution,
either with 2x2 max pooling (edge devices) or by giving its last conv stride 2 (Loihi,
which has no pooling). Then dense layers and a linear read-out of the class logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn


@dataclass(frozen=True)
class ArchConfig:
    blocks: tuple[tuple[int, ...], ...] = ((16, 16), (32, 32), (64,))  # filters per conv
    dense: tuple[int, ...] = (64,)
    dropout: float = 0.3
    downsample: Literal["maxpool", "stride"] = "maxpool"
    batchnorm: bool = True  # folded into the conv weights before export
    conv_bias: bool = True  # False for Loihi: no on-chip conv biases
    head: Literal["flatten", "gap"] = "flatten"  # gap: global average pooling, few weights

    @property
    def name(self) -> str:
        """Compact name in the spirit of the paper's model names."""
        b = "-".join(".".join(str(f) for f in blk) for blk in self.blocks)
        d = ".".join(str(u) for u in self.dense) or "0"
        tag = "mp" if self.downsample == "maxpool" else "s2"
        gap = "_gap" if self.head == "gap" else ""
        return f"vgg_{b}_d{d}_{tag}{'_bn' if self.batchnorm else ''}{gap}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["blocks"] = [list(b) for b in self.blocks]
        data["dense"] = list(self.dense)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchConfig:
        data = dict(data)
        data["blocks"] = tuple(tuple(int(f) for f in b) for b in data["blocks"])
        data["dense"] = tuple(int(u) for u in data["dense"])
        return cls(**data)


# Architectures trained for the first committed models.
CPU_BASELINE = ArchConfig()
LOIHI_BASELINE = ArchConfig(
    blocks=((8,), (16,)),
    dense=(64,),
    dropout=0.2,
    downsample="stride",
    batchnorm=False,
    conv_bias=False,
)


class FerCnn(nn.Module):
    """Sequential CNN: (n, 1, H, W) in [0, 1] -> (n, classes) logits."""

    def __init__(
        self, cfg: ArchConfig, n_classes: int, input_hw: tuple[int, int] = (48, 48)
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_hw = tuple(input_hw)
        layers: list[nn.Module] = []
        channels = 1
        for block in cfg.blocks:
            for j, filters in enumerate(block):
                stride = 2 if cfg.downsample == "stride" and j == len(block) - 1 else 1
                layers.append(nn.Conv2d(channels, filters, 3, stride, 1, bias=cfg.conv_bias))
                if cfg.batchnorm:
                    layers.append(nn.BatchNorm2d(filters))
                layers.append(nn.ReLU())
                channels = filters
            if cfg.downsample == "maxpool":
                layers.append(nn.MaxPool2d(2))
        if cfg.head == "gap":
            layers.append(nn.AdaptiveAvgPool2d(1))
        with torch.no_grad():  # flattened size, whatever the input size and downsampling
            features = nn.Sequential(*layers)(torch.zeros(1, 1, *input_hw)).numel()
        layers.append(nn.Flatten())
        for units in cfg.dense:
            layers += [nn.Dropout(cfg.dropout), nn.Linear(features, units), nn.ReLU()]
            features = units
        layers += [nn.Dropout(cfg.dropout), nn.Linear(features, n_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


PRESETS = {"cpu": CPU_BASELINE, "loihi": LOIHI_BASELINE}
