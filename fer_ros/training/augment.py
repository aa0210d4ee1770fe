"""Face-appropriate augmentation of uint8 crops, applied before preprocessing.

Augmenting the grey crop and then running the shared ``preprocess_crops`` (Canny or
not) keeps training inputs the same kind the runtime will see. Only variations a camera
on a robot produces: small shifts, rotations and scale changes, mirror images and
lighting. No vertical flip (upside-down faces do not occur). The ``camera`` group
(:data:`ROBOT_CAMERA`) adds what a robot's own camera does to a face: motion and focus
blur, low light with sensor noise, gamma, JPEG blocking, a far face enlarged from few
pixels, and a hand or object over part of the face.
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
    blur_probability: float = 0.0  # Gaussian blur, sigma 0.5-1.5 px (focus, motion)
    max_gamma: float = 0.0  # gamma in [1/(1+g), 1+g]: dark or washed-out exposure
    noise_probability: float = 0.0  # low light: darkened, Gaussian noise sigma 2-10 levels
    jpeg_probability: float = 0.0  # JPEG at quality 30-90 (compressed camera streams)
    downscale_probability: float = 0.0  # shrunk to 16-32 px and enlarged: a far face
    occlude_probability: float = 0.0  # a skin-grey ellipse (a hand) over part of the face


ROBOT_CAMERA = {
    "blur_probability": 0.2,
    "max_gamma": 0.4,
    "noise_probability": 0.2,
    "jpeg_probability": 0.2,
    "downscale_probability": 0.2,
    "occlude_probability": 0.1,
}


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
        _camera(out[i], rng, s)
    return out


def _camera(img: np.ndarray, rng: np.random.Generator, s: AugmentSettings) -> None:
    """The robot-camera effects of ``s``, each with its own probability, in place."""
    h, w = img.shape
    if s.downscale_probability and rng.random() < s.downscale_probability:
        side = int(rng.integers(16, 33))
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        img[...] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if s.blur_probability and rng.random() < s.blur_probability:
        img[...] = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
    if s.max_gamma:
        gamma = float(np.exp(rng.uniform(-1, 1) * np.log1p(s.max_gamma)))
        lut = (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
        img[...] = lut[img]
    if s.noise_probability and rng.random() < s.noise_probability:
        dark = img.astype(np.float32) * rng.uniform(0.3, 0.8)
        dark += rng.normal(0.0, rng.uniform(2.0, 10.0), img.shape)
        img[...] = np.clip(dark, 0, 255).astype(np.uint8)
    if s.occlude_probability and rng.random() < s.occlude_probability:
        centre = (int(rng.integers(0, w)), int(rng.integers(h // 2, h)))
        axes = (int(rng.integers(w // 6, w // 3)), int(rng.integers(h // 8, h // 4)))
        shade = int(np.clip(img.mean() + rng.normal(0, 20), 0, 255))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, shade, -1)
    if s.jpeg_probability and rng.random() < s.jpeg_probability:
        quality = int(rng.integers(30, 91))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            img[...] = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


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
