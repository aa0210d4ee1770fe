"""Model cards: the one place that says what a trained model expects and contains.

A card is a JSON file in the package's ``models/`` directory. Every consumer (the
inference node, the spike encoder, training and export scripts, benchmarks) reads the
input preprocessing and class names from it instead of repeating them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_ros.core.paths import models_dir

PREPROCESSING_CHOICES = ("grayscale", "canny")


@dataclass(frozen=True)
class CannySettings:
    """Canny edge extraction as used for training (Smith et al. 2024 edge input)."""

    blur_kernel: int = 3  # Gaussian blur kernel size in pixels (odd; 0 or 1 disables)
    low_threshold: int = 50
    high_threshold: int = 150


@dataclass(frozen=True)
class ModelCard:
    """What a trained model expects as input and what it outputs."""

    model_id: str
    classes: tuple[str, ...]
    input_height: int = 48
    input_width: int = 48
    preprocessing: str = "grayscale"
    canny: CannySettings = field(default_factory=CannySettings)
    files: dict[str, str] = field(default_factory=dict)  # export name -> file in models/
    extra: dict[str, Any] = field(default_factory=dict)  # free-form figures for the card
    path: Path | None = None  # where the card was read from

    def file(self, export: str) -> Path:
        """Absolute path of one export (``onnx``, ``tflite_int8``, ``snn`` ...)."""
        if export not in self.files:
            raise KeyError(
                f"model card {self.model_id!r} lists no {export!r} export; "
                f"it has: {', '.join(sorted(self.files)) or 'none'}"
            )
        base = self.path.parent if self.path else models_dir()
        return base / self.files[export]

    def to_json(self) -> dict[str, Any]:
        data = {
            "model_id": self.model_id,
            "classes": list(self.classes),
            "input": {
                "height": self.input_height,
                "width": self.input_width,
                "preprocessing": self.preprocessing,
                "canny": vars(self.canny),
            },
            "files": dict(self.files),
        }
        data.update(self.extra)
        return data


def load_model_card(name_or_path: str | Path) -> ModelCard:
    """Read a card by file name (looked up in models/) or by path."""
    path = resolve_model_path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"model card not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"model card {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"model card {path} is not a JSON object")
    missing = [key for key in ("model_id", "classes") if key not in data]
    if missing:
        raise ValueError(f"model card {path} has no {' and no '.join(map(repr, missing))}")
    inp = data.get("input", {})
    preprocessing = inp.get("preprocessing", "grayscale")
    if preprocessing not in PREPROCESSING_CHOICES:
        raise ValueError(f"{path}: unknown preprocessing {preprocessing!r}")
    known = {"model_id", "classes", "input", "files"}
    try:
        return ModelCard(
            model_id=str(data["model_id"]),
            classes=tuple(data["classes"]),
            input_height=int(inp.get("height", 48)),
            input_width=int(inp.get("width", 48)),
            preprocessing=preprocessing,
            canny=CannySettings(**inp.get("canny", {})),
            files=dict(data.get("files", {})),
            extra={k: v for k, v in data.items() if k not in known},
            path=path,
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"model card {path} is malformed: {error}") from error


def save_model_card(card: ModelCard, path: Path) -> None:
    path.write_text(json.dumps(card.to_json(), indent=2, sort_keys=False) + "\n")


def resolve_model_path(name_or_path: str | Path) -> Path:
    """An absolute path stays; a bare or relative name is taken inside models/."""
    path = Path(name_or_path).expanduser()
    return path if path.is_absolute() else models_dir() / path
