"""Run a converted SNN over labelled crops and compare it with its CNN.

Faces are rate-encoded exactly as the ROS spike encoder does
(:func:`fer_ros.core.spike_encoding.encode`, deterministic ``rate`` coding) and presented one
at a time to the nengo-loihi emulator through :class:`~fer_ros.snn.runner.SnnRunner`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fer_ros.core.cnn_spec import CnnSpec
from fer_ros.core.spike_encoding import ConvertedTiming, EncodingSettings, encode
from fer_ros.snn.activity import Activity, ActivityCounter
from fer_ros.snn.energy import EnergyBreakdown, LoihiEnergyModel
from fer_ros.snn.params import SnnParams
from fer_ros.snn.reference import cnn_logits
from fer_ros.snn.runner import SnnRunner


@dataclass(frozen=True)
class Evaluation:
    """SNN figures over ``n`` crops at one number of timesteps."""

    n: int
    timesteps: int
    input_rate: float
    agreement: float  # SNN argmax == CNN argmax
    accuracy: float  # SNN argmax == label
    cnn_accuracy: float
    ms_per_face: float  # emulator wall time per presentation (incl. reset)
    layer_names: tuple[str, ...]  # "input" then the on-chip layers
    spikes_per_layer: tuple[float, ...]  # mean per face, same order
    synaptic_ops: float  # mean per face
    energy: EnergyBreakdown  # modelled, mean per face

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly figures (for model cards and benchmark output)."""
        return {
            "n": self.n,
            "timesteps": self.timesteps,
            "input_rate_hz": self.input_rate,
            "agreement_with_cnn": round(self.agreement, 4),
            "accuracy": round(self.accuracy, 4),
            "cnn_accuracy": round(self.cnn_accuracy, 4),
            "emulator_ms_per_face": round(self.ms_per_face, 2),
            "spikes_per_face": dict(
                zip(self.layer_names, [round(s, 1) for s in self.spikes_per_layer], strict=True)
            ),
            "synaptic_ops_per_face": round(self.synaptic_ops, 1),
            "modelled_energy_uj_per_face": round(self.energy.total * 1e6, 3),
            "modelled_dynamic_energy_uj_per_face": round(self.energy.dynamic * 1e6, 3),
            "modelled_chip_time_us_per_face": round(self.energy.seconds * 1e6, 2),
        }


def _mean_breakdown(parts: list[EnergyBreakdown]) -> EnergyBreakdown:
    n = max(len(parts), 1)
    return EnergyBreakdown(
        synaptic=sum(p.synaptic for p in parts) / n,
        neuron_updates=sum(p.neuron_updates for p in parts) / n,
        routing=sum(p.routing for p in parts) / n,
        static=sum(p.static for p in parts) / n,
        seconds=sum(p.seconds for p in parts) / n,
    )


def evaluate(
    params: SnnParams,
    spec: CnnSpec,
    crops: np.ndarray,
    labels: np.ndarray,
    timesteps: int | None = None,
    input_rate: float | None = None,
    runner: SnnRunner | None = None,
    energy_model: LoihiEnergyModel | None = None,
) -> Evaluation:
    """Present every crop (float32 (n, 1, H, W)) and compare with the CNN.

    A ``runner`` may be passed to reuse one simulator across calls (its input rate wins).
    """
    steps = ConvertedTiming.of_params(params).resolve(timesteps).timesteps
    own = runner is None
    runner = runner or SnnRunner(params, target="sim", input_rate=input_rate)
    rate = runner.input_rate
    counter = ActivityCounter(params)
    model = energy_model or LoihiEnergyModel()
    settings = EncodingSettings("rate", steps, params.dt, rate)
    reference = cnn_logits(spec, crops).argmax(axis=1)
    predictions = np.zeros(len(crops), np.int64)
    activities: list[Activity] = []
    try:
        start = time.perf_counter()
        for i, crop in enumerate(crops):
            shown = runner.run(encode(crop[0], settings))
            predictions[i] = int(np.argmax(shown.readout()))
            activities.append(counter.count(shown.input_counts, shown.layer_counts, steps))
        elapsed = time.perf_counter() - start
    finally:
        if own:
            runner.close()
    n = max(len(crops), 1)
    names = ("input", *params.layer_names)
    spikes = [sum(a.input_spikes for a in activities) / n]
    for j in range(len(params.layers)):
        spikes.append(sum(a.layers[j].spikes for a in activities) / n)
    return Evaluation(
        n=len(crops),
        timesteps=steps,
        input_rate=rate,
        agreement=float(np.mean(predictions == reference)),
        accuracy=float(np.mean(predictions == labels)),
        cnn_accuracy=float(np.mean(reference == labels)),
        ms_per_face=1e3 * elapsed / n,
        layer_names=names,
        spikes_per_layer=tuple(float(s) for s in spikes),
        synaptic_ops=sum(a.synaptic_ops for a in activities) / n,
        energy=_mean_breakdown([model.breakdown(a) for a in activities]),
    )
