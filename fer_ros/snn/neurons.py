"""The on-chip neuron: integrate-and-fire whose membrane may go below zero.

nengo's ``SpikingRectifiedLinear`` on Loihi clamps the membrane at 0 (``vmin = 0``), so
negative input that arrives while the membrane is empty is lost. With sparse, binary
input (Canny edges) that rarely matters; with dense grey-level input the per-step input
fluctuates around its mean and the clamp rectifies the fluctuations, which makes neurons
with a zero or negative mean drive fire (SNN/CNN agreement fell from ~0.92 to ~0.76 on
the grayscale model). Letting the membrane integrate down to ``-64`` thresholds
(Loihi's ``vmin`` register, 24-bit signed) makes the neuron count
``floor(max(integrated input, 0))``, i.e. ReLU of the *mean* input, as the converted CNN
assumes. Lava's ``LIF`` does the same (its floor is -2**23), so the NetX export matches.
"""

from __future__ import annotations

import nengo

VMIN_THRESHOLDS = 64  # 64 * the largest discretised threshold (2**17) still fits 24 bits


class IntegratingRectifiedLinear(nengo.SpikingRectifiedLinear):
    """``SpikingRectifiedLinear`` with its Loihi membrane floor at ``-64`` thresholds.

    The negative membrane is state that survives input-free steps, so a network of these
    neurons must be reset exactly between presentations (the emulator's state reset), not
    by letting it settle; :class:`~fer_ros.snn.runner.SnnRunner` uses nengo's clamped
    ``SpikingRectifiedLinear`` when it has to settle (Loihi hardware).
    """


def _register() -> None:
    from nengo_loihi.builder import Builder

    if IntegratingRectifiedLinear in Builder.builders:
        return

    @Builder.register(IntegratingRectifiedLinear)
    def build_integrating_relu(
        model: object, neuron_type: object, neurons: object, block: object
    ) -> None:
        dt = model.dt  # type: ignore[attr-defined]
        block.compartment.configure_relu(vth=1.0 / dt, dt=dt)  # type: ignore[attr-defined]
        # voltages are in units where the threshold is 1/dt until discretisation
        block.compartment.vmin = -VMIN_THRESHOLDS / dt  # type: ignore[attr-defined]


_register()
