"""One layer's compartments, scanned over the steps of a batch: nengo-loihi's update.

:class:`ChipLayer` holds a layer's parameters as the layered emulator reads them off the
built model (and how it computes its synaptic input); :class:`CompartmentScan` applies
nengo-loihi 1.1's ``CompartmentState.update`` to the whole layer and batch one step at a
time (the reset after a spike makes the voltage sequential): ``decay_int`` truncation,
21-bit input and 23-bit current wrap-around with a warning, clipping, refractory clamp,
spike and reset. The builder's neurons (integrate-and-fire with a current carry, nothing
that wraps) run as one compiled loop (:func:`.kernels.plain_scan`); any other parameter
set runs as numpy operations a step at a time.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fer_ros.snn.emulator import kernels
from fer_ros.snn.emulator.integers import U_BITS, wrap_float, wrapped


@dataclass
class ChipLayer:
    """One on-chip layer: its synaptic input and its compartments, in internal order."""

    name: str
    n: int
    ens_of_internal: np.ndarray  # nengo neuron index of each internal compartment
    internal_of_ens: np.ndarray
    dtype: type
    vth: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray | None  # None: clipping at vmax cannot change a spike or a voltage
    bias: np.ndarray | None  # None: all zero
    ku: np.ndarray | float | None  # current decay (4096 - 1 - decay_u) / 4096; None: no carry
    kv: np.ndarray | float | None  # voltage decay (4096 - decay_v) / 4096; None: no decay
    ref: np.ndarray | None  # refractory delays; None: no compartment is ever refractory
    wrap_q: bool  # synaptic input may exceed 21 bits
    wrap_c: bool
    wrap_u: bool
    wrap_v: bool  # int32 wrap-around of the voltage sum (vmin near -2**31)
    shift: int  # weights / 2**shift are the integers multiplied
    gemm_dtype: type
    kind: str = "sparse"  # "conv", "dense" or "sparse"
    kernel: np.ndarray | None = None  # conv: (taps, channels) weights / 2**shift
    conv_shape: tuple[int, int] = (0, 0)  # (positions, channels) of the internal order
    window: tuple = ()  # (H, W, C_in, kh, kw, stride, pad, OH, OW, source_channels_last)
    matrix: object = None  # dense ndarray or scipy CSR (sources x compartments), scaled
    scratch: dict = field(default_factory=dict)  # buffers and per-layer constants, made on use


class CompartmentScan:
    """``CompartmentState.update`` for one layer and batch, advanced a chunk of steps at a time.

    Elementwise on the whole layer and batch, one step at a time (the reset after a spike
    makes the voltage sequential); every operation nengo-loihi's parameters make a no-op is
    skipped (see :meth:`~fer_ros.snn.emulator.layered.LayeredEmulator._compartments`).
    A chunk's input is ``rows[index]``: ``index`` (steps, faces) picks a row of synaptic
    input for every step and face, so repeated rows are computed and stored once.
    """

    def __init__(self, layer: ChipLayer, steps: int, faces: int, record: bool) -> None:
        dt = layer.dtype
        shape = (faces, layer.n)
        self.layer = layer
        self.spikes = np.empty((steps, *shape), bool)
        self.volts = np.empty((steps, *shape), dt) if record else None
        self.t = 0
        self.c = np.zeros(shape, dt)
        self.v = np.zeros(shape, dt)
        self.u = np.empty(shape, dt)
        self.rc = np.zeros(shape, dt) if layer.ref is not None else None
        self.busy = np.empty(shape, bool)
        self.overflow = {"current": False, "u2": False}
        self.plain = (
            layer.kv is None
            and layer.ref is None
            and layer.vmax is None
            and not (layer.wrap_c or layer.wrap_u or layer.wrap_v)
        )

    def advance(self, rows: np.ndarray, index: np.ndarray | None = None) -> None:
        """Run the next steps: ``rows`` (steps, faces, n) synaptic input, or with ``index``
        (steps, faces) the distinct rows (m, n) that ``index`` picks from."""
        if index is None:
            steps, faces, n = rows.shape
            index = np.arange(steps * faces).reshape(steps, faces)
            rows = rows.reshape(steps * faces, n)
        if self.plain:
            self._plain(rows, index)
        else:
            self._general(rows[step] for step in index)
        self.t += len(index)

    def _plain(self, rows: np.ndarray, index: np.ndarray) -> None:
        """Integrate-and-fire with a current carry and no wrap-around: the builder's neurons."""
        layer, steps = self.layer, len(index)
        ku, bias = _constants(layer)
        kernels.plain_scan(
            np.ascontiguousarray(rows, layer.dtype),
            np.ascontiguousarray(index, np.int64),
            self.c,
            self.v,
            ku,
            layer.ku is not None,
            bias,
            layer.vmin,
            layer.vth,
            self.spikes[self.t : self.t + steps],
            _NO_VOLTS[layer.dtype] if self.volts is None else self.volts[self.t : self.t + steps],
            self.volts is not None,
        )

    def _general(self, q: Iterable[np.ndarray]) -> None:
        """Every branch of ``CompartmentState.update`` that the layer's parameters need."""
        layer, c, v, u, rc, busy = self.layer, self.c, self.v, self.u, self.rc, self.busy
        for k, qt in enumerate(q):
            if layer.ku is None:
                cur = qt.copy() if layer.wrap_c else qt  # shared rows stay unwrapped
            else:
                np.multiply(c, layer.ku, c)
                np.trunc(c, c)
                np.add(c, qt, c)
                cur = c
            if layer.wrap_c:
                self.overflow["current"] |= wrapped(cur, U_BITS)
            if layer.bias is not None:
                np.add(cur, layer.bias, u)
                if layer.wrap_u:
                    self.overflow["u2"] |= wrapped(u, U_BITS)
                cur = u
            if layer.kv is not None:
                np.multiply(v, layer.kv, v)
                np.trunc(v, v)
            np.add(v, cur, v)
            if layer.wrap_v:
                wrap_float(v, 31)  # the stock emulator's int32 voltage sum
            np.maximum(v, layer.vmin, v)
            if layer.vmax is not None:
                np.minimum(v, layer.vmax, v)
            if rc is not None:
                np.greater(rc, 0, busy)
                np.copyto(v, 0, where=busy)
            s = self.spikes[self.t + k]
            np.greater(v, layer.vth, s)
            np.copyto(v, 0, where=s)
            if rc is not None:
                np.copyto(rc, layer.ref, where=s)
                np.subtract(rc, 1, rc)
                np.maximum(rc, 0, rc)
            if self.volts is not None:
                self.volts[self.t + k] = v

    def finish(self) -> None:
        """Warn once per kind of wrap-around, like nengo-loihi's non-strict emulator."""
        for name, hit in self.overflow.items():
            if hit:
                warnings.warn(f"Overflow in {name}", stacklevel=4)


_NO_VOLTS = {dt: np.empty((0, 0, 0), dt) for dt in (np.float32, np.float64)}  # not recorded


def _constants(layer: ChipLayer) -> tuple[np.ndarray, np.ndarray]:
    """The layer's current decay and bias as arrays of its dtype (zeros when absent)."""
    found = layer.scratch.get("plain")
    if found is None:
        n, dt = layer.n, layer.dtype
        ku = np.zeros(n, dt) if layer.ku is None else np.broadcast_to(layer.ku, n).astype(dt)
        bias = np.zeros(n, dt) if layer.bias is None else layer.bias.astype(dt)
        found = layer.scratch["plain"] = (ku, bias)
    return found
