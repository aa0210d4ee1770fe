"""Spike encoding node: turns face crops into spike trains off chip.

Subscribes ``faces`` (newest wins); publishes ``spike_trains``
(fer_msgs/SpikeTrainArray). Preprocessing (grayscale or Canny edges, with the Canny
settings) comes from the model card, so input always matches what the SNN was trained on.
"""

from __future__ import annotations

import time

import numpy as np

from fer_msgs.msg import FaceArray, SpikeTrain, SpikeTrainArray
from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.options import Param
from fer_ros.core.preprocessing import preprocess_crops, stack_crops
from fer_ros.core.spike_encoding import (
    ENCODINGS,
    EncodingSettings,
    converted_settings,
    encode,
    pack_spikes,
)
from fer_ros.core.stats import RollingLatency
from fer_ros.nodes.image_codec import image_to_gray
from fer_ros.nodes.input_limits import FACES_OVER_LIMIT, MAX_FACES_PARAMETER
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import INPUT_PARAMETERS, INPUT_QOS, PipelineNode

PARAMETERS = (
    Param(
        "model_card",
        "fer_snn_loihi.json",
        "Model card (in the package's models/ or a "
        "path) whose input preprocessing the spikes must match",
    ),
    Param("encoding", "rate", "Spike coding of pixel intensity", choices=ENCODINGS),
    Param(
        "timesteps",
        0,
        "Steps per presentation; 0: as the model card's SNN was converted",
        minimum=0,
        maximum=10000,
    ),
    Param("dt", 0.0, "Seconds per step; 0: as converted", minimum=0.0, maximum=1.0),
    Param(
        "max_rate",
        0.0,
        "Firing rate of a full-intensity pixel in Hz (max_rate*dt <= 1); 0: the SNN's input "
        "rate as converted",
        minimum=0.0,
        maximum=100000.0,
    ),
    Param(
        "seed",
        0,
        "Seed of Poisson coding; a face's train depends on seed, face id and frame stamp only",
        minimum=0,
        maximum=2**31 - 1,
    ),
    MAX_FACES_PARAMETER,
    *INPUT_PARAMETERS,
)


class SpikeEncodingNode(PipelineNode):
    parameters = PARAMETERS
    input_counters = (*PipelineNode.input_counters, FACES_OVER_LIMIT)

    def __init__(self, node_name: str = "spike_encoding", **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        self._trains_pub = self.output(SpikeTrainArray, "spike_trains")
        self._card: ModelCard | None = None
        self._settings = EncodingSettings()
        self._latency = RollingLatency()
        self.spikes_emitted = 0

    def load(self) -> None:
        self._card = load_model_card(self.config.model_card)
        c = self.config
        self._settings = converted_settings(self._card, c.encoding, c.timesteps, c.dt, c.max_rate)
        self.get_logger().info(
            f"{self._settings.encoding} coding, {self._settings.timesteps} steps, "
            f"{self._card.preprocessing} input (from {self._card.model_id})"
        )

    def start(self) -> None:
        self.subscribe_input(FaceArray, "faces", INPUT_QOS)

    def unload(self) -> None:
        self._card = None

    def process(self, msg: FaceArray) -> None:
        card = self._card
        if card is None:
            return
        start = time.perf_counter()
        out = SpikeTrainArray(header=msg.header)
        faces = self.largest_faces(msg.faces)
        if faces:
            crops = stack_crops(
                [image_to_gray(face.crop) for face in faces],
                card.input_height,
                card.input_width,
                card.model_id,
            )
            intensities = preprocess_crops(crops, card.preprocessing, card.canny)[:, 0]
            for face, pixels in zip(faces, intensities, strict=True):
                out.trains.append(self._train(msg, face.face_id, face.roi, pixels, card))
        self._trains_pub.publish(out)
        self._latency.add((time.perf_counter() - start) * 1000.0)

    def _train(
        self, msg: FaceArray, face_id: int, roi: object, pixels: np.ndarray, card: ModelCard
    ) -> SpikeTrain:
        s = self._settings
        rng = None
        if s.encoding == "poisson":
            stamp = msg.header.stamp
            rng = np.random.default_rng([self.config.seed, face_id, stamp.sec, stamp.nanosec])
        spikes = encode(pixels, s, rng)
        count = int(spikes.sum())
        self.spikes_emitted += count
        return SpikeTrain(
            header=msg.header,
            face_id=face_id,
            roi=roi,
            encoding=s.encoding,
            preprocessing=card.preprocessing,
            timesteps=s.timesteps,
            height=pixels.shape[0],
            width=pixels.shape[1],
            dt=s.dt,
            max_rate=s.max_rate,
            spike_count=count,
            spikes=pack_spikes(spikes),
        )

    def status_values(self) -> dict[str, str]:
        return {
            "spikes_emitted": str(self.spikes_emitted),
            "latency_p50_ms": f"{self._latency.percentile(50):.2f}",
            "latency_p95_ms": f"{self._latency.percentile(95):.2f}",
        }


def main(args: list[str] | None = None) -> None:
    run_node(SpikeEncodingNode, args)


if __name__ == "__main__":
    main()
