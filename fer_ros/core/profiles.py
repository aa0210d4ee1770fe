"""Accelerator profiles: the one place that says which nodes run with which parameters.

``config/common.yaml`` holds what every graph shares (camera, face detection); a profile
``config/<name>.yaml`` adds its accelerator's nodes and may override common values. Both
are ``ros__parameters`` files keyed ``/**/<node>`` so that they apply in any namespace,
and are passed to every node in that order (the later file wins). The graph's nodes are
their keys in file order. Launch files and ``fer_ros_bringup`` read profiles only here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fer_ros.core.paths import config_dir

FASTDDS_PROFILE = "fastdds_shm.xml"
# Loopback and shared memory only: for the processes that carry face pixels (private mode)
FASTDDS_PRIVATE_PROFILE = "fastdds_private.xml"
FASTDDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
COMMON_PROFILE = "common.yaml"
NEUROMORPHIC_PROFILE = "loihi"  # the one profile that is not an edge CNN


def _installed_profiles() -> tuple[str, ...]:
    """Every ``config/<name>.yaml`` but the common one: the profile list is found, not typed."""
    names = sorted(p.stem for p in config_dir().glob("*.yaml") if p.name != COMMON_PROFILE)
    # the main job first, then the edge accelerators alphabetically
    return tuple(sorted(names, key=lambda n: n != NEUROMORPHIC_PROFILE))


PROFILES = _installed_profiles()
EDGE_PROFILES = tuple(p for p in PROFILES if p != NEUROMORPHIC_PROFILE)
NO_CAMERA = "none"  # camera source meaning "start no camera node"


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class NodeType:
    executable: str  # console script in lib/fer_ros (what launch_ros starts)
    class_name: str

    @property
    def module(self) -> str:
        """Module with the node class and ``main()`` (setup.py finds the same files)."""
        return f"fer_ros.nodes.{self.executable}"


# node name in a profile -> how to start it
NODE_TYPES: dict[str, NodeType] = {
    "camera": NodeType("camera_node", "CameraNode"),
    "face_detection": NodeType("face_detection_node", "FaceDetectionNode"),
    "spike_encoding": NodeType("spike_encoding_node", "SpikeEncodingNode"),
    "inference": NodeType("inference_node", "InferenceNode"),
    # behaviour integration, added by the behaviour / hri options (not in profiles' order)
    "expression_filter": NodeType("expression_filter_node", "ExpressionFilterNode"),
    "expression_reactor": NodeType("expression_reactor_node", "ExpressionReactorNode"),
    "hri_bridge": NodeType("hri_bridge_node", "HriBridgeNode"),
}


def profile_path(name_or_path: str) -> Path:
    """A profile name (``loihi``) or a YAML path."""
    if name_or_path in PROFILES:
        return config_dir() / f"{name_or_path}.yaml"
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ProfileError(
            f"no profile {name_or_path!r}: use one of {', '.join(PROFILES)} or a YAML file"
        )
    return path


def parameter_files(profile: Path) -> list[Path]:
    """The parameter files of a profile, in the order nodes must read them."""
    return [config_dir() / COMMON_PROFILE, profile]


def profile_nodes(path: Path) -> list[str]:
    """Node names of a profile (common ones first) in file order; unknown names fail."""
    names: list[str] = []
    for file in parameter_files(path):
        for key in _sections(file):
            if key not in names:
                names.append(key)
    unknown = [n for n in names if n not in NODE_TYPES]
    if unknown:
        raise ProfileError(
            f"profile {path}: unknown node(s) {', '.join(unknown)}; known: {', '.join(NODE_TYPES)}"
        )
    return names


def graph_nodes(path: Path, source: str | None = None) -> list[str]:
    """The nodes to start: the profile's, without the camera when ``source`` is
    :data:`NO_CAMERA` (frames then come from a bag replay or another driver)."""
    names = profile_nodes(path)
    return [n for n in names if n != "camera"] if source == NO_CAMERA else names


def profile_parameters(path: str | Path, node: str = "inference") -> dict[str, Any]:
    """One node's parameters in a profile (common values overridden by the profile's),
    nested keys joined with dots as rclpy names them."""
    merged: dict[str, Any] = {}
    found = False
    for file in parameter_files(Path(path)):
        sections = _sections(file)
        if node in sections:
            found = True
            merged.update(flatten((sections[node] or {}).get("ros__parameters", {})))
    if not found:
        raise KeyError(f"{path}: no {node!r} node; it has {', '.join(profile_nodes(Path(path)))}")
    return merged


def _sections(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
        raise ProfileError(f"profile {file} is not readable YAML: {problem}{where}") from error
    if not isinstance(data, dict) or not all(isinstance(v, dict | None) for v in data.values()):
        raise ProfileError(f"profile {file}: expected '/**/<node>: {{ros__parameters: ...}}'")
    return {str(key).rsplit("/", 1)[-1]: value for key, value in data.items()}


def check_profile_values(path: Path, tables: Mapping[str, Sequence[Any]]) -> None:
    """Every value of every node in the profile against that node's parameter table
    (``Param`` rows): known name, exact type (rclpy refuses 30 for a float), legal value.
    Raises ProfileError naming the file, node and parameter."""
    for node in profile_nodes(path):
        table = {p.name: p for p in tables[node]}
        for name, value in profile_parameters(path, node).items():
            if name.startswith("qos_overrides.") or name in ("use_sim_time",):
                continue  # rclpy's own parameters
            row = table.get(name)
            if row is None:
                raise ProfileError(f"profile {path}: {node} has no parameter {name!r}")
            if type(value) is not type(row.default) and not (
                isinstance(row.default, list) and isinstance(value, list)
            ):
                kind = type(row.default).__name__
                raise ProfileError(f"profile {path}: {node}.{name}={value!r} is not a {kind}")
            problem = row.check(value)
            if problem:
                raise ProfileError(f"profile {path}: {node}.{problem}")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys, as rclpy names parameters (``power.source``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def fastdds_profile() -> Path:
    """Fast DDS XML with a shared-memory transport large enough for camera images."""
    return config_dir() / FASTDDS_PROFILE


def fastdds_private_profile() -> Path:
    """Fast DDS XML that keeps a process's topics on this host (shared memory, loopback)."""
    return config_dir() / FASTDDS_PRIVATE_PROFILE


def use_fastdds_profile() -> None:
    """Make this process's participants use :func:`fastdds_profile`, unless the user chose
    a profile. Call before ``rclpy.init``: over the default UDP transport, best-effort
    camera images (hundreds of kB in fragments) are often lost."""
    os.environ.setdefault(FASTDDS_PROFILE_ENV, str(fastdds_profile()))
