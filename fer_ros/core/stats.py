"""Rolling figures for logs, diagnostics and telemetry."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RollingLatency:
    """The last ``size`` latencies in milliseconds, with percentiles; with ``window_s``
    only those of the last ``window_s`` seconds count, so a figure (and an alarm on it)
    recovers when the cause is gone, also while no new latency arrives."""

    def __init__(self, size: int = 300, window_s: float | None = None) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._times: deque[float] = deque(maxlen=size)
        self._window_s = window_s
        self._lock = threading.Lock()

    def add(self, ms: float, now: float | None = None) -> None:
        with self._lock:
            self._values.append(ms)
            self._times.append(time.monotonic() if now is None else now)

    def percentile(self, q: float, now: float | None = None) -> float:
        with self._lock:
            self._trim(now)
            return float(np.percentile(self._values, q)) if self._values else float("nan")

    def _trim(self, now: float | None) -> None:
        if self._window_s is None:
            return
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()
            self._values.popleft()

    def __len__(self) -> int:
        with self._lock:
            self._trim(None)
            return len(self._values)


class RateMeter:
    """Events per second over a sliding window of wall time (ticked and read from any thread)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            return len(self._times) / self._window_s

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()
