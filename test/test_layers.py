"""The lower layers (core, snn, power, backends) import nothing from ROS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

LOWER_LAYERS = ["fer_ros.core", "fer_ros.snn", "fer_ros.power", "fer_ros.backends"]
# ROS-free modules of the upper layers that benchmarks and notebooks use
ROS_FREE_MODULES = [
    "fer_ros.backends.settings",
    "fer_ros.bringup.graph_plan",
    "fer_ros.compare.cli",
]


def test_lower_layers_import_without_ros():
    # A fresh interpreter in which every ROS package is unimportable: a meta path finder
    # refuses rclpy, rcl_interfaces and every *_msgs / *_srvs package (fer_msgs included).
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        from importlib.abc import MetaPathFinder

        class NoRos(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in ("rclpy", "rcl_interfaces", "launch", "launch_ros") or (
                    top.endswith(("_msgs", "_srvs"))
                ):
                    raise ImportError(f"{name} is made unimportable by this test")
                return None

        sys.meta_path.insert(0, NoRos())
        for layer in LAYERS:
            package = importlib.import_module(layer)
            for info in pkgutil.walk_packages(package.__path__, layer + "."):
                importlib.import_module(info.name)
        for module in MODULES:
            importlib.import_module(module)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "rcl_interfaces"))
        assert not leaked, leaked
        print("ok")
        """
    )
    script = script.replace("LAYERS", repr(LOWER_LAYERS)).replace("MODULES", repr(ROS_FREE_MODULES))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_the_finder_does_refuse_ros():
    """The check above could pass vacuously if the finder refused nothing."""
    script = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder
        class NoRos(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "rclpy":
                    raise ImportError("refused")
        sys.meta_path.insert(0, NoRos())
        import fer_ros.nodes.pipeline_base
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0 and "refused" in done.stderr
