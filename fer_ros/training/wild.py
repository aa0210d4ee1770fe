"""In-the-wild photo sets (JPEG bytes in an ``.npz``), cropped as the live graph crops.

The format (``wild_faces_dev.npz``): ``jpeg`` (all files concatenated), ``offsets``
(n + 1), ``labels``, ``classes``, ``groups`` (one id per person) and ``names``. Most
photos are tight face shots, so each is padded by half its size (edge replicated) to give
the detector a face of the size a camera frame shows, then BlazeFace finds the largest
face and the crop is aligned on its eyes exactly as ``face_detection`` does at run time:
training and live crops share their framing. Photos in which no face is found are left
out (a robot would not see them either) and counted.

Cropping the 10,201 dev photos takes 35 s on one core (24 s on two threads, AMD EPYC with
AVX-512), so the crops are cached under
``build/crops/`` keyed by the file's digest and the crop settings (never committed: they
are derived from the photos).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

from fer_ros.core.blazeface import BlazeFaceDetector, aligned_crop

CACHE_DIR = Path("build/crops")


@dataclass(frozen=True)
class WildCropSettings:
    size: int = 48
    pad_fraction: float = 0.5  # border added on each side, fraction of the photo's side
    min_side: int = 256  # padded photos are enlarged to at least this (detector input)
    model: str = "both"  # BlazeFace models pooled, as config/common.yaml's detector


def is_wild_npz(path: Path) -> bool:
    with np.load(path, allow_pickle=False) as d:
        return "jpeg" in d.files and "offsets" in d.files


def crop_photo(
    gray: np.ndarray, detector: BlazeFaceDetector, s: WildCropSettings
) -> np.ndarray | None:
    """The eye-aligned crop of the largest face in a grey photo, or None."""
    h, w = gray.shape
    pad_y, pad_x = round(h * s.pad_fraction), round(w * s.pad_fraction)
    padded = cv2.copyMakeBorder(gray, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
    factor = max(1.0, s.min_side / max(padded.shape))
    if factor > 1.0:
        padded = cv2.resize(padded, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    found = detector.detect(cv2.cvtColor(padded, cv2.COLOR_GRAY2BGR))
    if not found:
        return None
    best = max(found, key=lambda d: d.box[2] * d.box[3])
    return aligned_crop(padded, best, s.size)


def _digest(path: Path, s: WildCropSettings) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(json.dumps(asdict(s), sort_keys=True).encode())
    return h.hexdigest()[:16]


def wild_crops(
    path: Path, s: WildCropSettings = WildCropSettings(), cache_dir: Path = CACHE_DIR
) -> dict[str, np.ndarray]:
    """Crops and metadata of a wild ``.npz``: ``images`` (m, size, size) uint8, ``labels``,
    ``groups``, ``index`` (row in the source file), ``classes``; cached on disk."""
    cache = cache_dir / f"{path.stem}_{_digest(path, s)}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as d:
            return {k: d[k] for k in d.files}
    with np.load(path, allow_pickle=False) as d:
        jpeg, offsets = d["jpeg"], d["offsets"]
        labels, groups, classes = d["labels"], d["groups"], d["classes"]

    def crop_range(rows: range) -> list[np.ndarray | None]:
        detector = BlazeFaceDetector(s.model)  # an interpreter per thread
        crops = []
        for i in rows:
            gray = cv2.imdecode(jpeg[offsets[i] : offsets[i + 1]], cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise ValueError(f"{path}: image {i} is not a decodable JPEG")
            crops.append(crop_photo(gray, detector, s))
        return crops

    # Threads, not processes: decoding, resizing and the interpreter release the GIL, and
    # a process pool would re-import the caller's main module on spawn.
    workers = max(1, min(len(os.sched_getaffinity(0)), 8))
    bounds = np.linspace(0, len(labels), workers + 1).astype(int)
    chunks = [range(a, b) for a, b in pairwise(bounds)]
    with ThreadPoolExecutor(workers) as pool:
        found = [crop for crops in pool.map(crop_range, chunks) for crop in crops]
    kept = [i for i, crop in enumerate(found) if crop is not None]
    crops = [found[i] for i in kept]
    index = np.asarray(kept, np.int64)
    out = {
        "images": np.stack(crops).astype(np.uint8),
        "labels": labels[index].astype(np.int64),
        "groups": groups[index].astype(np.int64),
        "index": index,
        "classes": np.asarray(classes),
        "photos": np.asarray(len(labels)),
    }
    print(
        f"{path.name}: a face found in {len(index)} of {len(labels)} photos "
        f"({len(labels) - len(index)} left out); crops cached in {cache}",
        file=sys.stderr,
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.partial.npz")  # an interrupted build
    np.savez_compressed(partial, **out)  # leaves no cache that looks complete
    partial.replace(cache)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m fer_ros.training.wild FILE...``: cut and cache the crops of every
    in-the-wild set among FILEs (others are passed over), so that the first training run
    or test does not pay for it; ``tools/setup.sh --dev`` runs it."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    wild = []
    for path in args.files:
        if not (path.is_file() and path.suffix == ".npz"):
            continue
        try:
            if is_wild_npz(path):
                wild.append(path)
        except (OSError, ValueError, zipfile.BadZipFile) as error:  # e.g. a Git LFS pointer
            print(f"{path}: not a readable .npz ({error}); passed over", file=sys.stderr)
    if not wild:
        print("no in-the-wild photo set given; no crops cut", file=sys.stderr)
    for path in wild:
        wild_crops(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
