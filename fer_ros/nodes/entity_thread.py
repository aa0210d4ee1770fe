"""A node's per-frame subscriptions and timers, served on a thread of their own.

rclpy's executors rebuild their wait set in Python from every entity of every node they
hold, each time they wake, and a subscription's QoS events, readied by Fast DDS with the
reader's data, wake them again with nothing to run: measured here at 0.5 ms of CPU per
wake for a node with one timer, 1.1 ms for six lifecycle nodes (docs/performance.md,
"Executor wake-ups"). The camera's timer, each stage's input subscription, the console
monitor's and the bag recorder's subscriptions wake at camera rate, so an
:class:`EntityThread` waits for them instead, on a wait set that holds only them, their
QoS events and a stop signal (the way ``rclpy.wait_for_message`` waits). The executor
keeps everything else of the node: services, parameters, the diagnostics timer.

Such entities belong to a :class:`NotOnExecutor` callback group, which tells every
executor that it may never run them, so no executor waits on them either. That also
makes them safe to destroy from any thread once their EntityThread has stopped: rclpy
9.1's executors raise ``InvalidHandle`` when a subscription is destroyed while they
build a wait set with its QoS events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Sequence
from contextlib import ExitStack
from typing import Any

from rclpy.callback_groups import CallbackGroup
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.subscription import Subscription
from rclpy.timer import Timer

from fer_ros.core.threads import name_os_thread

# Also wake this often to notice a context shut down by a signal, which triggers no
# guard condition of ours.
CONTEXT_POLL_NS = 500_000_000


class NotOnExecutor(CallbackGroup):
    """Entities an :class:`EntityThread` serves: no executor waits on or runs them."""

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False

    def ending_execution(self, entity: Any) -> None:
        pass


class EntityThread:
    """Waits for the messages of ``entities``' subscriptions and the periods of their
    timers, and runs their callbacks, on one thread.

    The entities are made in a ``NotOnExecutor`` group; ``start()`` once, ``stop()``
    before they are destroyed. A callback that raises is handed to ``on_error`` and the
    thread goes on, as a stage must keep running after one bad input."""

    def __init__(
        self,
        node: Node,
        entities: Sequence[Subscription[Any] | Timer],
        name: str,
        on_error: Callable[[Exception], None],
    ) -> None:
        for entity in entities:
            if not isinstance(entity.callback_group, NotOnExecutor):
                raise ValueError(f"{name}: make its entities with callback_group=NotOnExecutor()")
        self._context = node.context
        self._subscriptions = [e for e in entities if isinstance(e, Subscription)]
        self._timers = [e for e in entities if isinstance(e, Timer)]
        # A subscription's QoS events (messages lost, incompatible QoS) are served here too.
        self._events: list[Any] = [h for s in self._subscriptions for h in s.event_handlers]
        self._name = name
        self._on_error = on_error
        self._stopping = False
        self._wake = GuardCondition(None, None, context=node.context)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Return once the thread has ended (after the callback in progress, if any)."""
        if self._stopping:
            return
        self._stopping = True
        if self._thread.is_alive():
            self._wake.trigger()
            if self._thread is not threading.current_thread():
                self._thread.join()
        self._wake.destroy()

    def _run(self) -> None:
        name_os_thread(self._name)
        subscriptions = [s.handle for s in self._subscriptions]
        timers = [t.handle for t in self._timers]
        with ExitStack() as held:  # the handles stay valid while this thread waits on them
            try:
                for handle in (self._context.handle, self._wake.handle, *subscriptions, *timers):
                    held.enter_context(handle)
                for event in self._events:
                    held.enter_context(event)
            except Exception:  # destroyed or shut down before the thread ran
                return
            wait_set = _rclpy.WaitSet(
                len(subscriptions), 1, len(timers), 0, 0, len(self._events), self._context.handle
            )
            while not self._stopping:
                wait_set.clear_entities()
                for subscription in subscriptions:
                    wait_set.add_subscription(subscription)
                for timer in timers:
                    wait_set.add_timer(timer)
                wait_set.add_guard_condition(self._wake.handle)
                for event in self._events:
                    event.add_to_wait_set(wait_set)
                try:
                    wait_set.wait(CONTEXT_POLL_NS)
                except Exception:
                    if self._context.ok():
                        raise
                    return  # the context ended while waiting
                if self._stopping or not self._context.ok():
                    return
                self._serve(wait_set)

    def _serve(self, wait_set: Any) -> None:
        for event in self._events:
            if event.is_ready(wait_set):
                self._guarded(run_coroutine, event.execute(event.take_data()))
        for index, timer in enumerate(self._timers):
            if wait_set.is_ready("timer", index):
                self._guarded(call_timer, timer)
        for index, subscription in enumerate(self._subscriptions):
            if wait_set.is_ready("subscription", index):
                self._guarded(take_message, subscription)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except Exception as error:
            if self._context.ok():
                self._on_error(error)


def call_timer(timer: Timer) -> None:
    timer.handle.call_timer()  # starts the next period
    timer.callback()


def take_message(subscription: Subscription[Any]) -> None:
    taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    if taken is not None:
        subscription.callback(taken[0])


def run_coroutine(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never waits (an event handler's ``execute``) to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("an event callback waited; nothing here can resume it")
