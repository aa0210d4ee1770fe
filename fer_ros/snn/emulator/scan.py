"""One layer's compartments, scanned over the steps of a batch: nengo-loihi's update.

:class:`ChipLayer` holds a layer's parameters as the layered emulator reads them off the
built model (and how it computes its synaptic input); :class:`CompartmentScan` applies
nengo-loihi 1.1's ``CompartmentState.update`` to the whole layer and batch one step at a
time (the reset after a spike makes the voltage sequential): ``decay_int`` truncation,
21-bit input and 23-bit current wrap-around with a warning, clipping, refractory clamp,
spike and reset.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fer_ros.snn.emulator.integers import U_BITS, wrap_float, wrapped

CLIP_CHECK_STEPS = 8  # steps between checks whether any membrane can reach vmin


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
    u_floor: float  # lower bound (<= 0) of one step's current + bias
    shift: int  # weights / 2**shift are the integers multiplied
    gemm_dtype: type
    kind: str = "sparse"  # "conv", "dense" or "sparse"
    kernel: np.ndarray | None = None  # conv: (taps, channels) weights / 2**shift
    conv_shape: tuple[int, int] = (0, 0)  # (positions, channels) of the internal order
    window: tuple = ()  # (H, W, C_in, kh, kw, stride, pad, OH, OW, source_channels_last)
    matrix: object = None  # dense ndarray or scipy CSR (sources x compartments), scaled
    pads: dict = field(default_factory=dict)  # im2col buffers by shape (see layered._padded)


class CompartmentScan:
    """``CompartmentState.update`` for one layer and batch, advanced a chunk of steps at a time.

    Elementwise on the whole layer and batch, one step at a time (the reset after a spike
    makes the voltage sequential); every operation nengo-loihi's parameters make a no-op is
    skipped (see :meth:`~fer_ros.snn.emulator.layered.LayeredEmulator._compartments`).
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
        self.vmin_floor = float(layer.vmin.min())
        self.plain = (
            layer.ku is not None
            and layer.kv is None
            and layer.ref is None
            and layer.vmax is None
            and not (layer.wrap_c or layer.wrap_u or layer.wrap_v)
        )

    def advance(self, q: np.ndarray | Sequence[np.ndarray]) -> None:
        """Run the next ``len(q)`` steps; ``q[k]`` (faces, n) is step k's synaptic input."""
        if self.plain:
            self._plain(q)
        else:
            self._general(q)
        self.t += len(q)

    def _plain(self, q: np.ndarray | Sequence[np.ndarray]) -> None:
        """Integrate-and-fire with a current carry and no wrap-around: the builder's neurons."""
        layer, c, v = self.layer, self.c, self.v
        ku, bias, vmin, vth = layer.ku, layer.bias, layer.vmin, layer.vth
        add, mul, trunc, maximum, greater, copyto = (
            np.add, np.multiply, np.trunc, np.maximum, np.greater, np.copyto
        )  # fmt: skip
        floor, lowest = layer.u_floor * CLIP_CHECK_STEPS, self.vmin_floor
        clip, budget = True, 0
        for k, qt in enumerate(q):
            if budget == 0:  # can any membrane reach vmin in the next CLIP_CHECK_STEPS?
                # (a spike resets to 0, so min(v, 0) bounds the state from below)
                clip = min(float(v.min()), 0.0) + floor < lowest
                budget = CLIP_CHECK_STEPS
            budget -= 1
            mul(c, ku, c)
            trunc(c, c)
            add(c, qt, c)
            add(v, c, v)
            if bias is not None:
                add(v, bias, v)  # (v + c) + bias: exact, every value is a small integer
            if clip:
                maximum(v, vmin, v)
            s = self.spikes[self.t + k]
            greater(v, vth, s)
            copyto(v, 0, where=s)
            if self.volts is not None:
                self.volts[self.t + k] = v

    def _general(self, q: np.ndarray | Sequence[np.ndarray]) -> None:
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
