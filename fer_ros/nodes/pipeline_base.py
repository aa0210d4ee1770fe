"""Lifecycle base for the pipeline's nodes: parameters, problems, 1 Hz diagnostics.

The lifecycle transitions (rclpy's ``on_configure`` ... ``on_cleanup``) are implemented
here once; a stage implements only these hooks:

* ``load()``: resources from ``self.config`` (a frozen, typed copy of its parameters
  read at configure time); raise with a clear message to fail the transition;
* ``start()`` / ``stop()``: begin and end work (``subscribe_input`` for stages with an
  input; that subscription is removed by the base);
* ``process(msg)``: one input, on a worker thread fed by a bounded queue
  (newest-wins by default); raise ValueError for bad input;
* ``unload()``: free what ``load`` took;
* ``check_alarms()``: raise or clear problems from current figures (called once per
  diagnostics period, before reporting), and ``status_values()``: figures for
  /diagnostics, without side effects; ``running_message()``: the OK message.

Problems are logged once when they appear and once when they clear, never per frame.
Inputs over a stage's bounds or without payload (:mod:`fer_ros.nodes.input_limits`) are
counted under their own /diagnostics keys and logged once per episode, naming the topic.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import deserialize_message

from fer_ros.core.options import OptionValues, Param, config_class, read_config
from fer_ros.nodes.entity_thread import EntityThread, NotOnExecutor
from fer_ros.nodes.input_limits import (
    FACES_OVER_LIMIT,
    CountedInputError,
    EmptyInput,
    OversizedInput,
    largest_first,
)
from fer_ros.nodes.input_worker import INPUT_PARAMETERS, InputWorker
from fer_ros.nodes.parameters import declare_parameters, read_parameters

__all__ = ["ERROR", "INPUT_PARAMETERS", "INPUT_QOS", "OK", "WARN", "PipelineNode"]

T = TypeVar("T")
# Messages the middleware reports lost before delivery: e.g. a frame too large for the
# transport, whose fragments never all arrive, which the node would otherwise never see.
LOST_IN_MIDDLEWARE = "inputs_lost_middleware"
# Fast DDS 3.2 sometimes reports a loss with a nonsense count (2**31 - 1): count those as one.
PLAUSIBLE_LOSS = 10_000
# diagnostic_msgs levels are single bytes, so max() orders them OK < WARN < ERROR.
OK: bytes = DiagnosticStatus.OK
WARN: bytes = DiagnosticStatus.WARN
ERROR: bytes = DiagnosticStatus.ERROR
DIAGNOSTICS_PERIOD_S = 1.0
# use_sim_time with no /clock for this long: say once that the node waits for /clock.
CLOCK_WAIT_S = 3.0
# Results are small and every one matters to a listener: reliable, a short history.
RELIABLE_OUTPUT = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Inputs: the worker's queue decides what is kept; the reader holds one (or the queue's
# depth, see subscribe_input).
INPUT_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class PipelineNode(LifecycleNode):
    parameters: tuple[Param, ...] = ()
    # Input problems counted apart, each a /diagnostics key (0 until one happens).
    input_counters: tuple[str, ...] = (
        OversizedInput.counter,
        EmptyInput.counter,
        LOST_IN_MIDDLEWARE,
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # One frozen config type per stage, from the same table that declares its parameters.
        cls.config_type = config_class(f"{cls.__name__}Config", cls.parameters)

    config_type: type[OptionValues]

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self, self.parameters)
        self.add_on_set_parameters_callback(self._refuse_changes_once_configured)
        self.config: Any = None  # config_type once configured; attributes per parameter
        self.lifecycle_state = "unconfigured"  # as the lifecycle reports it, for diagnostics
        self.active = False
        self._problems: dict[str, tuple[bytes, str]] = {}
        # Problems reported since the last /diagnostics message: each is published at
        # least once, even when cleared before the timer fires (a stalled executor thread
        # can fire it more than a period late, after the problem's period has ended).
        self._unpublished: dict[str, tuple[bytes, str]] = {}
        self._problems_lock = threading.Lock()
        self.inputs: InputWorker[Any] = InputWorker(
            self._process_input, self._input_failed, node_name
        )
        self._input_subscription: Any = None
        self._input_thread: EntityThread | None = None
        self._input_type: Any = None  # set by subscribe_input
        self._input_topic = ""
        self.inputs_rejected = 0
        self.input_counts = dict.fromkeys(self.input_counters, 0)
        # Serialized inputs larger than this are refused undecoded (0: no bound); a stage
        # sets it from its own limits when it loads.
        self.max_input_bytes = 0
        self._last_rejection = -math.inf
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Wall time, not the node's clock: under use_sim_time with no /clock a ROS-time
        # timer never fires, and the node would go silent without saying why.
        self._diagnostics_timer = self.create_timer(
            DIAGNOSTICS_PERIOD_S,
            self.publish_diagnostics,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self._clock_wait_since = time.monotonic()

    # --- to override ---------------------------------------------------------------------
    def load(self) -> None:
        """Load resources from ``self.config``; raise with a clear message to fail."""

    def start(self) -> None:
        """Subscribe (``subscribe_input``) and start timers."""

    def stop(self) -> None:
        """Stop what ``start`` began beyond the input subscription."""

    def process(self, msg: Any) -> None:
        """Handle one input message; raise ValueError for bad input (logged once)."""

    def unload(self) -> None:
        """Free what ``load`` took."""

    def check_alarms(self) -> None:
        """Report or clear problems from current figures (once per diagnostics period)."""

    def status_values(self) -> dict[str, str]:
        """Figures for /diagnostics; no side effects."""
        return {}

    def hardware_id(self) -> str:
        return ""

    def running_message(self) -> str:
        """The OK message on /diagnostics while active with no problem."""
        return "running"

    # --- lifecycle -------------------------------------------------------------------------
    # rclpy swallows exceptions from transition callbacks without a log, so every step is
    # guarded here: a failure is reported once (log and /diagnostics) and returns FAILURE.
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = read_config(self.config_type, read_parameters(self, self.parameters))
            self.load()
        except Exception as error:
            self.report("configure", ERROR, f"configure failed: {error}")
            self._guarded("cleanup after the failed configure", self.unload)
            return TransitionCallbackReturn.FAILURE
        self.clear("configure")
        self.lifecycle_state = "inactive"
        self.get_logger().info("configured")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # publishers first: the worker may publish at once
        if not self._guarded("activate", self.start):
            self._stop_input()
            super().on_deactivate(state)
            return TransitionCallbackReturn.FAILURE
        self.active = True
        self.lifecycle_state = "active"
        self.get_logger().info("active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self._stop_input()
        ok = self._guarded("deactivate", self.stop)
        self.lifecycle_state = "inactive"
        self.get_logger().info("inactive")
        result = super().on_deactivate(state)
        return result if ok else TransitionCallbackReturn.FAILURE

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self._guarded("cleanup", self.unload):
            return TransitionCallbackReturn.FAILURE
        self.lifecycle_state = "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.lifecycle_state = "finalized"
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        # A transition raised: free everything so that "unconfigured" really is.
        self.release()
        self.lifecycle_state = "unconfigured"
        return super().on_error(state)

    def release(self) -> None:
        """Stop work and free resources without a transition (process shutdown)."""
        if self.active:
            self.active = False
            self._stop_input()
            self._guarded("deactivate", self.stop)
        self._guarded("cleanup", self.unload)

    def _refuse_changes_once_configured(self, changes: list[Parameter]) -> SetParametersResult:
        """Every parameter of the table is read at configure time: a change accepted by a
        configured node would say 'successful' and change nothing until the next
        configure, so it is refused with the way to make it count."""
        names = [p.name for p in self.parameters]
        refused = [change.name for change in changes if change.name in names]
        if not refused or self.lifecycle_state not in ("inactive", "active"):
            return SetParametersResult(successful=True)
        steps = "deactivate and clean up" if self.lifecycle_state == "active" else "clean up"
        return SetParametersResult(
            successful=False,
            reason=(
                f"{', '.join(refused)}: read at configure time and "
                f"{self.get_fully_qualified_name()} is {self.lifecycle_state}; {steps} the "
                "node (ros2 lifecycle set <node> ...), set it, then configure again"
            ),
        )

    def _guarded(self, what: str, step: Callable[[], None]) -> bool:
        try:
            step()
        except Exception as error:
            self.report(what, ERROR, f"{what} failed: {error}")
            return False
        return True

    # --- outputs ------------------------------------------------------------------------------
    def output(self, msg_type: type, topic: str, qos: QoSProfile = RELIABLE_OUTPUT) -> Any:
        """A lifecycle publisher (silent while inactive) whose QoS a profile may override
        (``qos_overrides./<topic>.publisher.<policy>``)."""
        return self.create_lifecycle_publisher(
            msg_type,
            topic,
            copy.copy(qos),  # rclpy applies overrides to the profile in place; keep ours clean
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )

    # --- bounded input queue ---------------------------------------------------------------
    def subscribe_input(self, msg_type: type, topic: str, qos: QoSProfile) -> None:
        """Feed ``topic`` to ``process`` on a worker through a queue of
        ``input_queue_depth`` inputs; the reader's history is made at least that deep so
        the middleware does not drop what the queue would keep.

        Messages are taken serialized and decoded on the worker: a payload that does not
        decode is then an input rejected like any other bad input (counted, WARN on
        /diagnostics), where a typed subscription would drop it with a bare log line."""
        self.inputs.depth = int(self.config.input_queue_depth)
        qos = copy.copy(qos)
        qos.depth = max(qos.depth, self.inputs.depth)
        self._input_type, self._input_topic = msg_type, topic
        self.inputs.start()
        # Taken on a thread of its own, not by the executor (fer_ros.nodes.entity_thread)
        self._input_subscription = self.create_subscription(
            msg_type,
            topic,
            self.inputs.submit,
            qos,
            raw=True,
            event_callbacks=SubscriptionEventCallbacks(message_lost=self._messages_lost),
            callback_group=NotOnExecutor(),
        )
        self._input_thread = EntityThread(
            self, [self._input_subscription], f"{self.get_name()[:12]}.in", self._input_failed
        )
        self._input_thread.start()

    def _messages_lost(self, info: QoSMessageLostInfo) -> None:
        lost = info.total_count_change
        self.count_input_problem(
            LOST_IN_MIDDLEWARE,
            f"{self._input_type.__name__} messages lost by the middleware before delivery "
            "(larger than the transport carries, or a saturated link)",
            lost if 0 < lost <= PLAUSIBLE_LOSS else 1,
        )

    def _stop_input(self) -> None:
        if self._input_thread is not None:
            self._input_thread.stop()
            self._input_thread = None
        if self._input_subscription is not None:
            self.destroy_subscription(self._input_subscription)
            self._input_subscription = None
        self.inputs.stop()

    def input_topic(self) -> str:
        """The input topic as resolved (namespace, remaps), for messages about it."""
        subscription = self._input_subscription
        return subscription.topic_name if subscription is not None else self._input_topic

    def _process_input(self, data: bytes) -> None:
        if self.max_input_bytes and len(data) > self.max_input_bytes:
            # Decoding a frame of hundreds of MB would cost more than the refusal.
            raise OversizedInput(
                f"{self._input_type.__name__} messages over {self.max_input_bytes} bytes "
                f"dropped undecoded ({len(data)} bytes)"
            )
        if len(data) <= 4:  # the CDR encapsulation header and nothing after it
            raise EmptyInput(f"empty {self._input_type.__name__} payload ({len(data)} bytes)")
        try:
            msg = deserialize_message(data, self._input_type)
        except Exception as error:  # rclpy raises its own types for malformed CDR
            name = self._input_type.__name__
            raise ValueError(f"undecodable {name} on {self._input_topic}: {error}") from error
        self.process(msg)
        # Keep a rejection visible for a whole diagnostics period, so one bad message
        # among good ones still shows on /diagnostics and logs once, not per frame.
        if time.monotonic() - self._last_rejection > DIAGNOSTICS_PERIOD_S:
            self.clear("input")
            for counter in self.input_counts:
                self.clear(counter)

    def _input_failed(self, error: Exception) -> None:
        if not self.context.ok():
            return  # publishing fails once the process is shutting down; not the input's fault
        self.inputs_rejected += 1
        self._last_rejection = time.monotonic()
        if isinstance(error, CountedInputError):
            self.count_input_problem(error.counter, f"input dropped: {error}")
            return
        bad_input = isinstance(error, ValueError)  # ImageError included: the input's fault
        self.report("input", WARN if bad_input else ERROR, f"input dropped: {error}")

    def largest_faces(self, faces: Sequence[T]) -> list[T]:
        """At most ``max_faces`` of ``faces`` (for stages with that parameter), the
        largest; the faces left out are counted (``faces_over_limit``)."""
        limit = self.config.max_faces
        if len(faces) <= limit:
            return list(faces)
        self.count_input_problem(
            FACES_OVER_LIMIT,
            f"messages with more than max_faces ({limit}) faces: the {limit} largest kept "
            f"({len(faces)} in one)",
            len(faces) - limit,
        )
        return largest_first(faces, limit)

    def count_input_problem(self, counter: str, message: str, count: int = 1) -> None:
        """Count an input problem under ``counter`` and report it (WARN): logged when it
        first appears, naming the topic; later ones only count, and /diagnostics shows
        the latest. It clears after a diagnostics period without one."""
        with self._problems_lock:
            self.input_counts[counter] = self.input_counts.get(counter, 0) + count
        self._last_rejection = time.monotonic()
        self.report(counter, WARN, f"{self.input_topic()}: {message}", log_changes=False)

    def _check_stall(self) -> None:
        if self._input_subscription is None:
            return
        limit = self.config.stall_timeout_s
        if self.inputs.stalled_s() > limit:
            # A stable text, logged once; how long it has lasted is in stalled_s.
            message = f"{self.get_name()} stalled: inputs waiting, none processed for over"
            self.report("stall", ERROR, f"{message} {limit:g} s")
        else:
            self.clear("stall")

    # --- problems and diagnostics ------------------------------------------------------
    def report(self, key: str, level: bytes, message: str, log_changes: bool = True) -> None:
        """Record a problem; log it only when it is new, or changed (``log_changes``)."""
        with self._problems_lock:
            previous = self._problems.get(key)
            self._problems[key] = self._unpublished[key] = (level, message)
            if previous == (level, message) or (previous and not log_changes):
                return
        # Separate call sites: rclpy fixes the severity of each logging line on first use.
        if level == ERROR:
            self.get_logger().error(message)
        else:
            self.get_logger().warning(message)

    def clear(self, key: str) -> None:
        with self._problems_lock:
            previous = self._problems.pop(key, None)
        if previous is not None and self.context.ok():  # silent while shutting down
            self.get_logger().info(f"resolved: {previous[1]}")

    def _check_clock(self) -> None:
        """Under use_sim_time, ROS time stands at zero until /clock arrives: timers on it
        (the camera's, the filter's) do not fire and stamps are zero. Say so, once."""
        if not self.get_parameter("use_sim_time").value or self.get_clock().now().nanoseconds:
            self._clock_wait_since = time.monotonic()
            self.clear("clock")
        elif time.monotonic() - self._clock_wait_since >= CLOCK_WAIT_S:
            self.report(
                "clock",
                WARN,
                f"use_sim_time is true and no /clock for {CLOCK_WAIT_S:g} s: waiting for "
                "/clock (replay with fer_ros_replay --clock, or set use_sim_time false)",
            )

    def publish_diagnostics(self) -> None:
        # One read of the state: a transition running in another thread must not give a
        # status whose level and state disagree.
        state = self.lifecycle_state
        self._check_clock()
        if self.active:
            self._check_stall()
            self._guarded("alarm check", self.check_alarms)
        with self._problems_lock:
            problems = list({**self._unpublished, **self._problems}.values())
            self._unpublished.clear()
        status = DiagnosticStatus(
            name=self.get_fully_qualified_name(), hardware_id=self.hardware_id()
        )
        if problems:
            status.level = max(level for level, _ in problems)
            status.message = "; ".join(message for _, message in problems)
        elif state != "active":
            status.level, status.message = WARN, state
        else:
            status.level, status.message = OK, self.running_message()
        values = {"state": state}
        if self._input_subscription is not None or self.inputs.received:
            values.update(
                inputs_received=str(self.inputs.received),
                inputs_processed=str(self.inputs.processed),
                inputs_dropped=str(self.inputs.dropped),
                inputs_rejected=str(self.inputs_rejected),
                **{counter: str(count) for counter, count in self.input_counts.items()},
                stalled_s=f"{self.inputs.stalled_s():.1f}",
            )
        values.update(self.status_values())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)
