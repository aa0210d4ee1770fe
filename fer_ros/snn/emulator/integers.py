"""Loihi 1's integer arithmetic as nengo-loihi 1.1 emulates and discretises it.

Every emulator in this project uses these: :mod:`.layered` (numpy over whole layers),
:mod:`fer_ros.training.loihi_aware.simulate` (torch, in the training loop) and the checks
that the numbers still are nengo-loihi's (:func:`~fer_ros.snn.emulator.mirror.supports`).

* overflow: the synaptic input wraps at ``Q_BITS`` and current (and current + bias) at
  ``U_BITS`` bits plus sign (nengo-loihi's ``overflow_signed``): :func:`wrap_int` on
  integer arrays, :func:`wrap_float` in place on integers held in float arrays;
* decays: ``decay_int``'s fixed point has ``DECAY_BITS`` fractional bits;
* discretisation: :func:`discretise_block` is nengo-loihi's ``discretize_compartment`` and
  ``discretize_weights`` for one block of the builder's non-decaying IF neurons.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

Q_BITS = 21  # synaptic input: 21 bits plus sign (nengo_loihi.builder.discretize.Q_BITS)
U_BITS = 23  # current and current + bias: 23 bits plus sign (U_BITS)
DECAY_BITS = 12  # decay_int's fixed point: x * (4096 - offset - decay) >> 12
VTH_MAX = (2**17 - 1) * 2**6  # largest threshold (nengo_loihi.builder.discretize)
BIAS_MAX = (2**12 - 1) * 2**7  # largest bias mantissa times its largest exponent
CURRENT_SCALE_1_1 = 1.0002437674  # current_scale() of nengo-loihi 1.1, without it installed


def wrap_int(x: Any, bits: int) -> Any:
    """``overflow_signed`` on an integer array (numpy or torch): ``bits`` bits plus sign."""
    lim = 2**bits
    return ((x + lim) & (2 * lim - 1)) - lim


def wrap_float(x: np.ndarray, bits: int) -> None:
    """In place: integers held in a float array wrapped to ``bits`` bits plus sign, exact."""
    half = float(2**bits)
    span = 2.0 * half
    tmp = x + half
    np.multiply(tmp, 1.0 / span, out=tmp)
    np.floor(tmp, out=tmp)
    np.multiply(tmp, span, out=tmp)
    np.subtract(x, tmp, out=x)


def wrapped(x: np.ndarray, bits: int) -> bool:
    """:func:`wrap_float` in place; True if any value changed (an overflow happened)."""
    before = x.copy()
    wrap_float(x, bits)
    return not np.array_equal(before, x)


_CURRENT_SCALE: list[float] = []


def current_scale() -> float:
    """``1 / u_infactor`` of a current that lasts one step (decay_u 4094 after
    discretisation), from nengo-loihi's own ``decay_magnitude``: 1.000244."""
    if not _CURRENT_SCALE:
        try:
            from nengo_loihi.builder.discretize import decay_magnitude  # optional dependency

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mag = decay_magnitude(np.array([4094.0]), x0=2097152, offset=1)
            _CURRENT_SCALE.append(float(mag[0]))
        except ImportError:
            _CURRENT_SCALE.append(CURRENT_SCALE_1_1)
    return _CURRENT_SCALE[0]


def discretise_block(w: np.ndarray, b: np.ndarray, vth: float, vmin: float) -> tuple:
    """nengo-loihi 1.1 ``discretize_compartment`` + ``discretize_weights`` for a block of
    non-decaying (synapse=None) IF neurons with one synapse; float64 SNN units in.

    Returns integer-valued (weights, biases, threshold, vmin) in the block's voltage units.
    """
    w_max = float(np.abs(w).max())
    mixed = bool((w > 0).any() and (w < 0).any())
    shift = 1 if mixed else 0
    m = 2 ** (8 - shift) - 1
    if w_max <= 1e-8:
        raise ValueError("a block without weights is not supported here")
    w_scale = 255.0 / w_max
    for w_exp in range(0, -8, -1):
        v_scale = w_scale * 2.0 ** (6 + w_exp) * current_scale()
        vth_r = np.round(vth * v_scale)
        bias_r = np.round(b * v_scale)
        if vth_r <= VTH_MAX and np.all(np.abs(bias_r) <= BIAS_MAX):
            break
    else:
        raise ValueError("no weight exponent fits")
    vth_int = np.round(vth_r / 2**6) * 2**6
    r = np.maximum(np.abs(bias_r) / (2**12 - 1), 1)
    bexp = np.ceil(np.log2(r))
    bias_int = np.round(bias_r / 2**bexp) * 2**bexp
    q = np.clip(np.round(w * w_scale / 2.0**shift), -m, m)
    s2 = shift + w_exp
    if s2 < 0:
        q = np.clip(np.round(q * 2.0**s2) / 2.0**s2, -m, m)
        q = np.floor(q * 2.0**s2)  # the right shift
        w_int = q * 2**6
    else:
        w_int = q * 2.0**s2 * 2**6
    vmin_s = v_scale * vmin
    vmine = np.clip(np.round(np.log2(-vmin_s + 1)), 0, 2**5 - 1)
    return w_int, bias_int, vth_int, -(2.0**vmine) + 1
