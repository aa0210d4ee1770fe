"""Expression filter node: one stable, calibrated expression per tracked person.

Subscribes ``expressions`` (fer_msgs/ExpressionArray, every message kept up to
``input_queue_depth``); publishes ``stable_expressions`` (fer_msgs/StableExpressionArray,
one per input) and ``expression_events`` (fer_msgs/ExpressionEvent: appeared, changed,
gone). The filtering itself is :mod:`fer_ros.core.expression_filter`; it runs on the
input stamps, so a replayed bag gives the answers the live graph gave. When input stops,
stream time is carried on by the steady clock, so faces still end as gone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from fer_msgs.msg import (
    ExpressionArray,
    ExpressionEvent,
    StableExpression,
    StableExpressionArray,
)
from fer_ros.core.calibration import UNCALIBRATED, Calibration, card_calibration
from fer_ros.core.expression_filter import (
    NS_PER_S,
    ExpressionFilter,
    FilterEvent,
    FilterSettings,
    Observation,
    StableState,
)
from fer_ros.core.model_card import ModelCard, load_model_card
from fer_ros.core.options import Param
from fer_ros.nodes.deep_inputs import deep_input_parameters
from fer_ros.nodes.node_main import run_node
from fer_ros.nodes.pipeline_base import DIAGNOSTICS_PERIOD_S, WARN, PipelineNode

CALIBRATIONS = ("card", "none")
PARAMETERS = (
    Param(
        "time_constant_s",
        0.5,
        "Smoothing time constant of the class scores, in seconds of stamp time (0: none)",
        minimum=0.0,
        maximum=60.0,
    ),
    Param(
        "change_margin",
        0.1,
        "Smoothed-score lead a new class needs over the current class to replace it",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "hold_s",
        0.5,
        "Seconds a new outcome must be proposed without a break before it becomes stable",
        minimum=0.0,
        maximum=60.0,
    ),
    Param(
        "min_confidence",
        0.5,
        "Smoothed calibrated score the top class needs; below it no class is confident and "
        "the face is 'uncertain' (a model's neutral class is a class like any other)",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "gone_after_s",
        1.0,
        "Seconds without an expression of a face after which its track ends (gone event)",
        minimum=0.01,
        maximum=3600.0,
    ),
    Param(
        "model_card",
        "",
        "Model card whose classes and calibration apply; empty: the card named by the "
        "input's model_id (models/<model_id>.json)",
    ),
    Param(
        "calibration",
        "card",
        "card: the card's fitted temperature (scores as published if it has none); "
        "none: scores as published",
        choices=CALIBRATIONS,
    ),
    *deep_input_parameters(
        100,
        "Expression arrays waiting while the filter is busy; every one matters to the "
        "smoothing, so the default keeps them all",
    ),
)
# Every array matters (empty ones move the clock that ends tracks): reliable, kept.
EXPRESSIONS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
TICK_S = 0.1  # how often to look for tracks that ended while no input arrives


def ns_of(stamp: Time) -> int:
    return stamp.sec * NS_PER_S + stamp.nanosec


def time_of(ns: int) -> Time:
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


class ExpressionFilterNode(PipelineNode):
    parameters = PARAMETERS

    def __init__(self, node_name: str = "expression_filter", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._stable_pub = self.output(StableExpressionArray, "stable_expressions")
        self._events_pub = self.output(ExpressionEvent, "expression_events")
        self._lock = threading.Lock()  # the worker and the timer both drive the filter
        self._settings = FilterSettings()
        self._card: ModelCard | None = None  # fixed by the model_card parameter
        self._filter: ExpressionFilter | None = None
        self._model_id: str | None = None
        self._frame_id = ""
        self._last_input: tuple[int, float] | None = None  # (stream ns, steady s)
        self._last_skip = -1e9
        self._timer: Any = None
        self.events_published = 0

    # --- lifecycle -----------------------------------------------------------------------
    def load(self) -> None:
        cfg = self.config
        self._settings = FilterSettings(
            time_constant_s=cfg.time_constant_s,
            change_margin=cfg.change_margin,
            hold_s=cfg.hold_s,
            min_confidence=cfg.min_confidence,
            gone_after_s=cfg.gone_after_s,
        )
        self._card = load_model_card(cfg.model_card) if cfg.model_card else None

    def start(self) -> None:
        self._filter, self._model_id, self._last_input = None, None, None
        self.subscribe_input(ExpressionArray, "expressions", EXPRESSIONS_QOS)
        self._timer = self.create_timer(TICK_S, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        with self._lock:  # listeners must not keep faces this node no longer tracks
            if self._filter is not None and self.context.ok():  # not once shutting down
                self._publish_events(self._filter.end_all())
            self._filter = None

    def unload(self) -> None:
        self._card = None
        self.clear("calibration")

    # --- input -----------------------------------------------------------------------------
    def process(self, msg: ExpressionArray) -> None:
        skipped: list[str] = []
        with self._lock:
            flt = self._filter_for(msg)
            if flt is None:
                return  # no face and no card yet: nothing to track
            stamp_ns = ns_of(msg.header.stamp)
            observations = []
            for e in msg.expressions:
                if e.class_names and tuple(e.class_names) != flt.classes:
                    skipped.append(f"face {e.face_id}: classes {list(e.class_names)} differ")
                    continue
                box = (e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height)
                observations.append(Observation(e.face_id, e.scores, box))
            result = flt.update(stamp_ns, observations)
            skipped += result.skipped
            self._frame_id = msg.header.frame_id
            self._last_input = (flt.now_ns or stamp_ns, time.monotonic())
            self._publish_events(result.events)
            self._publish_states(flt, msg.header)
        if skipped:
            self._last_skip = time.monotonic()
            self.report("expressions", WARN, f"expressions skipped: {skipped[0]}")

    def _filter_for(self, msg: ExpressionArray) -> ExpressionFilter | None:
        """The filter for the input's model; a new model ends the old model's tracks."""
        if self._filter is not None and msg.model_id == self._model_id:
            return self._filter
        card = self._card or _card_named(msg.model_id)
        if card is not None:
            classes = card.classes
        elif msg.expressions and msg.expressions[0].class_names:
            classes = tuple(msg.expressions[0].class_names)
        else:
            return None  # the classes are not known yet
        if self._filter is not None:
            self.get_logger().info(f"input model changed to {msg.model_id!r}: tracks restart")
            self._publish_events(self._filter.end_all())
        calibration = self._calibration(card, msg.model_id)
        self._filter = ExpressionFilter(classes, replace(self._settings, calibration=calibration))
        self._model_id = msg.model_id
        return self._filter

    def _calibration(self, card: ModelCard | None, model_id: str) -> Calibration:
        if self.config.calibration == "none":
            return UNCALIBRATED
        try:
            fitted = card_calibration(card) if card else None
        except (KeyError, TypeError, ValueError) as error:
            self.report("calibration", WARN, f"unusable calibration in {card.path}: {error}")
            return UNCALIBRATED
        if fitted is None:
            name = card.model_id if card else model_id
            self.report("calibration", WARN, f"no calibration for {name}: scores as published")
            return UNCALIBRATED
        if card is not None and card.model_id != model_id:
            self.report(
                "calibration", WARN, f"calibration of {card.model_id} applied to {model_id}"
            )
        else:
            self.clear("calibration")
        self.get_logger().info(
            f"{card.model_id}: temperature {fitted.temperature:g} ({fitted.form} form)"
        )
        return fitted

    def _tick(self) -> None:
        """End tracks on steady time while no input arrives (a camera that stopped)."""
        with self._lock:
            flt, last = self._filter, self._last_input
            if flt is None or last is None or not len(flt):
                return
            idle_s = time.monotonic() - last[1]
            if idle_s < self._settings.gone_after_s:
                return
            now_ns = last[0] + round(idle_s * NS_PER_S)
            events = flt.advance(now_ns)
            if events:
                self._publish_events(events)
                self._publish_states(flt, Header(stamp=time_of(now_ns), frame_id=self._frame_id))

    # --- output ----------------------------------------------------------------------------
    def _publish_events(self, events: list[FilterEvent]) -> None:
        for event in events:
            self._events_pub.publish(
                ExpressionEvent(
                    header=Header(stamp=time_of(event.stamp_ns), frame_id=self._frame_id),
                    face_id=event.face_id,
                    kind=str(event.kind),
                    from_label=event.from_label,
                    to_label=event.to_label,
                    confidence=event.confidence,
                    valence=event.valence,
                    arousal=event.arousal,
                )
            )
            self.events_published += 1

    def _publish_states(self, flt: ExpressionFilter, header: Header) -> None:
        calibration = flt.settings.calibration
        self._stable_pub.publish(
            StableExpressionArray(
                header=header,
                model_id=self._model_id or "",
                temperature=calibration.temperature,
                calibration=calibration.form if calibration != UNCALIBRATED else "none",
                expressions=[stable_expression(s, flt.classes) for s in flt.states()],
            )
        )

    # --- diagnostics ---------------------------------------------------------------------
    def check_alarms(self) -> None:
        if time.monotonic() - self._last_skip > DIAGNOSTICS_PERIOD_S:
            self.clear("expressions")

    def status_values(self) -> dict[str, str]:
        flt = self._filter
        return {
            "model_id": self._model_id or "",
            "tracks": str(len(flt) if flt else 0),
            "events_published": str(self.events_published),
            "stale_skipped": str(flt.stale if flt else 0),
            "malformed_skipped": str(flt.rejected if flt else 0),
            "temperature": f"{flt.settings.calibration.temperature:g}" if flt else "",
        }


def stable_expression(state: StableState, classes: tuple[str, ...]) -> StableExpression:
    x, y, w, h = state.box or (0, 0, 0, 0)
    return StableExpression(
        face_id=state.face_id,
        roi=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
        label=state.label,
        confidence=state.confidence,
        valence=state.valence,
        arousal=state.arousal,
        class_names=list(classes),
        scores=list(state.scores),
        since=time_of(state.since_ns),
        last_seen=time_of(state.last_seen_ns),
    )


def _card_named(model_id: str) -> ModelCard | None:
    try:
        return load_model_card(f"{model_id}.json") if model_id else None
    except (FileNotFoundError, ValueError, KeyError):
        return None


def main(args: list[str] | None = None) -> None:
    run_node(ExpressionFilterNode, args)


if __name__ == "__main__":
    main()
