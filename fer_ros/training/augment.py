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
    return out
