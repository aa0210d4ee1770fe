"""Drives the pipeline's lifecycle nodes through their standard lifecycle services.

``fer_ros_bringup`` uses it in-process; launch files start it as ``fer_ros_lifecycle_manager``
(one node beside the graph, as Nav2's lifecycle manager is): it configures the nodes in
graph order, activates them in reverse, then supervises them: a node whose process
died and was respawned (launch's ``respawn``) comes back unconfigured and is brought back
to active. A node that a user deactivated by hand, and that never went away, is left alone.
While a node does not answer (its process died, or it is frozen), the manager publishes
ERROR for it on /diagnostics (status ``fer_ros_lifecycle_manager: <node>``, OK otherwise,
at 1 Hz): a dead process cannot report its own death.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
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
# A request can be lost while discovery settles (a respawned node's service is listed
# before its reply writer is matched); ask again after this. 5 s cost a respawned stage
# 5 s of its recovery whenever the first request was lost, the usual case.
ATTEMPT_S = 1.0
PRIMARY_STATES = (
    State.PRIMARY_STATE_UNCONFIGURED,
    State.PRIMARY_STATE_INACTIVE,
    State.PRIMARY_STATE_ACTIVE,
)  # not a transition in progress
SUPERVISE_TIMEOUT_S = 2.0  # silent this long (a live node answers in milliseconds): reported
# Each get_state while supervising waits this long, and a node that did not answer is asked
# again this often: a killed node's service stays listed for a while, and its respawned
# process's first requests are often lost while discovery settles. One 2 s wait per request
# after a 1 s period cost a killed stage up to 4 s of its recovery under ros2 launch
# (kill -9 to expressions again: camera 6.9 s, inference 4.2 s).
SUPERVISE_ATTEMPT_S = 0.5
# A node that has just come up answers only once discovery has matched its services
# (measured 1.5-3.4 s after its process made the node with Fast DDS's default 3 s
# announcements, about 1.8 s with the profiles' 1 s); until then a get_state goes
# unanswered, so ask again this soon rather than after a whole ATTEMPT_S.
COMING_UP_ATTEMPT_S = 0.25
SILENT_PERIOD_S = 0.2


class LifecycleError(RuntimeError):
    pass


class LifecycleManager(Node):
    def __init__(
        self, node_fqns: list[str] | None = None, timeout_s: float = 60.0, **kwargs: Any
    ) -> None:
        super().__init__("fer_ros_lifecycle_manager", **kwargs)
        self._timeout_s = timeout_s
        if node_fqns is None:  # the executable: node names relative to its own namespace
            names = self.declare_parameter("nodes", [""]).value or []
            namespace = self.get_namespace().rstrip("/")
            node_fqns = [f"{namespace}/{n}" for n in names if n]
            if not node_fqns:
                raise ValueError("parameter nodes names no node to manage")
        self.node_fqns = list(node_fqns)
        self._change_state = {
            fqn: self.create_client(ChangeState, f"{fqn}/change_state") for fqn in node_fqns
        }
        self._get_state = {
            fqn: self.create_client(GetState, f"{fqn}/get_state") for fqn in node_fqns
        }

    def bring_up(self) -> None:
        """Configure all nodes in order (models load), then activate them in reverse
        order, so that no stage publishes into one that is not listening yet. Nodes that
        are already configured or active (a restarted manager) are adopted as they are."""
        states = {fqn: self._state_when_up(fqn) for fqn in self._change_state}
        for fqn, state in states.items():
            if state == State.PRIMARY_STATE_UNCONFIGURED:
                self._change(fqn, CONFIGURE)
        for fqn in reversed(self._change_state):
            if states[fqn] != State.PRIMARY_STATE_ACTIVE:
                self._change(fqn, ACTIVATE)
        adopted = [f for f, s in states.items() if s != State.PRIMARY_STATE_UNCONFIGURED]
        if adopted:
            self.get_logger().info(f"adopted nodes already configured: {', '.join(adopted)}")

    def bring_back(self, fqn: str) -> None:
        """A node whose process was restarted: configure and activate it again."""
        if self._state_when_up(fqn) == State.PRIMARY_STATE_UNCONFIGURED:
            self._change(fqn, CONFIGURE)
        if self._state(fqn) != State.PRIMARY_STATE_ACTIVE:
            self._change(fqn, ACTIVATE)

    def state_of(self, fqn: str, timeout_s: float) -> int | None:
        """The node's lifecycle state, or None when it does not answer within timeout_s."""
        if not self._get_state[fqn].service_is_ready():
            return None
        return self._state(fqn, timeout_s)

    def _state_when_up(self, fqn: str) -> int | None:
        """The state once the node's services are up (LifecycleError if they never are)."""
        if not self._get_state[fqn].wait_for_service(timeout_sec=self._timeout_s):
            raise LifecycleError(f"{fqn} did not come up in time")
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            if not self.context.ok():
                raise LifecycleError(f"shut down while waiting for {fqn}")
            state = self._state(fqn, COMING_UP_ATTEMPT_S)
            if state is not None:
                return state
        raise LifecycleError(f"{fqn} does not answer get_state")

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
            if not self.context.ok():  # a signal shut the process down: nobody will answer
                raise LifecycleError(f"shut down while {fqn} was to {name}")
            if _wait(future, min(ATTEMPT_S, deadline - time.monotonic()), self.context):
                if future.result() is not None and future.result().success:
                    return
                if self._state(fqn) == goal:
                    # a failure answer while the node is where we want it: a resent request
                    # after the first succeeded, or the answer of a node of the same name
                    # that is going away (discovery still lists its service)
                    return
                break  # an answer of failure is final
            current = self._state(fqn)
            if current is None:
                continue  # busy in the transition: keep waiting for its answer
            if current == goal:
                return
            if start_state is None:
                start_state = current
            elif current == start_state and current in PRIMARY_STATES:  # lost: ask again
                client.remove_pending_request(future)
                future = client.call_async(request)
        raise LifecycleError(f"{fqn} failed to {name}; see its log above")

    def supervise(self, stop: threading.Event, period_s: float = 1.0) -> None:
        """Until ``stop`` or shutdown: a node that stopped answering and came back
        unconfigured (its process was respawned) is configured and activated again; each
        node's status goes to /diagnostics (ERROR while it does not answer)."""
        diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        silent: dict[str, float] = {}  # node -> since when it does not answer
        lost: dict[str, str] = {}  # node -> what is wrong, reported on /diagnostics
        published_at = 0.0
        while not stop.wait(SILENT_PERIOD_S if silent else period_s) and self.context.ok():
            for fqn in self.node_fqns:
                # A dead process's services vanish from the graph: no need to wait on it.
                ready = self._get_state[fqn].service_is_ready()
                state = self._state(fqn, SUPERVISE_ATTEMPT_S) if ready else None
                if state is None:
                    since = silent.setdefault(fqn, time.monotonic())
                    if fqn not in lost and (
                        not ready or time.monotonic() - since >= SUPERVISE_TIMEOUT_S
                    ):
                        self.get_logger().warning(f"{fqn} does not answer; waiting for it")
                        published_at = 0.0  # ERROR out at once
                        lost[fqn] = (
                            f"{fqn} does not answer (process died or frozen); waiting for "
                            "it to be respawned, then configuring and activating it"
                        )
                elif fqn in silent and state == State.PRIMARY_STATE_UNCONFIGURED:
                    # it went away and came back: respawned
                    self.get_logger().info(f"{fqn} is back; configuring and activating it")
                    try:
                        self._change(fqn, CONFIGURE)
                        self._change(fqn, ACTIVATE)
                        del silent[fqn]
                        lost.pop(fqn, None)
                    except LifecycleError as error:
                        if not self.context.ok():
                            return  # the stop, not a failure
                        self.get_logger().error(str(error))
                        lost[fqn] = f"restarted, but {error}"
                elif state == State.PRIMARY_STATE_ACTIVE or fqn not in lost:
                    silent.pop(fqn, None)  # answers (a late answer of a busy node)
                    lost.pop(fqn, None)
            if self.context.ok() and time.monotonic() - published_at >= 1.0:
                published_at = time.monotonic()
                diagnostics.publish(self._diagnostics(lost))

    def _diagnostics(self, lost: dict[str, str]) -> DiagnosticArray:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for fqn in self.node_fqns:
            status = DiagnosticStatus(name=f"fer_ros_lifecycle_manager: {fqn}")
            if fqn in lost:
                status.level, status.message = DiagnosticStatus.ERROR, lost[fqn]
            else:
                status.level, status.message = DiagnosticStatus.OK, "answers"
            msg.status.append(status)
        return msg

    def _state(self, fqn: str, timeout_s: float = ATTEMPT_S) -> int | None:
        """The node's lifecycle state id, or None when it does not answer in time."""
        state = _call(self._get_state[fqn], GetState.Request(), timeout_s, self.context)
        return None if state is None else state.current_state.id


def _wait(future: Any, timeout_s: float, context: Any = None) -> bool:
    """True once ``future`` is done; False after ``timeout_s`` or when ``context`` shuts
    down (checked every 0.1 s: its executor no longer completes futures)."""
    if future.done():
        return True
    finished = threading.Event()
    future.add_done_callback(lambda _: finished.set())
    deadline = time.monotonic() + max(timeout_s, 0.0)
    while not finished.wait(min(0.1, max(deadline - time.monotonic(), 0.0))):
        if time.monotonic() >= deadline or (context is not None and not context.ok()):
            return False
    return True


def _call(client: Client, request: Any, timeout_s: float, context: Any) -> Any:
    future = client.call_async(request)
    if not _wait(future, timeout_s, context):
        client.remove_pending_request(future)
        return None
    return future.result()


def main(args: list[str] | None = None) -> None:
    """``fer_ros_lifecycle_manager``: bring the ``nodes`` up, then keep them up."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from fer_ros.nodes.executors import init_rclpy, make_executor, spin_in_background

    init_rclpy(args)  # from here Ctrl-C shuts ROS down without a KeyboardInterrupt
    # The executor first: made once a signal shut the context down, rclpy's Executor fails
    # in __init__ and then prints a second traceback from __del__.
    executor = make_executor()
    manager: LifecycleManager | None = None
    spinner = None
    stop = threading.Event()
    try:
        manager = LifecycleManager()
        executor.add_node(manager)
        spinner = spin_in_background(executor)
        manager.bring_up()
        manager.get_logger().info(f"all active: {', '.join(manager.node_fqns)}")
        manager.supervise(stop)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (LifecycleError, ValueError) as error:  # ValueError: no nodes to manage
        if rclpy.ok():  # a real failure; after SIGINT/SIGTERM it is only the stop
            rclpy.logging.get_logger("fer_ros_lifecycle_manager").error(str(error))
            raise SystemExit(1) from error
    except Exception:
        if rclpy.ok():
            raise
        # else a signal shut the context down while the manager was being made: a stop
    finally:
        stop.set()
        executor.shutdown()
        if spinner is not None:
            spinner.join(timeout=5)
        if manager is not None:
            manager.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
