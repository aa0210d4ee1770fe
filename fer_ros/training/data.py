"""Face-expression datasets in three on-disk formats, loaded into one in-memory form.

Formats: the CK+ ``.npz`` (images, labels, classes, groups), the in-the-wild photo
``.npz`` (JPEG bytes, cropped as the live graph crops: :mod:`.wild`), the FER2013 CSV
(emotion, pixels, Usage) and a class-per-folder image tree. Classes are matched by name
(with common aliases), so a model trained on one dataset keeps the project's class order.
Several files given as ``a.npz,b.npz`` are joined: groups are kept apart and every sample
remembers its data set (``domains``), so accuracy is reported for each set apart.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# The project's class order (CK+ order), used when the caller asks for no other.
# CK+ has no neutral; the in-the-wild set adds it as the eighth class.
DEFAULT_CLASSES = (
    "happy",
    "contempt",
    "fear",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "neutral",
)

# FER2013 encodes emotions as integers in this order (Goodfellow et al. 2013).
FER2013_CLASSES = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")

_ALIASES = {
    "angry": "anger",
    "sad": "sadness",
    "surprised": "surprise",
    "happiness": "happy",
    "disgusted": "disgust",
    "fearful": "fear",
    "contemptuous": "contempt",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}


@dataclass(frozen=True)
class FaceDataset:
    """Grayscale face crops with labels and sequence groups.

    Frames that share a ``groups`` id (one CK+ sequence, one subject ...) must stay on
    the same side of any split. ``usage`` holds a predefined partition where the format
    has one (FER2013 ``Usage``), else is ``None``.
    """

    images: np.ndarray  # uint8 (n, H, W)
    labels: np.ndarray  # int64 (n,), index into classes
    classes: tuple[str, ...]
    groups: np.ndarray  # int64 (n,)
    usage: np.ndarray | None = None  # str (n,)
    source: str = ""
    domains: np.ndarray | None = None  # str (n,): the data set of each sample

    @property
    def domain_names(self) -> tuple[str, ...]:
        """The data sets present, in order of first appearance."""
        if self.domains is None:
            return (Path(self.source).stem or "data",)
        _, first = np.unique(self.domains, return_index=True)
        return tuple(str(self.domains[i]) for i in sorted(first))

    def domain_mask(self, name: str) -> np.ndarray:
        if self.domains is None:
            return np.ones(len(self), bool)
        return self.domains == name

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> FaceDataset:
        return FaceDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            classes=self.classes,
            groups=self.groups[idx],
            usage=None if self.usage is None else self.usage[idx],
            source=self.source,
            domains=None if self.domains is None else self.domains[idx],
        )


def canonical_class(name: str) -> str:
    """Lower-case class name with aliases (``angry`` -> ``anger``) resolved."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def _remap(
    names: list[str], labels: np.ndarray, classes: tuple[str, ...] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Relabel to ``classes`` by name; returns (keep mask, new labels, classes).

    Samples whose class is not wanted (FER2013 ``neutral`` by default) are dropped.
    """
    names = [canonical_class(n) for n in names]
    if classes is None:
        present = {names[i] for i in np.unique(labels)}
        classes = tuple(c for c in DEFAULT_CLASSES if c in present) + tuple(
            sorted(present - set(DEFAULT_CLASSES))
        )
    classes = tuple(canonical_class(c) for c in classes)
    lut = np.array([classes.index(n) if n in classes else -1 for n in names], np.int64)
    new = lut[labels]
    return new >= 0, new, classes


def load_npz(path: Path, classes: tuple[str, ...] | None = None) -> FaceDataset:
    """CK+-style npz: ``images`` (n,H,W) uint8, ``labels``, ``classes``, ``groups``
    (optional ``domain``: the data set's name); or a wild photo npz (:mod:`.wild`)."""
    from fer_ros.training.wild import is_wild_npz, wild_crops

    if is_wild_npz(path):
        d = wild_crops(path)
        domain = path.stem
    else:
        with np.load(path, allow_pickle=False) as f:
            d = {k: f[k] for k in f.files}
        domain = str(d["domain"]) if "domain" in d else path.stem
    images = d["images"].astype(np.uint8)
    labels = d["labels"].astype(np.int64)
    names = [str(c) for c in d["classes"]]
    groups = d["groups"].astype(np.int64) if "groups" in d else np.arange(len(labels))
    keep, labels, classes = _remap(names, labels, classes)
    n = int(keep.sum())
    return FaceDataset(
        images[keep],
        labels[keep],
        classes,
        groups[keep],
        source=str(path),
        domains=np.full(n, domain),
    )


def join_datasets(parts: list[FaceDataset]) -> FaceDataset:
    """One dataset of several: classes in the project's order, group ids kept apart."""
    present = {c for p in parts for c in p.classes}
    classes = tuple(c for c in DEFAULT_CLASSES if c in present) + tuple(
        sorted(present - set(DEFAULT_CLASSES))
    )
    images, labels, groups, domains = [], [], [], []
    offset = 0
    for p in parts:
        lut = np.array([classes.index(c) for c in p.classes], np.int64)
        images.append(p.images)
        labels.append(lut[p.labels])
        _, g = np.unique(p.groups, return_inverse=True)
        groups.append(g.astype(np.int64) + offset)
        offset += int(g.max()) + 1 if len(g) else 0
        domains.append(p.domains if p.domains is not None else np.full(len(p), p.domain_names[0]))
    return FaceDataset(
        np.concatenate(images),
        np.concatenate(labels),
        classes,
        np.concatenate(groups),
        source=",".join(p.source for p in parts),
        domains=np.concatenate(domains),
    )


def load_fer2013_csv(
    path: Path, classes: tuple[str, ...] | None = None, size: int = 48
) -> FaceDataset:
    """FER2013 CSV (``emotion``, ``pixels`` as space-separated 48x48, ``Usage``).

    FER2013 has no sequences, so every image is its own group.
    """
    images, labels, usage = [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            px = np.array(row["pixels"].split(), np.uint8)
            side = round(float(np.sqrt(px.size)))
            img = px.reshape(side, side)
            if side != size:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(int(row["emotion"]))
            usage.append(row.get("Usage", ""))
    keep, lab, classes = _remap(list(FER2013_CLASSES), np.asarray(labels, np.int64), classes)
    n = int(keep.sum())
    return FaceDataset(
        np.stack(images)[keep],
        lab[keep],
        classes,
        np.arange(n, dtype=np.int64),
        usage=np.asarray(usage)[keep],
        source=str(path),
    )


def load_folder(
    root: Path,
    classes: tuple[str, ...] | None = None,
    size: int = 48,
    group_regex: str | None = None,
) -> FaceDataset:
    """Class-per-folder tree ``root/<class>/<image>``, images made grey and ``size``².

    ``group_regex`` is searched in each file stem; its first capture group (or the whole
    match) is the group id, e.g. ``^(S\\d+_\\d+)`` for CK+ subject_sequence names.
    Without it every file is its own group.
    """
    pattern = re.compile(group_regex) if group_regex else None
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    names = [p.name for p in folders]
    images, labels, group_keys = [], [], []
    for label, folder in enumerate(folders):
        for file in sorted(folder.rglob("*")):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise ValueError(f"cannot read image {file}")
            images.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
            labels.append(label)
            m = pattern.search(file.stem) if pattern else None
            key = (m.group(1) if m.groups() else m.group(0)) if m else str(file)
            group_keys.append(key)
    if not images:
        raise ValueError(f"no images found under {root}")
    _, groups = np.unique(np.asarray(group_keys), return_inverse=True)
    keep, lab, classes = _remap(names, np.asarray(labels, np.int64), classes)
    return FaceDataset(
        np.stack(images)[keep],
        lab[keep],
        classes,
        groups.astype(np.int64)[keep],
        source=str(root),
    )


def load_dataset(
    path: str | Path,
    classes: tuple[str, ...] | None = None,
    group_regex: str | None = None,
) -> FaceDataset:
    """Load by format: ``.npz``, ``.csv`` (FER2013) or a directory tree; several paths
    separated by commas are joined (:func:`join_datasets`)."""
    if isinstance(path, str) and "," in path:
        parts = [load_dataset(p.strip(), None, group_regex) for p in path.split(",") if p.strip()]
        joined = join_datasets(parts)
        if classes is None:
            return joined
        keep, labels, classes = _remap(list(joined.classes), joined.labels, classes)
        idx = np.flatnonzero(keep)
        j = joined.subset(idx)
        return FaceDataset(
            j.images, labels[idx], classes, j.groups, source=j.source, domains=j.domains
        )
    path = Path(path).expanduser()
    if path.is_dir():
        return load_folder(path, classes, group_regex=group_regex)
    if path.suffix == ".npz":
        return load_npz(path, classes)
    if path.suffix == ".csv":
        return load_fer2013_csv(path, classes)
    raise ValueError(f"unknown dataset format: {path} (want .npz, .csv or a folder)")
