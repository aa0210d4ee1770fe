"""Run a profile's graph in-process, exactly as fer_ros_bringup does."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from conftest import wait_for
from node_harness import destroy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

from fer_ros.bringup.graph_plan import node_plan, normalise_namespace
from fer_ros.bringup.lifecycle_manager import LifecycleManager
from fer_ros.bringup.local_graph import create_node
from fer_ros.core.profiles import profile_nodes, profile_path
from fer_ros.nodes.pipeline_base import PipelineNode

# Deep enough for every frame of the demo video: a graph on a loaded test machine then
# answers late instead of skipping frames (newest-wins is tested on its own).
EVERY_FRAME = 100


def tuned_profile(
    tmp_path: Path, base: str = "cpu", camera_fps: float | None = None, queue_depth: int = 1
) -> Path:
    """A copy of profile ``base`` with the camera at ``camera_fps`` and every stage's
    ``input_queue_depth`` set."""
    sections = yaml.safe_load(profile_path(base).read_text())
    nodes = [n for n in profile_nodes(profile_path(base)) if n != "camera"]
    for node in nodes:
        sections.setdefault(f"/**/{node}", {"ros__parameters": {}})
        sections[f"/**/{node}"]["ros__parameters"]["input_queue_depth"] = queue_depth
    if camera_fps is not None:
        sections["/**/camera"] = {"ros__parameters": {"fps": camera_fps}}
    path = tmp_path / f"{base}_test.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


class Graph:
    """A profile's nodes and a lifecycle manager on the test's executor.

    Two graphs in one test need namespaces of their own (``namespace``): their lifecycle
    services then have names of their own too, whatever is left of the other graph."""

    def __init__(
        self,
        executor: MultiThreadedExecutor,
        profile: Path,
        only: tuple[str, ...] = (),
        every_node: dict[str, object] | None = None,
        namespace: str = "",
        **camera: object,
    ) -> None:
        """``every_node`` parameters are set on each node that declares them, ``camera``
        ones on the camera; both before configure. ``namespace`` holds every node and
        topic of the graph (``topic`` gives a topic's full name)."""
        self.namespace = normalise_namespace(namespace)
        names = [n for n in profile_nodes(profile) if not only or n in only]
        fqns = [f"{self.namespace}/{n}" for n in names]
        self.manager = LifecycleManager(fqns, namespace=self.namespace or "/")
        # A node of the same name that is still in the ROS graph would share our nodes'
        # lifecycle service names: requests could go to it, wait_for_service would count it.
        assert wait_for(lambda: not self._listed(fqns), 10), (
            f"still in the ROS graph: {', '.join(self._listed(fqns))}; give this graph a "
            "namespace of its own"
        )
        self.nodes: dict[str, PipelineNode] = {}
        for name in names:
            node = create_node(node_plan(profile, name, self.namespace))
            values = {k: v for k, v in (every_node or {}).items() if node.has_parameter(k)}
            values.update(camera if name == "camera" else {})
            if values:
                node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
            self.nodes[name] = node
            executor.add_node(node)
        executor.add_node(self.manager)
        self._executor = executor

    def topic(self, name: str) -> str:
        """The full name of the graph's topic ``name`` (``expressions`` -> /ns/expressions)."""
        return f"{self.namespace}/{name.lstrip('/')}"

    def _listed(self, fqns: list[str]) -> list[str]:
        """Those of ``fqns`` that the ROS graph lists."""
        listed = {f"{ns.rstrip('/')}/{n}" for n, ns in self.manager.get_node_names_and_namespaces()}
        return [fqn for fqn in fqns if fqn in listed]

    def run(self, timeout_s: float = 60.0) -> None:
        """Bring the graph up and wait until a finite camera source has been played."""
        self.manager.bring_up()
        camera = self.nodes.get("camera")
        if camera is not None:
            assert wait_for(lambda: camera.end_of_stream, timeout_s), "camera did not finish"
            self.wait_until_idle()

    def wait_until_idle(self, timeout_s: float = 30.0) -> None:
        """Until every stage has processed all it received (twice in a row, to let the
        last messages cross DDS between stages)."""
        stages = [n for n in self.nodes.values() if n.inputs.received]
        for _ in range(2):
            assert wait_for(lambda: all(s.inputs.idle for s in stages), timeout_s)
            time.sleep(0.2)

    def release(self) -> None:
        """Stop and destroy the nodes; they have left the ROS graph when this returns."""
        fqns = [node.get_fully_qualified_name() for node in self.nodes.values()]
        for node in self.nodes.values():
            node.release()
            destroy(node)
        assert wait_for(lambda: not self._listed(fqns), 10), f"not gone: {self._listed(fqns)}"
        destroy(self.manager)
