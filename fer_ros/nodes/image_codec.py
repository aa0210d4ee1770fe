"""sensor_msgs/Image and CompressedImage <-> numpy without cv_bridge (no working ROS 2
cv_bridge on PyPI).

Besides the 8-bit mono and colour encodings this reads the packed YUV 4:2:2 that USB
cameras deliver through ``usb_cam`` or ``v4l2_camera``: ``yuv422`` (UYVY byte order, as
sensor_msgs' image_encodings defines it) and ``yuv422_yuy2`` (YUYV), and the JPEG or PNG
payloads of image_transport's ``compressed`` transport.
"""

from __future__ import annotations

from array import array

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fer_ros.nodes.input_limits import EmptyInput

# encoding -> (channels, OpenCV conversion to grayscale or None when already mono)
_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "mono8": (1, None),
    "8UC1": (1, None),
    "bgr8": (3, cv2.COLOR_BGR2GRAY),
    "8UC3": (3, cv2.COLOR_BGR2GRAY),
    "rgb8": (3, cv2.COLOR_RGB2GRAY),
    "bgra8": (4, cv2.COLOR_BGRA2GRAY),
    "rgba8": (4, cv2.COLOR_RGBA2GRAY),
    # packed 4:2:2, two bytes a pixel: U Y0 V Y1 (UYVY) and Y0 U Y1 V (YUYV)
    "yuv422": (2, cv2.COLOR_YUV2GRAY_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2GRAY_YUY2),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)
# encoding -> OpenCV conversion to BGR (None: already BGR, or mono, which stays mono)
_TO_BGR: dict[str, int | None] = {
    "rgb8": cv2.COLOR_RGB2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "yuv422": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUY2,
}
_PACKED_422 = ("yuv422", "yuv422_yuy2")  # one chroma pair per two pixels: even widths only
# CompressedImage.format as image_transport writes it, e.g. "jpeg", "png" or
# "rgb8; jpeg compressed bgr8"; compressedDepth (16-bit depth maps) is another transport.
COMPRESSED_FORMATS = ("jpeg", "png")


class ImageError(ValueError):
    """An Image message that cannot be interpreted; the message says why."""


class EmptyImage(ImageError, EmptyInput):
    """An image without pixels: counted apart (``inputs_empty``)."""


def image_to_array(msg: Image) -> np.ndarray:
    """View an 8-bit Image as (H, W) or (H, W, C) uint8 without copying pixel data."""
    if msg.encoding not in _ENCODINGS:
        raise ImageError(
            f"unsupported encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    channels = _ENCODINGS[msg.encoding][0]
    if msg.width == 0 or msg.height == 0 or not len(msg.data):
        raise EmptyImage(f"empty image ({msg.width}x{msg.height}, {len(msg.data)} bytes)")
    if msg.encoding in _PACKED_422 and msg.width % 2:
        raise ImageError(f"{msg.encoding} needs an even width, not {msg.width}")
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageError(f"step {msg.step} is shorter than a row of {row_bytes} bytes")
    if len(msg.data) < msg.step * msg.height:
        raise ImageError(
            f"data holds {len(msg.data)} bytes, {msg.step * msg.height} expected "
            f"for {msg.width}x{msg.height} {msg.encoding} with step {msg.step}"
        )
    flat = np.frombuffer(msg.data, np.uint8, count=msg.step * msg.height)
    rows = flat.reshape(msg.height, msg.step)[:, :row_bytes]
    return rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows


def image_to_gray(msg: Image) -> np.ndarray:
    """Any supported 8-bit Image as a (H, W) uint8 grayscale array."""
    pixels = image_to_array(msg)
    conversion = _ENCODINGS[msg.encoding][1]
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def image_to_bgr(msg: Image) -> np.ndarray:
    """Any supported 8-bit Image as BGR (H, W, 3), or (H, W) when it is mono."""
    pixels = image_to_array(msg)
    conversion = _TO_BGR.get(msg.encoding)
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """A JPEG or PNG CompressedImage as BGR (H, W, 3), or (H, W) when it holds grey."""
    # The payload says what it is (OpenCV reads its signature), so a publisher that writes
    # "jpg" or leaves format empty is still read; only another transport's data is refused.
    if "compresseddepth" in msg.format.lower():
        raise ImageError(
            f"unsupported compressed format {msg.format!r}: a compressedDepth map; "
            f"supported: {', '.join(COMPRESSED_FORMATS)}"
        )
    if not len(msg.data):
        raise EmptyImage(f"empty compressed image (format {msg.format!r})")
    pixels = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ImageError(
            f"{len(msg.data)} bytes (format {msg.format!r}) do not decode as "
            f"{' or '.join(COMPRESSED_FORMATS)}"
        )
    if pixels.dtype != np.uint8:
        raise ImageError(f"{msg.format!r} holds {pixels.dtype} pixels; only 8-bit images are read")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    return pixels


def array_to_image(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """Build an Image from a uint8 array (assigning an ndarray to data is ~100x slower)."""
    if pixels.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {pixels.dtype}")
    pixels = np.ascontiguousarray(pixels)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.step = int(pixels.strides[0])
    data = array("B")
    data.frombytes(pixels.tobytes())
    msg.data = data
    return msg
