"""Drives the pipeline's lifecycle nodes through their standard lifecycle services."""

from __future__ import annotations

import threading
import time
from typing import Any

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.client import Client
from rclpy.node import Node

CONFIGURE = Transition.TRANSITION_CONFIGURE
ACTIVATE = Transition.TRANSITION_ACTIVATE
DEACTIVATE = Transition.TRANSITION_DEACTIVATE
# transition -> (its name, the state it leads to)
TRANSITIONS = {
    CONFIGURE: ("configure", State.PRIMARY_STATE_INACTIVE),
    ACTIVATE: ("activate", State.PRIMARY_STATE_ACTIVE),
    DEACTIVATE: ("deactivate", State.PRIMARY_STATE_INACTIVE),
}
ATTEMPT_S = 5.0  # a request can be lost while discovery settles; ask again after this


class LifecycleError(RuntimeError):
    pass


class LifecycleManager(Node):
    def __init__(self, node_fqns: list[str], timeout_s: float = 60.0) -> None:
        super().__init__("fer_ros_lifecycle_manager")
        self._timeout_s = timeout_s
        self._change_state = {
            fqn: self.create_client(ChangeState, f"{fqn}/change_state") for fqn in node_fqns
        }
        self._get_state = {
            fqn: self.create_client(GetState, f"{fqn}/get_state") for fqn in node_fqns
        }

    def bring_up(self) -> None:
        """Configure all nodes in order (models load), then activate them in reverse
        order, so that no stage publishes into one that is not listening yet."""
        for fqn in self._change_state:
            self._change(fqn, CONFIGURE)
        for fqn in reversed(self._change_state):
            self._change(fqn, ACTIVATE)

    def _change(self, fqn: str, transition: int, timeout_s: float | None = None) -> None:
        """Request a transition; runs in the main thread while an executor spins us.

        A request can be lost while discovery settles. When it goes unanswered, the node's
        state decides: the goal state means done; the unchanged start state means lost,
        so ask again; no answer means the node is busy in the transition, so keep waiting.
        """
        name, goal = TRANSITIONS[transition]
        deadline = time.monotonic() + (self._timeout_s if timeout_s is None else timeout_s)
        client = self._change_state[fqn]
        if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
            raise LifecycleError(f"{fqn} did not come up in time")
        request = ChangeState.Request(transition=Transition(id=transition))
        future = client.call_async(request)
        start_state: int | None = None
        while time.monotonic() < deadline:
            if _wait(future, min(ATTEMPT_S, deadline - time.monotonic())):
                if future.result() is not None and future.result().success:
                    return
                if start_state is not None and self._state(fqn) == goal:
                    return  # the resent request failed because the first one succeeded
                break  # an answer of failure is final
            current = self._state(fqn)
            if current is None:
                continue  # busy in the transition: keep waiting for its answer
            if current == goal:
                return
            if start_state is None:
                start_state = current
            elif current == start_state:  # unchanged twice: the request was lost
                client.remove_pending_request(future)
                future = client.call_async(request)
        raise LifecycleError(f"{fqn} failed to {name}; see its log above")

    def _state(self, fqn: str) -> int | None:
        """The node's lifecycle state id, or None when it does not answer in time."""
        state = _call(self._get_state[fqn], GetState.Request(), ATTEMPT_S)
        return None if state is None else state.current_state.id


def _wait(future: Any, timeout_s: float) -> bool:
    if future.done():
        return True
    finished = threading.Event()
    future.add_done_callback(lambda _: finished.set())
    return finished.wait(max(timeout_s, 0.0))


def _call(client: Client, request: Any, timeout_s: float) -> Any:
    future = client.call_async(request)
    if not _wait(future, timeout_s):
        client.remove_pending_request(future)
        return None
    return future.result()
