"""Keeps a ``--processes`` graph running: stages that die are restarted, stages that stop
answering are reported, both on /diagnostics from outside the failing process.

A process that dies cannot report its own death, and a frozen one (SIGSTOP, a deadlock)
cannot run its own watchdog, so ``fer_ros_bringup`` watches its children: a child that
exits is reported at once and started again at once (after a back-off if that fails: 1 s,
doubling to 30 s), and brought back to active through the lifecycle manager; one that no
longer answers its lifecycle ``get_state`` service within ``answer_timeout_s`` is marked
stale (the diagnostic_aggregator's notion), cleared when it answers again. Each stage has
a status ``fer_ros_bringup: <stage>`` on /diagnostics: ERROR naming the stage while it is
down or stale, OK otherwise. A stage that fails ``max_restarts`` starts in a row ends the
run with a non-zero exit code.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from fer_ros.bringup.graph_plan import NodePlan
from fer_ros.bringup.lifecycle_manager import LifecycleError, LifecycleManager

FIRST_DELAY_S = 1.0  # after a failed restart; the first restart is immediate
MAX_DELAY_S = 30.0
OK_, ERROR_ = DiagnosticStatus.OK, DiagnosticStatus.ERROR


@dataclass
class Stage:
    plan: NodePlan
    process: subprocess.Popen[bytes]
    restarts: int = 0
    failed_starts: int = 0  # in a row: reset once the stage is active again
    down_since: float | None = None
    restart_at: float = 0.0
    stale: bool = False
    problem: str = ""
    values: dict[str, str] = field(default_factory=dict)


class ProcessSupervisor:
    """Watches the children of ``fer_ros_bringup --processes`` (call :meth:`check` often)."""

    def __init__(
        self,
        plans: list[NodePlan],
        spawn: Callable[[NodePlan], subprocess.Popen[bytes]],
        manager: LifecycleManager,
        reporter: Node,
        max_restarts: int = 5,
        answer_timeout_s: float = 1.0,
    ) -> None:
        self._spawn = spawn
        self._manager = manager
        self._max_restarts = max_restarts
        self._answer_timeout_s = answer_timeout_s
        self._plans = list(plans)
        self.stages: list[Stage] = []  # started so far: close() ends exactly these
        self._log = reporter.get_logger()
        self._diagnostics = reporter.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._reporter = reporter
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._health = threading.Thread(target=self._watch_answers, daemon=True)
        self.gave_up: str = ""  # why the run must end, once a stage is beyond its budget
        self._published_at = 0.0

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [s.process for s in self.stages]

    def start(self) -> None:
        """Start every stage's process, one by one, so a stop in between leaves none behind."""
        for plan in self._plans:
            self.stages.append(Stage(plan, self._spawn(plan)))

    def start_watching(self) -> None:
        """After bring-up: from now on a stage that does not answer is stale."""
        self._health.start()

    def check(self) -> None:
        """Notice dead children, restart those whose back-off is over; publish status."""
        now = time.monotonic()
        for stage in self.stages:
            code = stage.process.poll()
            if code is not None and not self._manager.context.ok():
                return  # the run is stopping (a signal reached the children too)
            if code is not None and stage.down_since is None:
                stage.down_since = now
                failed = stage.failed_starts
                delay = 0.0 if failed == 0 else min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (failed - 1))
                stage.restart_at = now + delay
                stage.problem = f"process died (exit code {code}); restarting in {delay:g} s"
                self._log.error(f"stage {stage.plan.name}: {stage.problem}")  # once an outage
                self._publish()  # ERROR out before the restart (which blocks this loop)
            if stage.down_since is not None and now >= stage.restart_at:
                self._restart(stage)
        if time.monotonic() - self._published_at >= 1.0:  # /diagnostics at 1 Hz
            self._published_at = time.monotonic()
            self._publish()

    def _restart(self, stage: Stage) -> None:
        if stage.failed_starts >= self._max_restarts:
            self.gave_up = (
                f"stage {stage.plan.name} failed {stage.failed_starts} restarts in a row: "
                f"{stage.problem}"
            )
            return
        stage.failed_starts += 1
        stage.restarts += 1
        stage.process = self._spawn(stage.plan)
        try:
            self._manager.bring_back(stage.plan.fqn)
        except LifecycleError as error:
            stage.problem = f"restarted, but {error}"
            self._log.error(f"stage {stage.plan.name}: {stage.problem}")
            stage.process.kill()
            stage.process.wait()
            stage.down_since = None  # the next check sees the dead child and backs off
            return
        self._log.info(
            f"stage {stage.plan.name} is back after "
            f"{time.monotonic() - (stage.down_since or 0):.1f} s (restart {stage.restarts})"
        )
        stage.failed_starts = 0
        stage.down_since = None
        stage.problem = ""

    def _watch_answers(self) -> None:
        """A live process whose lifecycle service does not answer is frozen (stale)."""
        while not self._stop.wait(0.5):
            for stage in self.stages:
                if stage.down_since is not None or stage.process.poll() is not None:
                    continue
                try:
                    state = self._manager.state_of(stage.plan.fqn, self._answer_timeout_s)
                except Exception:  # rclpy's "context is invalid" once a signal stopped it
                    if self._stopping():
                        return
                    raise
                if self._stopping():
                    return  # shutting down: no answer is expected any more
                with self._lock:
                    if state is None and not stage.stale:
                        stage.stale = True
                        self._log.error(
                            f"stage {stage.plan.name} does not answer (frozen or overloaded)"
                        )
                    elif state is not None and stage.stale:
                        stage.stale = False
                        self._log.info(f"stage {stage.plan.name} answers again")

    def _stopping(self) -> bool:
        return self._stop.is_set() or not self._manager.context.ok()

    def _publish(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self._reporter.get_clock().now().to_msg()
        with self._lock:
            for stage in self.stages:
                status = DiagnosticStatus(name=f"fer_ros_bringup: {stage.plan.name}")
                status.hardware_id = f"pid {stage.process.pid}"
                if stage.down_since is not None:
                    status.level, status.message = ERROR_, f"{stage.plan.name}: {stage.problem}"
                elif stage.stale:
                    status.level = ERROR_
                    status.message = f"{stage.plan.name} does not answer (frozen or overloaded)"
                else:
                    status.level, status.message = OK_, "running"
                status.values = [KeyValue(key="restarts", value=str(stage.restarts))]
                msg.status.append(status)
        self._diagnostics.publish(msg)

    def close(self, wait_s: float = 10.0) -> None:
        """Stop watching, then end every child: SIGTERM (each stops cleanly), SIGKILL after
        ``wait_s``."""
        self._stop.set()
        if self._health.is_alive():
            self._health.join(timeout=5)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
