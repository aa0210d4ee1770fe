"""FER2013 teachers for knowledge distillation, used at training time only.

``facial-emotion-recognition`` 0.3.4 (sdist, MIT) ships a 2.75 M-parameter CNN trained on
FER2013 (``NetworkV2(in_c=1, nl=32, out_f=7)`` in its ``networks.py``, weights in
``model/model.pkl``, a torch pickle). Fetch it with
``pip download --no-deps --no-binary :all: facial-emotion-recognition==0.3.4`` and unpack
it; ``--teacher DIR`` names the unpacked folder. Only ``networks.py`` is loaded (it needs
no torchvision). The pickle is loaded here, offline, never at run time, and nothing of the
teacher ships: it only gives soft labels, which the cards record.

In the wild its sadness and anger recall (41 %, 56 % on our held-out photos) is far above
what the wild set's 201 sad and 189 angry faces teach a small CNN alone (6 %, 25 %), while
its neutral recall is low (34 %): hence a mix of its soft labels with the true labels.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

TEACHER_CLASSES = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")
DESCRIPTION = (
    "facial-emotion-recognition 0.3.4 NetworkV2 (FER2013, MIT), 48x48 grey, "
    "input (x/255 - 0.5)/0.5; soft labels at training time only"
)


def load_teacher(folder: str | Path) -> torch.nn.Module:
    root = Path(folder)
    package = next(root.rglob("networks.py"), None)
    weights = next(root.rglob("model.pkl"), None)
    if package is None or weights is None:
        raise FileNotFoundError(f"no networks.py and model/model.pkl under {root}")
    spec = importlib.util.spec_from_file_location("fer2013_teacher_networks", package)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    net = module.NetworkV2(in_c=1, nl=32, out_f=7)
    state = torch.load(weights, map_location="cpu", weights_only=False)  # offline only
    net.load_state_dict(state["network"])
    return net.eval()


def teacher_probabilities(
    folder: str | Path, images: np.ndarray, classes: tuple[str, ...], temperature: float
) -> np.ndarray:
    """Softened teacher probabilities (n, len(classes)) of uint8 crops, in ``classes``'
    order; a class the teacher lacks (contempt) gets 0."""
    net = load_teacher(folder)
    x = torch.from_numpy((images.astype(np.float32) / 255.0 - 0.5) / 0.5)[:, None]
    with torch.no_grad():
        logits = torch.cat([net(x[i : i + 256]) for i in range(0, len(x), 256)])
    probs = torch.softmax(logits / temperature, 1).numpy()
    out = np.zeros((len(images), len(classes)), np.float32)
    for j, name in enumerate(TEACHER_CLASSES):
        if name in classes:
            out[:, classes.index(name)] = probs[:, j]
    return out / np.maximum(out.sum(1, keepdims=True), 1e-8)
