"""A progress bar over faces: tqdm when installed (dev/train extras), else plain lines."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, enabled: bool = True) -> None:
        self._bar = None
        self._done, self._total, self._enabled = 0, total, enabled
        self._label, self._last = "", 0.0
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="face", dynamic_ncols=True)
            except ImportError:
                pass

    def stage(self, label: str) -> None:
        self._label = label
        if self._bar is not None:
            self._bar.set_description(label)
        elif self._enabled:
            print(f"[{self._done}/{self._total} faces] {label}", file=sys.stderr, flush=True)

    def tick(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._enabled and time.monotonic() - self._last > 10.0:  # one line per 10 s
            self._last = time.monotonic()
            print(f"  {self._done}/{self._total} faces ({self._label})", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
