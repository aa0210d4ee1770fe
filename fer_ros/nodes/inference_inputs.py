"""The inference node's two kinds of input, each turned into the batch its backend takes.

A CNN backend reads ``faces`` (crops, preprocessed here per the model card); a spiking
backend reads ``spike_trains`` from the spike encoder. The node picks one of these once,
at configure time, from the backend's input kind, and never branches on message types.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from fer_msgs.msg import FaceArray, SpikeTrainArray
from fer_ros.backends import InputKind
from fer_ros.core.model_card import ModelCard
from fer_ros.core.preprocessing import preprocess_crops, stack_crops
from fer_ros.core.spike_encoding import ConvertedTiming, unpack_spikes
from fer_ros.nodes.image_codec import image_to_gray


class InferenceInput(Protocol):
    msg_type: ClassVar[type]
    topic: ClassVar[str]

    def items(self, msg: Any) -> Sequence[Any]:
        """The faces of one message (each has ``face_id`` and ``roi``)."""

    def keep(self, msg: Any, items: Sequence[Any]) -> Sequence[Any]:
        """Make ``items`` (a subset of ``items(msg)``) the faces of ``msg``; returns them."""

    def batch(self, msg: Any) -> np.ndarray:
        """The backend's batch for ``msg``; ValueError names what is wrong with it."""


@dataclass(frozen=True)
class CropInput:
    card: ModelCard
    msg_type: ClassVar[type] = FaceArray
    topic: ClassVar[str] = "faces"

    def items(self, msg: FaceArray) -> Sequence[Any]:
        return msg.faces

    def keep(self, msg: FaceArray, items: Sequence[Any]) -> Sequence[Any]:
        if len(items) != len(msg.faces):
            msg.faces = list(items)
        return items

    def batch(self, msg: FaceArray) -> np.ndarray:
        card = self.card
        crops = stack_crops(
            [image_to_gray(face.crop) for face in msg.faces],
            card.input_height,
            card.input_width,
            card.model_id,
        )
        return preprocess_crops(crops, card.preprocessing, card.canny)


@dataclass(frozen=True)
class SpikeInput:
    """Spike trains, checked against what the spiking network was converted for."""

    card: ModelCard
    timesteps: int  # 0: any
    dt: float  # 0: any
    max_rate: float  # 0: any
    msg_type: ClassVar[type] = SpikeTrainArray
    topic: ClassVar[str] = "spike_trains"

    def items(self, msg: SpikeTrainArray) -> Sequence[Any]:
        return msg.trains

    def keep(self, msg: SpikeTrainArray, items: Sequence[Any]) -> Sequence[Any]:
        if len(items) != len(msg.trains):
            msg.trains = list(items)
        return items

    def batch(self, msg: SpikeTrainArray) -> np.ndarray:
        trains = []
        for train in msg.trains:
            self._check(train)
            shape = (train.timesteps, train.height, train.width)
            trains.append(unpack_spikes(bytes(train.spikes), shape))
        return np.stack(trains)

    def _check(self, train: Any) -> None:
        card, face = self.card, f"spike train of face {train.face_id}"
        if train.preprocessing != card.preprocessing:
            raise ValueError(
                f"{face} has {train.preprocessing} input, {card.model_id} was trained on "
                f"{card.preprocessing}: give spike_encoding the same model_card"
            )
        if (train.height, train.width) != (card.input_height, card.input_width):
            raise ValueError(
                f"{face} is {train.height}x{train.width}, {card.model_id} takes "
                f"{card.input_height}x{card.input_width}"
            )
        if train.timesteps == 0 or (self.timesteps and train.timesteps != self.timesteps):
            raise ValueError(
                f"{face} has {train.timesteps} timesteps, the network runs {self.timesteps}: "
                "give spike_encoding the same timesteps"
            )
        for name, got, want in (
            ("dt", train.dt, self.dt),
            ("max_rate", train.max_rate, self.max_rate),
        ):
            if want and not math.isclose(got, want, rel_tol=1e-4):
                raise ValueError(f"{face} has {name} {got:g}, the network was set up for {want:g}")


def inference_input(kind: InputKind, card: ModelCard, options: Any) -> InferenceInput:
    """The input a backend of ``kind`` reads; ``options`` are its ``<backend>.*`` values."""
    if kind is InputKind.CROPS:
        return CropInput(card)
    timing = ConvertedTiming.of_card(card).resolve(
        options.get("timesteps"), options.get("dt"), options.get("input_rate")
    )
    return SpikeInput(card, timesteps=timing.timesteps, dt=timing.dt, max_rate=timing.input_rate)
