"""What an inference cost: the energy figure of one backend call, and the Telemetry message.

A spiking backend reports its own (modelled or measured) energy; a CNN backend's figure
comes from the power source chosen at configure time (a sensor read around the call, a
published device model times the busy time, or nothing).
"""

from __future__ import annotations

from typing import Any

from fer_msgs.msg import Telemetry
from fer_ros.backends import InferenceBackend
from fer_ros.backends.base import InferenceResult
from fer_ros.backends.metered import MeteredCall
from fer_ros.core.figures import EnergyFigure, FigureSource

__all__ = ["MeteredCall", "fill_energy", "telemetry_message"]  # MeteredCall for the node

NAN = float("nan")


def telemetry_message(
    header: Any,
    accelerator: str,
    backend_name: str,
    backend: InferenceBackend,
    model_id: str,
    result: InferenceResult,
    energy: EnergyFigure | None,
) -> Telemetry:
    """Telemetry with device, energy and spike figures; the caller adds timings and rates."""
    telemetry = Telemetry(
        header=header,
        accelerator=accelerator,
        backend=backend_name,
        runtime=backend.runtime,
        device=backend.device,
        fallback=backend.fallback,
        model_id=model_id,
        faces=len(result.scores),
    )
    fill_energy(telemetry, energy)
    stats = result.spike_stats
    if stats is not None:
        telemetry.spikes = stats.spikes
        telemetry.synaptic_ops = stats.synaptic_ops
        telemetry.neuron_updates = stats.neuron_updates
        telemetry.layer_names = list(stats.layer_names)
        telemetry.layer_spikes = [int(s) for s in stats.layer_spikes]
        telemetry.layer_sparsity = [float(s) for s in stats.layer_sparsity()]
    return telemetry


def fill_energy(telemetry: Telemetry, energy: EnergyFigure | None) -> None:
    """Copy an energy figure with its provenance; no figure stays NaN and UNAVAILABLE."""
    if energy is None or energy.source is FigureSource.UNAVAILABLE:
        telemetry.power_w = telemetry.energy_mj = NAN
        telemetry.figure_source = Telemetry.SOURCE_UNAVAILABLE
        telemetry.figure_model = energy.model if energy else "none"
        return
    telemetry.power_w = energy.power_w
    telemetry.energy_mj = energy.energy_j * 1000.0
    telemetry.figure_source = int(energy.source)
    telemetry.figure_model = energy.model
