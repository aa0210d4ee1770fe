"""EntityThread: per-frame subscriptions and timers served off the executor (real rclpy)."""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import pytest
from conftest import wait_for

pytest.importorskip("rclpy", reason="needs ROS 2 (rclpy)", exc_type=ImportError)
import rclpy
from rclpy import executors
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from fer_ros.nodes.entity_thread import EntityThread, NotOnExecutor

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class Received:
    def __init__(self, fail_on: str = "") -> None:
        self.data: list[str] = []
        self.threads: set[str] = set()
        self.errors: list[Exception] = []
        self._fail_on = fail_on

    def __call__(self, msg: String) -> None:
        self.threads.add(threading.current_thread().name)
        if msg.data == self._fail_on:
            raise ValueError(f"bad message {msg.data}")
        self.data.append(msg.data)


def publish_all(node: Any, topic: str, items: list[str], subscription: Any) -> None:
    publisher = node.create_publisher(String, topic, RELIABLE)
    assert wait_for(lambda: subscription.get_publisher_count() == 1, 5)
    for item in items:
        publisher.publish(String(data=item))
        time.sleep(0.005)


def test_the_thread_takes_every_message_and_the_executor_never_wakes_for_them(
    ros: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Count the wait sets the executor builds, one per wake, from its own thread only.
    builds: list[str] = []
    real = executors._rclpy

    def counted_wait_set(*args: Any) -> Any:
        builds.append(threading.current_thread().name)
        return real.WaitSet(*args)

    proxy = types.SimpleNamespace(
        **{n: getattr(real, n) for n in dir(real) if not n.startswith("__")}
    )
    proxy.WaitSet = counted_wait_set
    monkeypatch.setattr(executors, "_rclpy", proxy)

    node = rclpy.create_node("entity_thread_subscriber")
    received = Received()
    subscription = node.create_subscription(
        String, "/entity_thread_test", received, RELIABLE, callback_group=NotOnExecutor()
    )
    served = EntityThread(node, [subscription], "test.in", received.errors.append)
    served.start()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    done = threading.Event()

    def spin() -> None:
        while not done.is_set():
            executor.spin_once(timeout_sec=0.5)

    spinner = threading.Thread(target=spin, name="test-spinner")
    spinner.start()
    sender = rclpy.create_node("entity_thread_publisher")
    items = [str(i) for i in range(50)]
    publish_all(sender, "/entity_thread_test", items, subscription)
    assert wait_for(lambda: len(received.data) == len(items), 10)
    done.set()
    spinner.join()
    served.stop()
    node.destroy_subscription(subscription)  # after stop(): from this thread, safely

    assert received.data == items  # every message, in order
    assert received.threads == {"test.in"}
    assert received.errors == []
    # Woken only by its 0.5 s timeouts (about 1 s of publishing); woken per message, as
    # for a subscription it serves, it would build >= 50.
    assert builds.count("test-spinner") <= 10, builds.count("test-spinner")
    executor.shutdown()
    node.destroy_node()
    sender.destroy_node()


def test_a_callback_that_raises_is_reported_and_the_thread_goes_on(ros: Any) -> None:
    node = rclpy.create_node("entity_thread_failing")
    received = Received(fail_on="bad")
    subscription = node.create_subscription(
        String, "/entity_thread_failing", received, RELIABLE, callback_group=NotOnExecutor()
    )
    served = EntityThread(node, [subscription], "test.failing", received.errors.append)
    served.start()
    publish_all(node, "/entity_thread_failing", ["good", "bad", "after"], subscription)
    assert wait_for(lambda: received.data == ["good", "after"], 10), received.data
    served.stop()
    assert [str(e) for e in received.errors] == ["bad message bad"]
    node.destroy_node()


def test_a_timer_ticks_on_the_thread_until_stopped(ros: Any) -> None:
    node = rclpy.create_node("entity_thread_timer")
    ticks: list[str] = []
    timer = node.create_timer(
        0.01, lambda: ticks.append(threading.current_thread().name), NotOnExecutor()
    )
    served = EntityThread(node, [timer], "test.tick", pytest.fail)
    served.start()
    assert wait_for(lambda: len(ticks) >= 5, 5)
    served.stop()
    after_stop = len(ticks)
    time.sleep(0.1)  # ten periods
    assert len(ticks) == after_stop
    assert set(ticks) == {"test.tick"}
    node.destroy_timer(timer)
    node.destroy_node()


def test_an_entity_an_executor_may_run_is_refused(ros: Any) -> None:
    node = rclpy.create_node("entity_thread_refused")
    timer = node.create_timer(1.0, lambda: None)
    with pytest.raises(ValueError, match="NotOnExecutor"):
        EntityThread(node, [timer], "test.refused", pytest.fail)
    node.destroy_node()
