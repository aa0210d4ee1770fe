"""Inference node: classifies face expressions on the configured accelerator.

Input depends on the backend: ``faces`` (fer_msgs/FaceArray) for CNN runtimes,
``spike_trains`` (fer_msgs/SpikeTrainArray) for spiking backends. Newest input wins.
Publishes ``expressions`` (fer_msgs/ExpressionArray, one per processed frame, empty when
no face is in view), ``telemetry`` (fer_msgs/Telemetry, one per inference) and
/diagnostics.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
from rclpy.time import Time

from fer_msgs.msg import Expression, ExpressionArray, FaceArray, SpikeTrainArray, Telemetry
from fer_ros.backends import BACKENDS, InferenceBackend, InputKind, backend_class
from fer_ros.backends.base import EnergyFigure, FigureSource, InferenceResult
from fer_ros.backends.isolated import IsolatedBackend
from fer_ros.backends.settings import settings_from_parameters
from fer_ros.image_codec import image_to_gray
from fer_ros.model_card import ModelCard, load_model_card
from fer_ros.node_main import run_node
from fer_ros.parameters import Param
from fer_ros.pipeline_node import ERROR, INPUT_PARAMETERS, INPUT_QOS, WARN, PipelineNode
from fer_ros.power import POWER_MODELS, PowerSource, power_source_for_backend
from fer_ros.power.factory import SENSOR_CHOICES, SOURCE_CHOICES
from fer_ros.preprocessing import preprocess_crops, stack_crops
from fer_ros.spike_encoding import unpack_spikes
from fer_ros.stats import RateMeter, RollingLatency

ACCELERATORS = ("loihi", "coral", "ncs2", "jetson", "rpi", "cpu")
COMMON_PARAMETERS = (
    Param(
        "accelerator",
        "cpu",
        "Accelerator this profile stands for (reported in outputs)",
        choices=ACCELERATORS,
    ),
    Param("backend", "onnxruntime", "Inference runtime", choices=tuple(BACKENDS)),
    Param("model_card", "fer_cnn_cpu.json", "Model card in the package's models/ (or a path)"),
    Param("model_export", "onnx", "Which export of the card to load (a key of its files)"),
    Param("device", "", "Device to run on; backend-specific, empty for the backend default"),
    Param("num_threads", 1, "CPU threads the runtime may use", minimum=1, maximum=64),
    Param(
        "backend_process",
        False,
        "Run the backend in a child process, so that a runtime computing in Python "
        "(the nengo-loihi emulator) does not share the interpreter with the other nodes",
    ),
    Param(
        "allow_cpu_fallback",
        False,
        "Run on the CPU when the device is absent (reported "
        "as fallback in Telemetry) instead of failing to configure",
    ),
    Param(
        "power.source",
        "auto",
        "Power figures: 'measured' needs a sensor, 'model' uses "
        "published constants, 'auto' measures when a sensor covers the device, 'none' "
        "reports none",
        choices=SOURCE_CHOICES,
    ),
    Param(
        "power.model",
        "",
        "Published power model of the accelerator (empty: none)",
        choices=("", *POWER_MODELS),
    ),
    Param(
        "power.fallback_model",
        "",
        "Power model of the host CPU for a declared fallback",
        choices=("", *POWER_MODELS),
    ),
    Param("power.sensor", "auto", "Sensor to measure with", choices=SENSOR_CHOICES),
    Param("power.rails", [""], "INA3221 rails to sum (empty: the module input rail)"),
    Param("power.domains", ["package"], "RAPL zones to sum"),
    Param(
        "power.active_w",
        0.0,
        "Override the model's active power in W (0: the model's); "
        "document where the figure comes from",
        minimum=0.0,
        maximum=1000.0,
    ),
    Param(
        "warn_latency_ms",
        60.0,
        "Diagnostics WARN above this p95 end-to-end latency",
        minimum=0.0,
        maximum=1e6,
    ),
    Param(
        "error_latency_ms",
        500.0,
        "Diagnostics ERROR above this p95 end-to-end latency",
        minimum=0.0,
        maximum=1e6,
    ),
)


def backend_parameters() -> tuple[Param, ...]:
    """Every backend's tunables as ``<backend>.<option>`` parameters."""
    rows = []
    for name in BACKENDS:
        for option in getattr(backend_class(name), "options", ()):
            rows.append(
                replace(
                    option,
                    name=f"{name}.{option.name}",
                    description=f"{name} backend: {option.description}",
                )
            )
    return tuple(rows)


PARAMETERS = COMMON_PARAMETERS + INPUT_PARAMETERS + backend_parameters()
NAN = float("nan")


class InferenceNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "inference", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._expressions_pub = self.output(ExpressionArray, "expressions")
        self._telemetry_pub = self.output(Telemetry, "telemetry")
        self._backend: InferenceBackend | None = None
        self._power: PowerSource | None = None
        self._card: ModelCard | None = None
        self._inference_ms = RollingLatency()
        self._end_to_end_ms = RollingLatency()
        self._rate = RateMeter()
        self.inferences = 0

    # --- lifecycle -----------------------------------------------------------------------
    def configure(self) -> None:
        cfg = self.config
        self._card = load_model_card(cfg["model_card"])
        name, settings, power = settings_from_parameters(cfg, card=self._card)
        # BackendUnavailable propagates: configure fails with its install advice.
        backend: InferenceBackend
        if cfg["backend_process"]:
            isolated = IsolatedBackend(name, settings)
            self.get_logger().info(f"{name} backend runs in process {isolated.pid}")
            backend = isolated  # type: ignore[assignment]  # same interface, set per instance
        else:
            backend = backend_class(name)(settings)
        self._backend = backend
        if backend.input_kind is InputKind.CROPS:  # spiking backends report their own energy
            self._power = power_source_for_backend(power, backend.fallback, backend.device)
            self.get_logger().info(f"power: {self._power.description}")
        note = " (declared CPU fallback)" if backend.fallback else ""
        self.get_logger().info(
            f"{cfg['accelerator']}: {self._card.model_id} [{cfg['model_export']}] on "
            f"{backend.device}{note} via {backend.runtime}"
        )
        if backend.fallback:
            self.report("device", WARN, f"requested device absent; running on {backend.device}")

    def activate(self) -> None:
        if self._backend is None:
            raise RuntimeError("no backend loaded; configure first")
        if self._backend.input_kind is InputKind.SPIKES:
            self.subscribe_input(SpikeTrainArray, "spike_trains", INPUT_QOS)
        else:
            self.subscribe_input(FaceArray, "faces", INPUT_QOS)

    def on_activated(self) -> None:
        # Figures describe this activation only; stale latencies must not re-trigger alarms.
        self._inference_ms = RollingLatency()
        self._end_to_end_ms = RollingLatency()
        self._rate = RateMeter()

    def deactivate(self) -> None:
        self.clear("latency")

    def cleanup(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self._power is not None:
            self._power.close()
            self._power = None
        self.clear("device")

    # --- per frame -------------------------------------------------------------------------
    def process(self, msg: FaceArray | SpikeTrainArray) -> None:
        backend, card = self._backend, self._card
        if backend is None or card is None:
            return
        items = msg.trains if isinstance(msg, SpikeTrainArray) else msg.faces
        out = ExpressionArray(
            header=msg.header, accelerator=self.config["accelerator"], model_id=card.model_id
        )
        if not items:
            self._expressions_pub.publish(out)
            return
        start = time.perf_counter()
        batch = (
            self._spike_batch(msg, card)
            if isinstance(msg, SpikeTrainArray)
            else self._crop_batch(msg, card)
        )
        prepared = time.perf_counter()
        if self._power is not None:
            self._power.sample()
        begin = time.perf_counter()
        result = backend.infer(batch)
        end = time.perf_counter()
        energy = result.energy
        if energy is None and self._power is not None:
            self._power.sample()
            now = time.monotonic()  # power sources work on the monotonic clock
            energy = self._power.energy(now - (end - begin), now)
        for item, scores in zip(items, result.scores, strict=True):
            out.expressions.append(self._expression(item, scores, card))
        self._expressions_pub.publish(out)
        self._publish_telemetry(msg, backend, card, result, energy, (prepared - start, end - begin))

    def _crop_batch(self, msg: FaceArray, card: ModelCard) -> np.ndarray:
        crops = stack_crops(
            [image_to_gray(face.crop) for face in msg.faces],
            card.input_height,
            card.input_width,
            card.model_id,
        )
        return preprocess_crops(crops, card.preprocessing, card.canny)

    def _spike_batch(self, msg: SpikeTrainArray, card: ModelCard) -> np.ndarray:
        trains = []
        for train in msg.trains:
            if train.preprocessing != card.preprocessing:
                raise ValueError(
                    f"spike train has {train.preprocessing} input, {card.model_id} was trained "
                    f"on {card.preprocessing}: give spike_encoding the same model_card"
                )
            shape = (train.timesteps, train.height, train.width)
            trains.append(unpack_spikes(bytes(train.spikes), shape))
        if len({t.shape for t in trains}) != 1:
            raise ValueError("spike trains of one frame differ in shape")
        return np.stack(trains)

    @staticmethod
    def _expression(item: Any, scores: np.ndarray, card: ModelCard) -> Expression:
        index = int(np.argmax(scores))
        return Expression(
            face_id=item.id if hasattr(item, "id") else item.face_id,
            roi=item.roi,
            label=card.classes[index],
            label_index=index,
            confidence=float(scores[index]),
            class_names=list(card.classes),
            scores=[float(s) for s in scores],
        )

    def _publish_telemetry(
        self,
        msg: FaceArray | SpikeTrainArray,
        backend: InferenceBackend,
        card: ModelCard,
        result: InferenceResult,
        energy: EnergyFigure | None,
        timing: tuple[float, float],
    ) -> None:
        preprocess_s, inference_s = timing
        end_to_end_ms = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6
        self.inferences += 1
        self._rate.tick()
        self._inference_ms.add(inference_s * 1000.0)
        self._end_to_end_ms.add(end_to_end_ms)
        telemetry = Telemetry(
            header=msg.header,
            accelerator=self.config["accelerator"],
            backend=self.config["backend"],
            runtime=backend.runtime,
            device=backend.device,
            fallback=backend.fallback,
            model_id=card.model_id,
            faces=len(result.scores),
            preprocess_ms=preprocess_s * 1000.0,
            inference_ms=inference_s * 1000.0,
            end_to_end_ms=end_to_end_ms,
            throughput_fps=self._rate.rate(),
            frames_dropped=self.inputs.dropped,
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
        self._telemetry_pub.publish(telemetry)

    # --- diagnostics ---------------------------------------------------------------------
    def hardware_id(self) -> str:
        return self._backend.device if self._backend else ""

    def diagnostic_values(self) -> dict[str, str]:
        backend = self._backend
        p95 = self._end_to_end_ms.percentile(95)
        if self.active and not math.isnan(p95):
            # Stable texts: report() logs a problem once, not each time the figure moves.
            if p95 > self.config["error_latency_ms"]:
                limit = self.config["error_latency_ms"]
                self.report("latency", ERROR, f"p95 end-to-end latency above {limit:g} ms")
            elif p95 > self.config["warn_latency_ms"]:
                limit = self.config["warn_latency_ms"]
                self.report("latency", WARN, f"p95 end-to-end latency above {limit:g} ms")
            else:
                self.clear("latency")
        return {
            "backend": self.config.get("backend", ""),
            "runtime": backend.runtime if backend else "",
            "device": backend.device if backend else "",
            "fallback": str(backend.fallback if backend else False),
            "inferences": str(self.inferences),
            "inference_p50_ms": f"{self._inference_ms.percentile(50):.2f}",
            "inference_p95_ms": f"{self._inference_ms.percentile(95):.2f}",
            "end_to_end_p50_ms": f"{self._end_to_end_ms.percentile(50):.1f}",
            "end_to_end_p95_ms": f"{p95:.1f}",
            "throughput_fps": f"{self._rate.rate():.1f}",
        }


def fill_energy(telemetry: Telemetry, energy: EnergyFigure | None) -> None:
    """Copy an energy figure with its provenance; no figure stays NaN and UNAVAILABLE."""
    if energy is None or energy.source is FigureSource.UNAVAILABLE:
        telemetry.power_w = telemetry.energy_mj = NAN
        telemetry.power_source = telemetry.energy_source = Telemetry.SOURCE_UNAVAILABLE
        telemetry.power_model = telemetry.energy_model = energy.model if energy else "none"
        return
    telemetry.power_w = energy.power_w
    telemetry.energy_mj = energy.energy_j * 1000.0
    telemetry.power_source = telemetry.energy_source = int(energy.source)
    telemetry.power_model = telemetry.energy_model = energy.model


def main(args: list[str] | None = None) -> None:
    run_node(InferenceNode, args)


if __name__ == "__main__":
    main()
