"""Drives the pipeline's lifecycle nodes through their standard change_state services."""

from __future__ import annotations

import threading

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.node import Node

# Configure everything first (models load), then activate consumers before producers so
# that no frame is published into a stage that is not listening yet.
CONFIGURE = Transition.TRANSITION_CONFIGURE
ACTIVATE = Transition.TRANSITION_ACTIVATE
DEACTIVATE = Transition.TRANSITION_DEACTIVATE


class LifecycleError(RuntimeError):
    pass


class LifecycleManager(Node):
    def __init__(self, node_fqns: list[str], timeout_s: float = 60.0) -> None:
        super().__init__("fer_ros_lifecycle_manager")
        self._timeout_s = timeout_s
        self._change_state = {
            fqn: self.create_client(ChangeState, f"{fqn}/change_state") for fqn in node_fqns
        }

    def bring_up(self) -> None:
        """Configure all nodes in order, then activate them in reverse order."""
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
        # Called from the main thread while an executor spins this node elsewhere.
        timeout_s = self._timeout_s if timeout_s is None else timeout_s
        client = self._change_state[fqn]
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise LifecycleError(f"{fqn} did not come up within {timeout_s:.0f} s")
        request = ChangeState.Request(transition=Transition(id=transition))
        future = client.call_async(request)
        finished = threading.Event()
        future.add_done_callback(lambda _: finished.set())
        finished.wait(timeout_s)
        response = future.result() if future.done() else None
        if response is None or not response.success:
            label = {CONFIGURE: "configure", ACTIVATE: "activate", DEACTIVATE: "deactivate"}
            raise LifecycleError(
                f"{fqn} failed to {label.get(transition, transition)}; see its log above"
            )
