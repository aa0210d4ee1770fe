"""Where camera frames come from: a V4L2 device, a video file, or a folder of images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_ros.core.demo_media import demo_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message says which and why."""


class FrameSource(Protocol):
    description: str
    is_live: bool  # a device (may vanish and come back) rather than a finite file
    native_fps: float  # 0 when unknown

    def read(self) -> np.ndarray | None:
        """Next BGR frame, or None at the end of the stream (or when a device fails)."""

    def rewind(self) -> bool:
        """Start again from the first frame; False when the source cannot."""

    def close(self) -> None: ...


class CaptureSource:
    """cv2.VideoCapture over a device index, a /dev/video path or a video file.

    A video file that cannot be opened is an error. A device that is absent is not: a
    robot's camera may be plugged in later, so the source stays closed (``opened``
    False, ``read`` None) and the camera node reopens it periodically.
    """

    def __init__(self, target: int | str, is_live: bool) -> None:
        self.description = f"device {target}" if is_live else f"video {target}"
        self.is_live = is_live
        self._target = target
        if is_live:
            self._capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
        else:
            # FFmpeg decodes with a thread per core unless told: as many as OpenCV's pool
            # (the process's thread budget). One decoding thread measured 0.44 CPU-ms a
            # 640x360 frame against 0.65 ms with two, in the same wall time.
            threads = [cv2.CAP_PROP_N_THREADS, cv2.getNumThreads()]
            self._capture = cv2.VideoCapture(target, cv2.CAP_ANY, threads)
        if not self._capture.isOpened() and not is_live:
            raise SourceError(f"cannot open {self.description}")
        if is_live:  # keep no backlog: a queued frame would be stamped late
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.native_fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)

    @property
    def opened(self) -> bool:
        return bool(self._capture.isOpened())

    def read(self) -> np.ndarray | None:
        if not self._capture.isOpened():
            return None
        ok, frame = self._capture.read()
        return frame if ok and frame is not None and frame.size else None

    def rewind(self) -> bool:
        if self.is_live:
            return False
        return bool(self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def reopen(self) -> bool:
        """Try to open the device again after it disappeared."""
        self._capture.release()
        self._capture = cv2.VideoCapture(self._target, cv2.CAP_V4L2)
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return self._capture.isOpened()

    def close(self) -> None:
        self._capture.release()


class FolderSource:
    """Images of a folder in name order.

    Decoded images are kept (read-only) while they fit in ``cache_bytes``, so a looping
    folder decodes each file once: decoding a 1000 px JPEG took ~5 ms a frame, a sixth
    of the camera's budget at 30 FPS, for the same pixels every loop.
    """

    def __init__(self, folder: Path, cache_bytes: int = 256 << 20) -> None:
        self.description = f"images in {folder}"
        self.is_live = False
        self.native_fps = 0.0
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self._index = 0
        self._decoded: dict[int, np.ndarray] = {}
        self._room = cache_bytes

    def read(self) -> np.ndarray | None:
        # Unreadable files are skipped; the stream ends after the last file.
        while self._index < len(self._files):
            index = self._index
            self._index += 1
            frame = self._decoded.get(index)
            if frame is None:
                frame = cv2.imread(str(self._files[index]), cv2.IMREAD_COLOR)
                if frame is not None and frame.nbytes <= self._room:
                    frame.flags.writeable = False  # shared by every loop
                    self._decoded[index] = frame
                    self._room -= frame.nbytes
            if frame is not None:
                return frame
        return None

    def rewind(self) -> bool:
        self._index = 0
        return True

    def close(self) -> None:
        pass


def open_source(source: str) -> FrameSource:
    """Open ``source``: "demo", a device index, /dev/videoN, a video file or an image folder."""
    if source == "demo":
        source = str(demo_file())
    if source.isdigit():
        return CaptureSource(int(source), is_live=True)
    if source.startswith("/dev/"):
        return CaptureSource(source, is_live=True)
    path = Path(source).expanduser()
    if path.is_dir():
        return FolderSource(path)
    if not path.is_file():
        raise SourceError(f"no such camera source: {source}")
    return CaptureSource(str(path), is_live=False)


class StreamState(StrEnum):
    """What a camera's source is doing; the camera publishes it on /diagnostics under
    :data:`STREAM_KEY`, and bringup's monitor ends a run on ``END_OF_STREAM``."""

    IDLE = "idle"  # not started
    STREAMING = "streaming"
    NO_DEVICE = "no device"  # a live device that delivers nothing (reopened periodically)
    END_OF_STREAM = "end_of_stream"  # a finite source delivered its last frame


STREAM_KEY = "stream"
