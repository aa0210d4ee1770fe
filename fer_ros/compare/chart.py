"""A small PNG chart drawn with OpenCV: axes (linear or log10), markers, lines, bars, legend.

OpenCV is already a runtime dependency; matplotlib is not installed in the venv, and the
model cards' confusion matrices are drawn the same way (fer_ros/training/metrics.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, GREY, LIGHT = (0, 0, 0), (130, 130, 130), (225, 225, 225)
PALETTE = (
    (180, 90, 30),
    (40, 130, 230),
    (60, 160, 60),
    (40, 40, 200),
    (160, 80, 160),
    (30, 160, 190),
    (120, 120, 120),
)


class Chart:
    """Data coordinates -> pixels on a white canvas; ``log`` axes take log10 of the data."""

    def __init__(
        self,
        title: str,
        xlabel: str,
        ylabel: str,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        xlog: bool = False,
        ylog: bool = False,
        size: tuple[int, int] = (1000, 640),
        left: int = 110,
        yticks: bool = True,
    ) -> None:
        self.w, self.h = size
        self.img = np.full((self.h, self.w, 3), 255, np.uint8)
        self.x0, self.x1, self.y0, self.y1 = left, self.w - 40, self.h - 80, 75
        self.xlog, self.ylog = xlog, ylog
        self.xlim = tuple(math.log10(v) for v in xlim) if xlog else xlim
        self.ylim = tuple(math.log10(v) for v in ylim) if ylog else ylim
        self.text(title, (left, 30), 0.65, thick=2)
        self.text(xlabel, ((self.x0 + self.x1) // 2 - 4 * len(xlabel), self.h - 25), 0.55)
        self.text(ylabel, (10, self.y1 - 12), 0.55)
        self._axes(yticks)

    def px(self, x: float, y: float) -> tuple[int, int]:
        return self._pxt(self._t(x, self.xlog), self._t(y, self.ylog))

    def _pxt(self, tx: float, ty: float) -> tuple[int, int]:
        """Pixels of already transformed (log10 where log) coordinates."""
        fx = (tx - self.xlim[0]) / (self.xlim[1] - self.xlim[0])
        fy = (ty - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        return int(self.x0 + fx * (self.x1 - self.x0)), int(self.y0 - fy * (self.y0 - self.y1))

    @staticmethod
    def _t(v: float, log: bool) -> float:
        return math.log10(max(v, 1e-30)) if log else v

    def _axes(self, yticks: bool) -> None:
        for tx in _ticks(*self.xlim, self.xlog):
            label = _fmt(10**tx if self.xlog else tx)
            x, _ = self._pxt(tx, self.ylim[0])
            cv2.line(self.img, (x, self.y0), (x, self.y1), LIGHT, 1)
            self.text(label, (x - 4 * len(label), self.y0 + 20))
        for ty in _ticks(*self.ylim, self.ylog) if yticks else ():
            label = _fmt(10**ty if self.ylog else ty)
            _, y = self._pxt(self.xlim[0], ty)
            cv2.line(self.img, (self.x0, y), (self.x1, y), LIGHT, 1)
            self.text(label, (self.x0 - 10 - 9 * len(label), y + 5))
        cv2.rectangle(self.img, (self.x0, self.y1), (self.x1, self.y0), BLACK, 1)

    def text(
        self, s: str, at: tuple[int, int], scale: float = 0.45, color: tuple = BLACK, thick: int = 1
    ) -> None:
        cv2.putText(self.img, s, at, FONT, scale, color, thick, cv2.LINE_AA)

    def marker(self, x: float, y: float, kind: str, color: tuple, label: str = "") -> None:
        """``filled`` (measured), ``hollow`` (modelled) or ``cross``."""
        cx, cy = self.px(x, y)
        self._glyph((cx, cy), kind, color, 8)
        if label:  # right of the marker, or left of it near the right edge
            x = cx + 12 if cx + 12 + 9 * len(label) < self.w else cx - 12 - 9 * len(label)
            self.text(label, (x, cy - 8), 0.45, color)

    def _glyph(self, at: tuple[int, int], kind: str, color: tuple, radius: int) -> None:
        if kind == "line":
            cv2.line(self.img, (at[0] - radius, at[1]), (at[0] + radius, at[1]), color, 2)
        elif kind in ("filled", "hollow"):
            cv2.circle(self.img, at, radius, color, -1 if kind == "filled" else 2, cv2.LINE_AA)
        else:
            cv2.drawMarker(self.img, at, color, cv2.MARKER_TILTED_CROSS, 2 * radius, 2)

    def polyline(self, xs: list[float], ys: list[float], color: tuple) -> None:
        points = np.array([self.px(x, y) for x, y in zip(xs, ys, strict=True)], np.int32)
        cv2.polylines(self.img, [points], False, color, 2, cv2.LINE_AA)

    def hbar(
        self, row: int, rows: int, value: float, whisker: float, color: tuple, label: str
    ) -> None:
        """Bar ``row`` of ``rows`` from the left edge to ``value``, a tick at ``whisker``."""
        band = (self.y0 - self.y1) / rows
        top = int(self.y1 + row * band + band * 0.2)
        bottom = int(self.y1 + (row + 1) * band - band * 0.2)
        x, _ = self.px(value, 1.0)
        cv2.rectangle(self.img, (self.x0 + 1, top), (x, bottom), color, -1)
        if math.isfinite(whisker):
            xw, _ = self.px(whisker, 1.0)
            mid = (top + bottom) // 2
            cv2.line(self.img, (x, mid), (xw, mid), BLACK, 1)
            cv2.line(self.img, (xw, top), (xw, bottom), BLACK, 2)
        self.text(label, (8, (top + bottom) // 2 + 5), 0.42)

    def legend(
        self, entries: list[tuple[str, str, tuple]], at: tuple[int, int] | None = None
    ) -> None:
        x, y = at or (self.x0 + 15, self.y1 + 25)
        for kind, label, color in entries:
            self._glyph((x, y - 4), kind, color, 7)
            self.text(label, (x + 16, y), 0.45)
            y += 22

    def save(self, path: Path) -> None:
        if not cv2.imwrite(str(path), self.img):
            raise OSError(f"could not write {path}")


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:  # decades; with few decades also 2x and 5x
        mults = (1, 2, 5) if hi - lo <= 3 else (1,)
        ticks = [e + math.log10(m) for e in range(math.floor(lo), math.ceil(hi) + 1) for m in mults]
        return [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    step = 10 ** math.floor(math.log10((hi - lo) / 5 or 1))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= 8:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{v:g}"


def padded_range(values: list[float], log: bool, pad: float = 0.15) -> tuple[float, float]:
    """Limits around ``values`` (whole decades on log axes)."""
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not finite:
        return (0.1, 10.0) if log else (0.0, 1.0)
    lo, hi = min(finite), max(finite)
    if log:
        return 10 ** math.floor(math.log10(lo) - pad), 10 ** math.ceil(math.log10(hi) + pad)
    span = (hi - lo) or abs(hi) or 1.0
    return lo - pad * span, hi + pad * span
