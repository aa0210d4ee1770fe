"""Vectorised spike delivery for nengo-loihi's stepping emulator (same integers, far fewer calls).

nengo-loihi 1.1's emulator delivers every spike with a Python loop: one ``Spike`` object
and one fancy-indexed add per spike and target synapse. For a conv net that is tens of
thousands of Python calls per face and most of the emulator's time. Here each target
synapse's weights are laid out once as a sparse matrix (row = axon * atoms + atom,
column = compartment in the target block); each step the rows of all spikes are gathered
and summed with one ``bincount`` per synapse.

Only spike delivery changes: compartment dynamics, discretisation, overflow checks and
probes remain nengo-loihi's. Sums of the same integer weights are exact in float64, so
the input currents are bit-identical to the stock emulator (``test_snn_runner`` checks
spikes and voltages against it). Networks with on-chip learning are left unaccelerated.
"""

from __future__ import annotations

import logging

import numpy as np

from fer_ros.snn.emulator.synapses import axon_rows, synapse_rows

log = logging.getLogger(__name__)


class FastSpikeDelivery:
    """Replacement for ``SynapseState.inject_current`` and ``update_input``."""

    def __init__(self, emulator: object) -> None:
        synapses = emulator.synapses  # type: ignore[attr-defined]
        self._dtype = synapses.dtype
        self._slices = dict(synapses.slices)  # synapse -> slice of its block
        self._rows = {s: synapse_rows(s, sl.stop - sl.start) for s, sl in self._slices.items()}
        axon_state = emulator.axons  # type: ignore[attr-defined]
        self._axons = [
            (sl, axon_rows(a, sl.stop - sl.start, self._rows[a.target]), a.target)
            for a, sl in axon_state.slices.items()
        ]
        self._inputs = [
            (
                spike_input,
                [
                    (axon_rows(a, spike_input.n_neurons, self._rows[a.target]), a.target)
                    for a in spike_input.axons
                ],
            )
            for spike_input in emulator.inputs  # type: ignore[attr-defined]
        ]
        self._pending: dict[object, list[np.ndarray]] = {s: [] for s in self._slices}

    def inject_current(
        self, t: int, spike_inputs: object, all_axons: object, spiked: np.ndarray
    ) -> None:
        for pending in self._pending.values():
            pending.clear()
        if t >= 2:  # as in nengo-loihi: input spikes take one step to arrive
            for spike_input, axons in self._inputs:
                idxs = np.asarray(spike_input.spike_idxs(t - 1), np.int64)  # type: ignore[attr-defined]
                if idxs.size:
                    for row_map, target in axons:
                        self._add(target, row_map[idxs])
        for sl, row_map, target in self._axons:
            idxs = np.flatnonzero(spiked[sl])
            if idxs.size:
                self._add(target, row_map[idxs])

    def _add(self, target: object, rows: np.ndarray) -> None:
        rows = rows[rows >= 0]
        if rows.size:
            self._pending[target].append(rows)

    def update_input(self, input: np.ndarray) -> None:
        for synapse, pending in self._pending.items():
            if not pending:
                continue
            summed = self._rows[synapse].gather(np.concatenate(pending))
            sl = self._slices[synapse]
            if self._dtype == np.int32:
                summed = np.rint(summed)  # exact integer sums held in float64
            input[0, sl] += summed.astype(self._dtype)


def accelerate(emulator: object) -> bool:
    """Swap the emulator's spike delivery for :class:`FastSpikeDelivery`; False if unsafe."""
    synapses = emulator.synapses  # type: ignore[attr-defined]
    if any(s.learning for s in synapses.slices):
        log.info("on-chip learning present: keeping nengo-loihi's spike delivery")
        return False
    if synapses.dtype not in (np.int32, np.float32):
        return False
    fast = FastSpikeDelivery(emulator)
    synapses.inject_current = fast.inject_current
    synapses.update_input = fast.update_input
    return True
