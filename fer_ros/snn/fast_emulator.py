"""Vectorised spike delivery for nengo-loihi's emulator (same integers, far fewer Python calls).

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
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Rows:
    """One synapse's weights as CSR rows indexed by ``axon * n_atoms + atom``."""

    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    n_atoms: int
    width: int  # compartments in the target block

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Summed weights (width,) of all ``rows`` (duplicates count twice)."""
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        total = int(lens.sum())
        if total == 0:
            return np.zeros(self.width)
        # flat positions of every entry of every row, without a Python loop
        offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens)
        idx = np.arange(total) + offsets
        return np.bincount(self.cols[idx], weights=self.vals[idx], minlength=self.width)


def _synapse_rows(synapse: object, width: int) -> _Rows:
    n_atoms = max(w.shape[0] for w in synapse.weights)  # type: ignore[attr-defined]
    n_rows = synapse.n_axons * n_atoms  # type: ignore[attr-defined]
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lens = np.zeros(n_rows, np.int64)
    for axon in range(synapse.n_axons):  # type: ignore[attr-defined]
        base = synapse.axon_compartment_base(axon)  # type: ignore[attr-defined]
        if base is None:
            continue
        for atom in range(synapse.axon_populations(axon)):  # type: ignore[attr-defined]
            w, i = synapse.axon_weights_indices(axon, atom=atom)  # type: ignore[attr-defined]
            lens[axon * n_atoms + atom] = len(w)
            cols.append(base + np.asarray(i, np.int64))
            vals.append(np.asarray(w, np.float64))
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return _Rows(
        indptr=indptr,
        cols=np.concatenate(cols) if cols else np.zeros(0, np.int64),
        vals=np.concatenate(vals) if vals else np.zeros(0),
        n_atoms=n_atoms,
        width=width,
    )


def _axon_rows(axon: object, n_source: int, rows: _Rows) -> np.ndarray:
    """Row of the target synapse hit by each source compartment, or -1."""
    idx = np.arange(n_source)
    axon_ids = np.asarray(axon.map_axon(idx), np.int64)  # type: ignore[attr-defined]
    atoms = np.asarray(axon.map_atoms(idx), np.int64)  # type: ignore[attr-defined]
    out = axon_ids * rows.n_atoms + atoms
    out[axon_ids < 0] = -1
    return out


class FastSpikeDelivery:
    """Replacement for ``SynapseState.inject_current`` and ``update_input``."""

    def __init__(self, emulator: object) -> None:
        synapses = emulator.synapses  # type: ignore[attr-defined]
        self._dtype = synapses.dtype
        self._slices = dict(synapses.slices)  # synapse -> slice of its block
        self._rows = {s: _synapse_rows(s, sl.stop - sl.start) for s, sl in self._slices.items()}
        axon_state = emulator.axons  # type: ignore[attr-defined]
        self._axons = [
            (sl, _axon_rows(a, sl.stop - sl.start, self._rows[a.target]), a.target)
            for a, sl in axon_state.slices.items()
        ]
        self._inputs = [
            (
                spike_input,
                [
                    (_axon_rows(a, spike_input.n_neurons, self._rows[a.target]), a.target)
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
