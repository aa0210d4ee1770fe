"""Face-crop preprocessing shared by training, the spike encoder and every backend."""

from __future__ import annotations

import cv2
import numpy as np

from fer_ros.core.model_card import CannySettings


def canny_edges(crop: np.ndarray, settings: CannySettings) -> np.ndarray:
    """Canny edge map (uint8, 0 or 255) of one mono8 crop."""
    k = settings.blur_kernel
    blurred = cv2.GaussianBlur(crop, (k, k), 0) if k > 1 else crop
    return cv2.Canny(blurred, settings.low_threshold, settings.high_threshold)


def preprocess_crops(crops: np.ndarray, preprocessing: str, canny: CannySettings) -> np.ndarray:
    """uint8 (n, H, W) crops -> float32 (n, 1, H, W) in [0, 1], as the models were trained."""
    if crops.ndim != 3 or crops.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 crops of shape (n, H, W), got {crops.dtype} {crops.shape}"
        )
    if preprocessing == "canny":
        crops = np.stack([canny_edges(c, canny) for c in crops]) if len(crops) else crops
    elif preprocessing != "grayscale":
        raise ValueError(f"unknown preprocessing {preprocessing!r}")
    return (crops.astype(np.float32) / 255.0)[:, None, :, :]


def stack_crops(crops: list[np.ndarray], height: int, width: int, model_id: str) -> np.ndarray:
    """Stack mono8 face crops into (n, H, W), refusing any of another size than the model's."""
    for crop in crops:
        if crop.shape != (height, width):
            raise ValueError(
                f"crops are {crop.shape[1]}x{crop.shape[0]}, {model_id} needs {width}x{height} "
                "(face_detection crop_size)"
            )
    return np.stack(crops)
