"""Off-chip rate coding of face crops into spike trains (as in Smith et al. 2024).

Intensities in [0, 1] become firing rates up to ``max_rate`` Hz over ``timesteps``
steps of ``dt`` seconds. ``rate`` coding is deterministic (an integrate-and-fire
accumulator per pixel); ``poisson`` draws a Bernoulli spike per step with p = rate*dt
from a seeded generator, so the same seed and face give the same train.

Timesteps, dt and input rate of 0 mean "as the SNN was converted" wherever they are set
(the spike encoding node, the loihi backend, evaluations): :meth:`ConvertedTiming.resolve`
is the one place that reads them so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ENCODINGS = ("rate", "poisson")


@dataclass(frozen=True)
class EncodingSettings:
    encoding: str = "rate"
    timesteps: int = 30
    dt: float = 0.001  # seconds per step
    max_rate: float = 250.0  # Hz of a fully bright pixel; rate*dt must stay <= 1

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; use one of {ENCODINGS}")
        if self.timesteps < 1:
            raise ValueError("timesteps must be >= 1")
        if not 0.0 < self.max_rate * self.dt <= 1.0:
            raise ValueError("max_rate * dt must be in (0, 1]: at most one spike per step")


def encode(
    intensities: np.ndarray, settings: EncodingSettings, rng: np.random.Generator | None = None
) -> np.ndarray:
    """float (..., H, W) in [0, 1] -> bool (timesteps, ..., H, W) spikes."""
    p = np.clip(intensities, 0.0, 1.0).astype(np.float64) * (settings.max_rate * settings.dt)
    if settings.encoding == "poisson":
        if rng is None:
            raise ValueError("poisson encoding needs a seeded numpy Generator")
        return rng.random((settings.timesteps, *p.shape)) < p
    # Deterministic accumulator: starting at 0.5 spreads the first spike of weak pixels
    # evenly instead of bunching all of them at the end of the window.
    steps = np.arange(1, settings.timesteps + 1).reshape((-1,) + (1,) * p.ndim)
    counts = np.floor(steps * p + 0.5)
    previous = np.floor((steps - 1) * p + 0.5)
    return counts > previous


def pack_spikes(spikes: np.ndarray) -> bytes:
    """bool tensor -> bytes, numpy.packbits in C order with big bit order."""
    return np.packbits(spikes.astype(bool), axis=None, bitorder="big").tobytes()


def unpack_spikes(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`pack_spikes`; raises ValueError when the size does not match."""
    count = int(np.prod(shape))
    if len(data) != (count + 7) // 8:
        raise ValueError(f"{len(data)} packed bytes cannot hold a spike tensor of shape {shape}")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=count, bitorder="big")
    return bits.reshape(shape).astype(bool)


@dataclass(frozen=True)
class ConvertedTiming:
    """What an SNN was converted for: steps per face, seconds per step and the spike
    encoder's max rate (Hz); 0 where unknown."""

    timesteps: int = 0
    dt: float = 0.0
    input_rate: float = 0.0

    @classmethod
    def of_card(cls, card: Any) -> ConvertedTiming:
        """From a model card's ``snn`` section (zeros without one)."""
        snn = card.extra.get("snn", {})
        return cls(
            int(snn.get("timesteps", 0)),
            float(snn.get("dt", 0.0)),
            float(snn.get("input_rate_hz", 0.0)),
        )

    @classmethod
    def of_params(cls, params: Any) -> ConvertedTiming:
        """From an SNN parameter file (:class:`fer_ros.snn.params.SnnParams`)."""
        return cls(int(params.timesteps), float(params.dt), float(params.input_rate))

    def resolve(self, timesteps: Any = 0, dt: Any = 0.0, input_rate: Any = 0.0) -> ConvertedTiming:
        """The values asked for, where each 0 (or None, or empty) means as converted."""
        return ConvertedTiming(
            int(timesteps or self.timesteps),
            float(dt or self.dt),
            float(input_rate or self.input_rate),
        )


def converted_settings(
    card: Any, encoding: str = "rate", timesteps: int = 0, dt: float = 0.0, max_rate: float = 0.0
) -> EncodingSettings:
    """Encoder settings for ``card``'s converted SNN: each 0 defers to what the SNN was
    converted for (its card's ``snn`` section), so the spikes match the network."""
    timing = ConvertedTiming.of_card(card).resolve(timesteps, dt, max_rate)
    if not (timing.timesteps and timing.dt and timing.input_rate):
        raise ValueError(
            f"{card.model_id} has no converted SNN section: set timesteps, dt and max_rate"
        )
    return EncodingSettings(
        encoding=encoding, timesteps=timing.timesteps, dt=timing.dt, max_rate=timing.input_rate
    )
