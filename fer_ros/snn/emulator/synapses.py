"""nengo-loihi's built synapses as CSR rows and COO entries, and the blocks of a layer.

Both fast paths read the integer weights off the built model here: :mod:`.delivery`
sums the rows of a step's spikes, :mod:`.layered` turns them into one matrix per layer.
A synapse's row ``axon * n_atoms + atom`` holds the weights one spike on that axon (and
population atom) adds, with their compartment indices in the target block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SynapseRows:
    """One synapse's weights as CSR rows indexed by ``axon * n_atoms + atom``."""

    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    n_atoms: int
    width: int  # compartments in the target block

    def entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``cols``/``vals`` of every entry of ``rows`` in order, and each
        row's length (a row given twice appears twice), without a Python loop."""
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        total = int(lens.sum())
        offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens)
        return np.arange(total) + offsets, lens

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Summed weights (width,) of all ``rows`` (duplicates count twice)."""
        idx, _ = self.entries(rows)
        if idx.size == 0:
            return np.zeros(self.width)
        return np.bincount(self.cols[idx], weights=self.vals[idx], minlength=self.width)


def synapse_rows(synapse: object, width: int) -> SynapseRows:
    """The CSR rows of a built ``nengo_loihi`` synapse whose block has ``width`` compartments."""
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
    return SynapseRows(
        indptr=indptr,
        cols=np.concatenate(cols) if cols else np.zeros(0, np.int64),
        vals=np.concatenate(vals) if vals else np.zeros(0),
        n_atoms=n_atoms,
        width=width,
    )


def axon_rows(axon: object, n_source: int, rows: SynapseRows) -> np.ndarray:
    """Row of the target synapse hit by each source compartment, or -1."""
    idx = np.arange(n_source)
    axon_ids = np.asarray(axon.map_axon(idx), np.int64)  # type: ignore[attr-defined]
    atoms = np.asarray(axon.map_atoms(idx), np.int64)  # type: ignore[attr-defined]
    out = axon_ids * rows.n_atoms + atoms
    out[axon_ids < 0] = -1
    return out


def ensemble_blocks(sim: object, ens: object) -> list:
    """The blocks (cores) a built ``nengo_loihi.Simulator`` made of ensemble ``ens``."""
    blocks = sim.model.objs[ens]["out"]  # type: ignore[attr-defined]
    return list(blocks) if isinstance(blocks, (list, tuple)) else [blocks]


def probe_blocks(sim: object, probe: object) -> tuple[list, np.ndarray]:
    """The probe's blocks and the nengo neuron index of each of their compartments."""
    loihi_probe = sim.model.objs[probe]["out"]  # type: ignore[attr-defined]
    blocks = list(loihi_probe.target)
    n = sum(b.n_neurons for b in blocks)
    ids = np.arange(n)
    if loihi_probe.reindexing is not None:  # output[..., reindexing] puts ids in order
        ids = np.empty(n, np.int64)
        ids[np.asarray(loihi_probe.reindexing)] = np.arange(n)
    return blocks, ids


@dataclass
class Source:
    """Compartments that send spikes into a layer: the chip input or one block."""

    axons: list
    internal: np.ndarray  # index in the sending layer's internal order, per compartment


def coo_entries(
    sources: Sequence[Source], targets: dict, check: set
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO (source internal, target internal, weight) of all synapses from ``sources``.

    ``targets`` maps each synapse of the layer to (compartments in its block, internal
    index of each). ``check`` collects synapses already checked for repeated indices.
    """
    rows_out, cols_out, vals_out = [], [], []
    cache: dict = {}
    for source in sources:
        for axon in source.axons:
            synapse = axon.target
            if synapse not in targets:
                raise ValueError(f"axon {axon.label} does not feed the next layer")
            width, internal = targets[synapse]
            rows = cache.get(synapse)
            if rows is None:
                rows = cache[synapse] = synapse_rows(synapse, width)
                if synapse not in check:
                    check.add(synapse)
                    lens = np.diff(rows.indptr)
                    keys = np.repeat(np.arange(len(lens)), lens) * width + rows.cols
                    if np.unique(keys).size != keys.size:
                        # nengo-loihi's `input[base + indices] += w` would add such a
                        # repeated index once, a matrix product twice
                        raise ValueError(f"synapse {synapse} repeats a compartment index")
            row_map = axon_rows(axon, len(source.internal), rows)
            used = row_map >= 0
            flat, lens = rows.entries(row_map[used])
            if flat.size == 0:
                continue
            rows_out.append(np.repeat(source.internal[used], lens))
            cols_out.append(internal[rows.cols[flat]])
            vals_out.append(rows.vals[flat])
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out)
