"""One row of the comparison: a profile, a Loihi ablation point or a peer model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fer_ros.compare.accuracy import CardAccuracy, Measured
from fer_ros.compare.loihi import SpikeFigures


@dataclass(frozen=True)
class GraphFigures:
    """The whole graph (camera -> detection -> [encoding] -> inference) on a video."""

    seconds: float
    results_per_s: float  # ExpressionArray messages per second, sustained
    labelled_per_s: float  # of those, frames with at least one face
    e2e_p50_ms: float
    e2e_p95_ms: float
    source: str


@dataclass
class Row:
    kind: str  # "profile", "ablation" or "peer"
    name: str
    accelerator: str = "-"
    model_id: str = "-"
    preprocessing: str = "-"
    backend: str = "-"
    runtime: str = "-"
    export: str = "-"
    requested: str = "-"
    device: str = "-"  # the device that actually ran
    fallback: bool = False
    faces: int = 0
    accuracy: Measured | None = None
    card: CardAccuracy | None = None
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    latency_n: int = 0
    latency_what: str = "host wall time per face"
    power_w: float = math.nan
    energy_j: float = math.nan  # per face
    source: str = "-"  # MEASURED / MODELLED / UNAVAILABLE
    figure_model: str = "-"
    valid: str = "-"  # does the figure describe the device that ran
    chip_us: float = math.nan  # Loihi: modelled chip time per face
    cores: int = 0
    timesteps: int = 0
    spikes: SpikeFigures | None = None
    graph: GraphFigures | None = None
    power_model_key: str = ""  # the profile's power.model (published device figures)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # how long this row took to measure

    @property
    def ok(self) -> bool:
        return self.accuracy is not None or not math.isnan(self.p50_ms)

    @property
    def plottable_energy(self) -> bool:
        """A finite energy figure that describes the hardware that ran."""
        return math.isfinite(self.energy_j) and self.valid.startswith("yes")
