"""Which built networks the layered emulator mirrors: :func:`supports` names what it lacks.

:class:`~fer_ros.snn.emulator.layered.LayeredEmulator` reproduces nengo-loihi 1.1's
arithmetic for a feedforward chain of blocks fed by one spike input, with plain probes.
For anything else (another nengo-loihi version, recurrence or skip connections, learning,
noise, several chip inputs, filtered, sliced or transformed probes) :func:`supports`
returns the reason, and :class:`~fer_ros.snn.runner.SnnRunner` steps nengo-loihi instead.
"""

from __future__ import annotations

import numpy as np

from fer_ros.snn.emulator.integers import Q_BITS, U_BITS
from fer_ros.snn.emulator.synapses import ensemble_blocks

MIRRORED_VERSION = "1.1."  # the nengo-loihi whose emulator arithmetic is mirrored here


def _mirrored_version() -> str | None:
    import nengo_loihi

    version = str(nengo_loihi.__version__)
    if not version.startswith(MIRRORED_VERSION):
        return f"nengo-loihi {version} (the layered emulator mirrors {MIRRORED_VERSION}x)"
    return None


def _levels(emulator: object) -> tuple[list[list], str | None]:
    """Blocks grouped by distance from the chip input; a reason if they are not a chain."""
    synapse_block = emulator.synapses.block_map  # type: ignore[attr-defined]
    blocks = list(emulator.block_info.blocks)  # type: ignore[attr-defined]
    level: dict[object, int] = {}
    frontier: list = []
    for spike_input in emulator.inputs:  # type: ignore[attr-defined]
        for axon in spike_input.axons:
            block = synapse_block[axon.target]
            if block not in level:
                level[block] = 0
                frontier.append(block)
    depth = 0
    while frontier:
        nxt: list = []
        for block in frontier:
            for axon in block.axons:
                target = synapse_block[axon.target]
                known = level.get(target)
                if known is None:
                    level[target] = depth + 1
                    nxt.append(target)
                elif known != depth + 1:
                    return [], f"recurrent or skip connection {block.label} -> {target.label}"
        frontier = nxt
        depth += 1
    missing = [b.label for b in blocks if b not in level]
    if missing:
        return [], f"blocks not fed by the chip input: {missing[:3]}"
    # a block fed by the input and by a block would have two levels: check every synapse
    for block in blocks:
        for axon in block.axons:
            if level[synapse_block[axon.target]] != level[block] + 1:
                return [], f"skip connection {block.label}"
    for spike_input in emulator.inputs:  # type: ignore[attr-defined]
        for axon in spike_input.axons:
            if level[synapse_block[axon.target]] != 0:
                return [], "the chip input feeds a block past the first layer"
    grouped: list[list] = [[] for _ in range(depth)]
    for block in blocks:
        grouped[level[block]].append(block)
    return grouped, None


def _plain_probe(sim: object, probe: object) -> str | None:
    loihi_probe = sim.model.objs[probe]["out"]  # type: ignore[attr-defined]
    if loihi_probe.synapse is not None:
        return f"filtered probe {probe}"
    if any(s != slice(None) for s in loihi_probe.slice):
        return f"sliced probe {probe}"
    if any(w is not None and np.ndim(w) > 0 for w in loihi_probe.weights):
        return f"probe with a transform {probe}"
    return None


def supports(sim: object, net: object | None = None) -> str | None:
    """Why :class:`~.layered.LayeredEmulator` cannot mirror ``sim`` (and ``net``); None: it can.

    ``sim`` is a built ``nengo_loihi.Simulator``; ``net`` the
    :class:`~fer_ros.snn.builder.SnnNetwork` it was built from (its layers and probes are
    then checked too).
    """
    sims = getattr(sim, "sims", {})
    if "emulator" not in sims:
        return "not nengo-loihi's emulator target"
    reason = _mirrored_version()
    if reason:
        return reason
    from nengo_loihi.builder import discretize

    if (discretize.Q_BITS, discretize.U_BITS) != (Q_BITS, U_BITS):
        return "nengo-loihi's overflow widths differ from the mirrored ones"
    emulator = sims["emulator"]
    if emulator.block_info.dtype != np.int32:
        return "the model is not discretised (floating-point emulator)"
    if emulator.compartment.strict:
        return "strict overflow checking"
    if any(s.learning for s in emulator.synapses.slices):
        return "on-chip learning"
    if any(np.any(b.compartment.enable_noise) for b in emulator.block_info.blocks):
        return "compartment noise"
    if len(emulator.inputs) != 1:
        return f"{len(emulator.inputs)} chip inputs (one spike input expected)"
    from nengo_loihi.inputs import SpikeInput

    if not isinstance(emulator.inputs[0], SpikeInput):
        return f"chip input {type(emulator.inputs[0]).__name__}"
    levels, reason = _levels(emulator)
    if reason:
        return reason
    if net is None:
        return None
    ensembles = list(net.ensembles)  # type: ignore[attr-defined]
    if len(levels) != len(ensembles):
        return f"{len(levels)} block levels for {len(ensembles)} layers"
    for ens, blocks in zip(ensembles, levels, strict=True):
        if set(ensemble_blocks(sim, ens)) != set(blocks):
            return f"layer {ens.label}: its blocks are not one level of the chain"
    probes = list(net.spike_probes)  # type: ignore[attr-defined]
    if len(probes) != len(ensembles):
        return "not one spike probe per layer"
    for probe, ens in zip(probes, ensembles, strict=True):
        if getattr(probe.obj, "ensemble", None) is not ens or probe.attr not in (
            "output",
            "spikes",
        ):
            return f"spike probe {probe} is not its layer's neurons"
    voltage = net.output_voltage_probe  # type: ignore[attr-defined]
    if getattr(voltage.obj, "ensemble", None) is not ensembles[-1]:
        return "the voltage probe is not on the output layer"
    for probe in [*probes, voltage]:
        reason = _plain_probe(sim, probe)
        if reason:
            return reason
    if emulator.inputs[0].n_neurons != net.buffer.n_inputs:  # type: ignore[attr-defined]
        return "the chip input is not the input relay"
    return None
