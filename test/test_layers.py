"""The package's layers: lower ones import nothing from ROS, none imports a layer above it,
and no module imports itself through others (no import circle).

Order: core < snn, power < backends < nodes < bringup. training (the [train] extra) may use
core, snn and backends; compare (the paper's comparison) anything below nodes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO

LOWER_LAYERS = ["fer_ros.core", "fer_ros.snn", "fer_ros.power", "fer_ros.backends"]
# ROS-free modules of the upper layers that benchmarks and notebooks use
ROS_FREE_MODULES = [
    "fer_ros.bringup.graph_plan",
    "fer_ros.compare.cli",
]
# layer -> the other fer_ros packages its modules may import
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "snn": {"core"},
    "power": {"core"},
    "backends": {"core", "snn", "power"},
    "nodes": {"core", "snn", "power", "backends"},
    "bringup": {"core", "snn", "power", "backends", "nodes"},
    "training": {"core", "snn", "backends"},
    "compare": {"core", "snn", "power", "backends", "training"},
}
# (module, layer it imports when a function runs): the documented exceptions
EXCEPTIONS = {
    # the optional --graph measurement starts a whole graph as fer_ros_bringup does
    ("fer_ros.compare.graph", "bringup"),
}


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


LAYER_SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys, warnings
    from importlib.abc import MetaPathFinder

    warnings.simplefilter("ignore")
    MAY_IMPORT = {may_import!r}
    ABOVE = "is above the layer being imported"

    class Above(MetaPathFinder):
        layer = ""

        def find_spec(self, name, path=None, target=None):
            parts = name.split(".")
            if parts[0] == "fer_ros" and len(parts) > 1 and parts[1] in MAY_IMPORT:
                if parts[1] != self.layer and parts[1] not in MAY_IMPORT[self.layer]:
                    raise ImportError(f"{{name}} {{ABOVE}} ({{self.layer}})")
            return None

    finder = Above()
    sys.meta_path.insert(0, finder)
    report = {{"imported": 0, "violations": [], "unavailable": []}}
    for layer in MAY_IMPORT:
        for name in [m for m in sys.modules if m == "fer_ros" or m.startswith("fer_ros.")]:
            del sys.modules[name]  # every layer starts from a fresh fer_ros
        finder.layer = layer
        package = importlib.import_module(f"fer_ros.{{layer}}")
        names = [
            i.name
            for i in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
            if not i.name.endswith(".__main__")  # a command line: runs when imported
        ]
        for name in [package.__name__, *names]:
            try:
                importlib.import_module(name)
                report["imported"] += 1
            except ImportError as error:  # refused by the finder, or a missing extra
                key = "violations" if ABOVE in str(error) else "unavailable"
                report[key].append(f"{{name}}: {{error}}")
    print(json.dumps(report))
    """
)


def test_each_layer_imports_with_the_layers_above_it_unimportable():
    """Every module of a layer imports in an interpreter where a meta path finder refuses
    the fer_ros packages that layer may not use (modules whose optional dependencies,
    such as rclpy or torch, are missing here are left out). Lazy imports inside functions
    are checked from the source below (:data:`EXCEPTIONS` are only allowed there)."""
    script = LAYER_SCRIPT.format(may_import=MAY_IMPORT)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["violations"], "\n".join(report["violations"])
    assert report["imported"] > 100, report


def test_the_layer_finder_does_refuse():
    """The check above could pass vacuously if the finder refused nothing."""
    script = LAYER_SCRIPT.format(may_import={"core": set(), "snn": set()})  # snn without core
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fer_ros.core" in done.stdout and "is above the layer" in done.stdout


def _module_imports() -> dict[str, set[str]]:
    """Every fer_ros module and the fer_ros modules it imports anywhere (also inside
    functions), from the source."""
    files = {}
    for path in (REPO / "fer_ros").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    imports: dict[str, set[str]] = {}
    for module, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:  # ``from fer_ros.training import graph``: a module
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in files else node.module)
        imports[module] = {m for m in found if m in files and m != module}
    return imports


def test_no_import_reaches_above_its_layer():
    """Also imports inside functions (lazy ones), which the interpreter test cannot see."""
    wrong = []
    for module, targets in _module_imports().items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in MAY_IMPORT:
            continue
        for target in targets:
            layer = target.split(".")[1] if target.count(".") else None
            if layer is None or layer == parts[1] or layer in MAY_IMPORT[parts[1]]:
                continue
            if (module, layer) not in EXCEPTIONS:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle():
    """No module imports itself through others, counting imports inside functions."""
    imports = _module_imports()
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(imports[module]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(imports):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)
