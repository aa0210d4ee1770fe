"""Accelerator profiles: the one place that says which nodes run with which parameters.

A profile is ``config/<name>.yaml`` in ``ros__parameters`` form, keyed ``/**/<node>``
so that it applies in any namespace. Its keys, in file order, are the graph's nodes.
Both launch files and the ``fer_ros_bringup`` entry point read profiles through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fer_ros.paths import config_dir

PROFILES = ("loihi", "coral", "ncs2", "jetson", "rpi", "cpu")
EDGE_PROFILES = tuple(p for p in PROFILES if p != "loihi")
FASTDDS_PROFILE = "fastdds_shm.xml"


@dataclass(frozen=True)
class NodeType:
    executable: str  # console script in lib/fer_ros (what launch_ros starts)
    module: str  # module with the node class and main()
    class_name: str


# node name in a profile -> how to start it
NODE_TYPES: dict[str, NodeType] = {
    "camera": NodeType("camera_node", "fer_ros.camera_node", "CameraNode"),
    "face_detection": NodeType(
        "face_detection_node", "fer_ros.face_detection_node", "FaceDetectionNode"
    ),
    "spike_encoding": NodeType(
        "spike_encoding_node", "fer_ros.spike_encoding_node", "SpikeEncodingNode"
    ),
    "inference": NodeType("inference_node", "fer_ros.inference_node", "InferenceNode"),
}


def profile_path(name_or_path: str) -> Path:
    """A profile name (``loihi``) or a YAML path."""
    if name_or_path in PROFILES:
        return config_dir() / f"{name_or_path}.yaml"
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no profile {name_or_path!r}: use one of {', '.join(PROFILES)} or a YAML file"
        )
    return path


def profile_nodes(path: Path) -> list[str]:
    """Node names of a profile in file order; unknown names are an error."""
    data = yaml.safe_load(path.read_text()) or {}
    names = [key.rsplit("/", 1)[-1] for key in data]
    unknown = [n for n in names if n not in NODE_TYPES]
    if unknown:
        raise ValueError(f"{path}: unknown node(s) {unknown}; known: {', '.join(NODE_TYPES)}")
    return names


def profile_parameters(path: str | Path, node: str = "inference") -> dict[str, Any]:
    """One node's ``ros__parameters`` of a profile, nested keys joined with dots."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    for key, section in data.items():
        if str(key).rsplit("/", 1)[-1] == node:
            return flatten((section or {}).get("ros__parameters", {}))
    raise KeyError(f"{path}: no {node!r} node; it has {', '.join(map(str, data))}")


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
