"""Compiled loops of the layered emulator: the compartment scan and spike-driven input.

numpy pays about a microsecond per call, and the scan over T steps of a layer is a few
calls per step, so small layers cost their call count, not their arithmetic. These loops
are compiled with numba (the JIT the scientific Python stack uses for such kernels),
release the interpreter lock while they run, and keep nengo-loihi's integer arithmetic:
every value is an integer held exactly in float32 or float64 (the layer's ``dtype``, as
:mod:`.layered` decides), and only operations that are exact on such integers are used,
so the result does not depend on the order of additions.

Compiled code is cached on disk (``numba`` beside the emulator's tables in
:func:`fer_ros.core.paths.cache_dir`, or ``$NUMBA_CACHE_DIR`` when set), so a restarted
stage loads it instead of compiling again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_ros.core.paths import cache_dir


def _writable(directory: Path | None) -> bool:
    """Whether compiled code can be kept in ``directory`` (numba refuses to cache, at
    import, where it cannot write; then every process compiles, 0.9 s at configure)."""
    if directory is None:
        return False
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


# A NUMBA_CACHE_DIR the user set wins; numba reads it when it is first imported.
_CACHE = Path(os.environ.get("NUMBA_CACHE_DIR") or (cache_dir() or Path()) / "numba")
_KEEP = cache_dir() is not None and _writable(_CACHE)
if _KEEP:
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_CACHE))

from numba import njit  # noqa: E402  (after NUMBA_CACHE_DIR is set)

_JIT = {"cache": _KEEP, "nogil": True, "fastmath": False, "boundscheck": False}


@njit(**_JIT)
def plain_scan(
    rows: np.ndarray,
    index: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    ku: np.ndarray,
    carry: bool,
    bias: np.ndarray,
    vmin: np.ndarray,
    vth: np.ndarray,
    spikes: np.ndarray,
    volts: np.ndarray,
    record: bool,
) -> None:
    """nengo-loihi's ``CompartmentState.update`` for integrate-and-fire compartments with a
    current carry and no wrap-around, over ``len(index)`` steps.

    Step k's synaptic input for face f is ``rows[index[k, f]]`` (n,); ``c``, ``v`` (faces,
    n) are the state, updated in place; ``ku`` (n,) the current decay factor (used when
    ``carry``); ``bias``, ``vmin``, ``vth`` (n,); ``spikes`` (steps, faces, n) bool and
    ``volts`` (written when ``record``) are filled. Per compartment and step, as
    nengo-loihi: ``c = trunc(c * ku) + q``, ``v = max(v + c + bias, vmin)``, spike and
    reset to 0 where ``v > vth``.
    """
    steps, faces = index.shape
    n = rows.shape[1]
    zero = v.dtype.type(0)
    for k in range(steps):
        for f in range(faces):
            q = rows[index[k, f]]
            for i in range(n):
                current = q[i]
                if carry:
                    current += np.trunc(c[f, i] * ku[i])
                c[f, i] = current
                volt = max(v[f, i] + current + bias[i], vmin[i])
                fired = volt > vth[i]
                if fired:
                    volt = zero
                spikes[k, f, i] = fired
                v[f, i] = volt
                if record:
                    volts[k, f, i] = volt


@njit(**_JIT)
def scatter_dense(spikes: np.ndarray, matrix: np.ndarray, out: np.ndarray) -> None:
    """``out = spikes @ matrix`` for 0/1 ``spikes`` (rows, sources): one row of ``matrix``
    added per spike, so the work is the spike count, not the matrix size."""
    rows, sources = spikes.shape
    width = matrix.shape[1]
    for r in range(rows):
        for j in range(width):
            out[r, j] = 0
        for s in range(sources):
            if spikes[r, s]:
                for j in range(width):
                    out[r, j] += matrix[s, j]


@njit(**_JIT)
def scatter_conv(
    spikes: np.ndarray,
    kernel: np.ndarray,
    channels: int,
    channels_last: bool,
    first: np.ndarray,
    position: np.ndarray,
    tap: np.ndarray,
    out: np.ndarray,
) -> None:
    """A convolution's synaptic input from its input spikes, one kernel row per spike.

    ``spikes`` (rows, positions_in * channels), channels last or (the chip's input)
    channels first; ``kernel`` (taps * channels, c_out) in (tap, channel) order; the output
    positions an input position reaches, and through which tap, are
    ``position[first[p]:first[p + 1]]`` and ``tap[...]``; ``out`` (rows, positions_out,
    c_out) is overwritten.
    """
    rows, sources = spikes.shape
    c_out = kernel.shape[1]
    positions = sources // channels
    for r in range(rows):
        out[r] = 0
        for s in range(sources):
            if spikes[r, s]:
                if channels_last:
                    p, ci = s // channels, s % channels
                else:
                    ci, p = s // positions, s % positions
                for e in range(first[p], first[p + 1]):
                    o = position[e]
                    w = tap[e] * channels + ci
                    for j in range(c_out):
                        out[r, o, j] += kernel[w, j]
