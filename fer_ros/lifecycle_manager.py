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

    def bring_down(self) -> None:
        for fqn in self._change_state:
            try:
                self._change(fqn, DEACTIVATE, timeout_s=5.0)
            except LifecycleError as error:
                self.get_logger().warning(str(error))

    def _change(self, fqn: str, transition: int, timeout_s: float | None = None) -> None:
        """Request a transition; runs in the main thread while an executor spins us."""
        name, goal = TRANSITIONS[transition]
        deadline = time.monotonic() + (self._timeout_s if timeout_s is None else timeout_s)
        client = self._change_state[fqn]
        if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
            raise LifecycleError(f"{fqn} did not come up in time")
        while time.monotonic() < deadline:
            request = ChangeState.Request(transition=Transition(id=transition))
            response = _call(client, request, min(ATTEMPT_S, deadline - time.monotonic()))
            if response is not None and response.success:
                return
            # Refused, or no answer: maybe an earlier request did get through.
            state = _call(self._get_state[fqn], GetState.Request(), ATTEMPT_S)
            if state is not None and state.current_state.id == goal:
                return
            if response is not None:  # an answer of failure is final
                break
        raise LifecycleError(f"{fqn} failed to {name}; see its log above")


def _call(client: Client, request: Any, timeout_s: float) -> Any:
    future = client.call_async(request)
    finished = threading.Event()
    future.add_done_callback(lambda _: finished.set())
    if not finished.wait(max(timeout_s, 0.0)):
        client.remove_pending_request(future)
        return None
    return future.result()
