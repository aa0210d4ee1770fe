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
from typing import Any

import numpy as np
from rclpy.time import Time

from fer_msgs.msg import Expression, ExpressionArray, Telemetry
from fer_ros.backends import BackendSettings, InferenceBackend, InputKind, backend_class
from fer_ros.backends.isolated import BackendDown, RespawningBackend
from fer_ros.backends.settings import INFERENCE_PARAMETERS, settings_from_parameters
from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.stats import RateMeter, RollingLatency
from fer_ros.nodes.inference_inputs import InferenceInput, inference_input
from fer_ros.nodes.input_limits import FACES_OVER_LIMIT, MAX_FACES_PARAMETER
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import (
    DIAGNOSTICS_PERIOD_S,
    ERROR,
    INPUT_PARAMETERS,
    INPUT_QOS,
    WARN,
    PipelineNode,
)
from fer_ros.nodes.telemetry import MeteredCall, telemetry_message
from fer_ros.power import power_source_for_backend

PARAMETERS = (*INFERENCE_PARAMETERS, MAX_FACES_PARAMETER, *INPUT_PARAMETERS)
LATENCY_WINDOW_S = 10.0  # latency alarms: p95 of the last 10 s (an alarm clears 10 s after)


class InferenceNode(PipelineNode):
    parameters = PARAMETERS
    input_counters = (*PipelineNode.input_counters, FACES_OVER_LIMIT)

    def __init__(self, node_name: str = "inference", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._expressions_pub = self.output(ExpressionArray, "expressions")
        self._telemetry_pub = self.output(Telemetry, "telemetry")
        self._backend: InferenceBackend | None = None
        self._input: InferenceInput | None = None
        self._metered = MeteredCall(None)
        self._card: ModelCard | None = None
        self._fallback_declared = False
        self._reset_figures()
        self.inferences = 0
        self.frames_lost = 0  # inputs that arrived while the backend process was down
        self._backend_down_at = -math.inf

    @property
    def backend(self) -> InferenceBackend | None:
        """The loaded backend (None unless configured)."""
        return self._backend

    def _reset_figures(self) -> None:
        self._inference_ms = RollingLatency()
        # Alarms look at the last LATENCY_WINDOW_S only: they clear once slow frames stop.
        self._end_to_end_ms = RollingLatency(window_s=LATENCY_WINDOW_S)
        self._rate = RateMeter()

    # --- lifecycle -----------------------------------------------------------------------
    def load(self) -> None:
        cfg = self.config
        self._card = load_model_card(cfg.model_card)
        name, settings, power = settings_from_parameters(cfg.as_options(), card=self._card)
        # BackendUnavailable propagates: configure fails with its install advice.
        backend: InferenceBackend
        if cfg.backend_process:
            isolated = RespawningBackend(
                name,
                settings,
                first_delay_s=cfg.backend_restart_delay_s,
                max_failures=cfg.backend_max_restarts,
            )
            self.get_logger().info(f"{name} backend runs in process {isolated.pid}")
            backend = isolated  # type: ignore[assignment]  # same interface, set per instance
        else:
            backend = backend_class(name)(settings)
        self._backend = backend
        self._input = inference_input(backend.input_kind, self._card, settings.options)
        if backend.input_kind is InputKind.CROPS:  # spiking backends report their own energy
            source = power_source_for_backend(power, backend.fallback, backend.device)
            self._metered = MeteredCall(source)
            self.get_logger().info(f"power: {source.description}")
        self._fallback_declared = fallback_declared(name, settings)
        note = ""
        if backend.fallback:
            note = " (declared fallback)" if self._fallback_declared else " (UNDECLARED fallback)"
        self.get_logger().info(
            f"{cfg.accelerator}: {self._card.model_id} [{settings.model_export}] on "
            f"{backend.device}{note} via {backend.runtime}"
        )
        if backend.fallback and not self._fallback_declared:
            # A profile that declares its fallback (allow_cpu_fallback, loihi.target: auto)
            # runs as designed: OK, with the device named. Only an undeclared one is a fault.
            self.report(
                "device",
                WARN,
                f"requested device absent and no fallback declared; running on {backend.device}",
            )

    def start(self) -> None:
        if self._input is None:
            raise RuntimeError("no backend loaded; configure first")
        # Figures describe this activation only; stale latencies must not re-trigger alarms.
        self._reset_figures()
        self.subscribe_input(self._input.msg_type, self._input.topic, INPUT_QOS)

    def stop(self) -> None:
        self.clear("latency")

    def unload(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self._metered.power is not None:
            self._metered.power.close()
            self._metered = MeteredCall(None)
        self._input = None
        self.clear("device")

    # --- per frame -------------------------------------------------------------------------
    def process(self, msg: Any) -> None:
        backend, card, source = self._backend, self._card, self._input
        if backend is None or card is None or source is None:
            return
        items = source.keep(msg, self.largest_faces(source.items(msg)))
        out = ExpressionArray(
            header=msg.header, accelerator=self.config.accelerator, model_id=card.model_id
        )
        if not items:
            self._expressions_pub.publish(out)
            return
        start = time.perf_counter()
        batch = source.batch(msg)
        preprocess_s = time.perf_counter() - start
        try:
            result, energy, inference_s = self._metered(backend.infer, batch)
        except BackendDown as down:
            self.frames_lost += 1  # nothing to label it with; the restart is under way
            self._backend_down_at = time.monotonic()
            # One ERROR per outage (the cause's wording changes as restarts are tried);
            # clearing it is the one recovery line.
            self.report("backend", ERROR, f"backend down, restarting: {down}", log_changes=False)
            return
        for item, scores in zip(items, result.scores, strict=True):
            out.expressions.append(expression(item, scores, card))
        self._expressions_pub.publish(out)

        telemetry = telemetry_message(
            msg.header, self.config.accelerator, self.config.backend, backend, card.model_id,
            result, energy,
        )  # fmt: skip
        stamp = Time.from_msg(msg.header.stamp)
        telemetry.end_to_end_ms = (self.get_clock().now() - stamp).nanoseconds / 1e6
        telemetry.preprocess_ms = preprocess_s * 1000.0
        telemetry.inference_ms = inference_s * 1000.0
        self.inferences += 1
        self._rate.tick()
        self._inference_ms.add(telemetry.inference_ms)
        self._end_to_end_ms.add(telemetry.end_to_end_ms)
        telemetry.throughput_fps = self._rate.rate()
        telemetry.frames_dropped = self.inputs.dropped + self.frames_lost
        self._telemetry_pub.publish(telemetry)

    # --- diagnostics ---------------------------------------------------------------------
    def hardware_id(self) -> str:
        return self._backend.device if self._backend else ""

    def running_message(self) -> str:
        backend = self._backend
        if backend is None:
            return "running"
        if backend.fallback and self._fallback_declared:
            return f"running on {backend.device} (declared fallback: requested device absent)"
        return f"running on {backend.device}"

    def check_alarms(self) -> None:
        backend = self._backend
        if isinstance(backend, RespawningBackend):
            if backend.failed:
                self.report("backend", ERROR, backend.failed)
            elif backend.down_cause:
                cause = f"backend down, restarting: {backend.down_cause}"
                self.report("backend", ERROR, cause, log_changes=False)
            elif time.monotonic() - self._backend_down_at > DIAGNOSTICS_PERIOD_S:
                self.clear("backend")  # up again, and the outage was on /diagnostics once
        p95 = self._end_to_end_ms.percentile(95)
        if math.isnan(p95):  # nothing in the window: no latency to complain about
            self.clear("latency")
            return
        # Stable texts: report() logs a problem once, not each time the figure moves.
        error_ms, warn_ms = self.config.error_latency_ms, self.config.warn_latency_ms
        if p95 > error_ms:
            self.report("latency", ERROR, f"p95 end-to-end latency above {error_ms:g} ms")
        elif p95 > warn_ms:
            self.report("latency", WARN, f"p95 end-to-end latency above {warn_ms:g} ms")
        else:
            self.clear("latency")

    def status_values(self) -> dict[str, str]:
        backend = self._backend
        return {
            "backend": self.config.backend if self.config else "",
            "runtime": backend.runtime if backend else "",
            "device": backend.device if backend else "",
            "fallback": str(backend.fallback if backend else False),
            "fallback_declared": str(self._fallback_declared),
            "inferences": str(self.inferences),
            "backend_restarts": str(getattr(backend, "restarts", 0)),
            "frames_lost_backend_down": str(self.frames_lost),
            "inference_p50_ms": f"{self._inference_ms.percentile(50):.2f}",
            "inference_p95_ms": f"{self._inference_ms.percentile(95):.2f}",
            "end_to_end_p50_ms": f"{self._end_to_end_ms.percentile(50):.1f}",
            "end_to_end_p95_ms": f"{self._end_to_end_ms.percentile(95):.1f}",
            "throughput_fps": f"{self._rate.rate():.1f}",
        }


def fallback_declared(backend: str, settings: BackendSettings) -> bool:
    """Whether the profile declares a fallback for an absent device: allow_cpu_fallback,
    or loihi's ``target: auto`` (hardware when NxSDK is importable, else the emulator)."""
    if settings.allow_cpu_fallback:
        return True
    return backend == "loihi" and str(settings.options.get("target", "auto")) == "auto"


def expression(item: Any, scores: np.ndarray, card: ModelCard) -> Expression:
    """The label of one face (a Face or a SpikeTrain: both carry face_id and roi)."""
    index = int(np.argmax(scores))
    return Expression(
        face_id=item.face_id,
        roi=item.roi,
        label=card.classes[index],
        label_index=index,
        confidence=float(scores[index]),
        class_names=list(card.classes),
        scores=[float(s) for s in scores],
    )


def main(args: list[str] | None = None) -> None:
    run_node(InferenceNode, args)


if __name__ == "__main__":
    main()
