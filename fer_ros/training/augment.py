"""Face-appropriate augmentation of uint8 crops, applied before preprocessing.

Augmenting the grey crop and then running the shared ``preprocess_crops`` (Canny or
not) keeps training inputs the same kind the runtime will see. Only variations a camera
on a robot produces: small shifts, rotations and scale changes, mirror images and
lighting. No vertical flip (upside-down faces do not occur).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    max_shift_px: float = 3.0
    max_rotation_deg: float = 10.0
    max_scale: float = 0.08  # relative zoom in/out
    flip_probability: float = 0.5
    max_brightness: float = 0.15  # fraction of full scale added or removed
    max_contrast: float = 0.2  # relative gain change around the mean
    erase_probability: float = 0.0  # random erasing: a grey box hides part of the face
    max_erase_fraction: float = 0.25  # largest box area, as a fraction of the crop


def augment_crops(
    crops: np.ndarray, rng: np.random.Generator, s: AugmentSettings = AugmentSettings()
) -> np.ndarray:
    """Randomly transformed copies of uint8 (n, H, W) crops."""
    out = np.empty_like(crops)
    h, w = crops.shape[1:]
    for i, crop in enumerate(crops):
        angle = rng.uniform(-s.max_rotation_deg, s.max_rotation_deg)
        scale = 1.0 + rng.uniform(-s.max_scale, s.max_scale)
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, scale)
        m[:, 2] += rng.uniform(-s.max_shift_px, s.max_shift_px, size=2)
        img = cv2.warpAffine(
            crop, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        if rng.random() < s.flip_probability:
            img = img[:, ::-1]
        gain = 1.0 + rng.uniform(-s.max_contrast, s.max_contrast)
        offset = 255.0 * rng.uniform(-s.max_brightness, s.max_brightness)
        mean = float(img.mean())
        img = (img.astype(np.float32) - mean) * gain + mean + offset
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
        if s.erase_probability > 0 and rng.random() < s.erase_probability:
            _erase(out[i], rng, s.max_erase_fraction)
    return out


def _erase(img: np.ndarray, rng: np.random.Generator, max_fraction: float) -> None:
    """Fill a random box (2-``max_fraction`` % of the area, aspect 1:3-3:1) with its mean,
    in place: the net must not rely on any single facial region."""
    h, w = img.shape
    area = h * w * rng.uniform(0.02, max_fraction)
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3)))
    bh = int(min(h, round(np.sqrt(area * aspect))))
    bw = int(min(w, round(np.sqrt(area / aspect))))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    box = img[y : y + bh, x : x + bw]
    box[...] = int(box.mean()) if box.size else 0
