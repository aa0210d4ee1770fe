"""Profiles and launch files: one source of truth that cannot drift from the nodes."""

from __future__ import annotations

import importlib.util
from importlib import import_module

import pytest

from fer_ros.core.model_card import load_model_card
from fer_ros.core.options import Param
from fer_ros.core.paths import share_dir
from fer_ros.core.profiles import (
    NODE_TYPES,
    PROFILES,
    profile_nodes,
    profile_parameters,
    profile_path,
)


def declared(node: str) -> dict[str, Param]:
    module = import_module(NODE_TYPES[node].module)
    node_class = getattr(module, NODE_TYPES[node].class_name)
    return {p.name: p for p in node_class.parameters}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_parameter_is_declared_and_legal(profile):
    path = profile_path(profile)
    nodes = profile_nodes(path)
    assert nodes[0] == "camera" and nodes[-1] == "inference"
    for node in nodes:
        table = declared(node)
        for name, value in profile_parameters(path, node).items():
            assert name in table, f"{profile}: {node} has no parameter {name!r}"
            assert table[name].check(value) is None, table[name].check(value)
            default = table[name].default
            # rclpy refuses 30 for a float parameter: types must match exactly.
            assert type(value) is type(default), (
                f"{profile}: {node}.{name}={value!r} is not a {type(default).__name__}"
            )


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_names_a_committed_model_export(profile):
    inference = profile_parameters(profile_path(profile), "inference")
    card = load_model_card(inference["model_card"])
    assert card.file(inference["model_export"]).is_file()
    if "spike_encoding" in profile_nodes(profile_path(profile)):
        encoder = profile_parameters(profile_path(profile), "spike_encoding")
        assert encoder["model_card"] == inference["model_card"]


def test_loihi_profile_encodes_spikes_and_edge_profiles_do_not():
    assert "spike_encoding" in profile_nodes(profile_path("loihi"))
    for profile in PROFILES:
        if profile != "loihi":
            assert "spike_encoding" not in profile_nodes(profile_path(profile))


needs_launch = pytest.mark.skipif(
    importlib.util.find_spec("launch_ros") is None,
    reason="launch_ros is part of a ROS 2 install; not installable from PyPI",
)


def launch_description(launch_file: str):
    spec = importlib.util.spec_from_file_location(
        "launch_file", share_dir() / "launch" / launch_file
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@needs_launch
@pytest.mark.parametrize("launch_file", ["loihi.launch.py", "edge.launch.py"])
def test_launch_files_build_their_description(launch_file):
    description = launch_description(launch_file)
    names = {a.name for a in description.get_launch_arguments()}
    assert {"profile", "source", "namespace", "loop", "use_sim_time", "log_level"} <= names
    executables = {getattr(e, "node_executable", None) for e in description.entities}
    assert {n.executable for n in NODE_TYPES.values()} | {"fer_ros_lifecycle_manager"} <= (
        executables
    )


@needs_launch
def test_launch_print_shows_parameter_files_and_which_nodes_start():
    # What ros2 launch -p prints (ros2launch's print_a_launch_file calls exactly this)
    from launch import LaunchIntrospector

    text = LaunchIntrospector().format_launch_description(launch_description("loihi.launch.py"))
    common, loihi = share_dir() / "config" / "common.yaml", profile_path("loihi")
    assert f"with the defaults (loihi) {', '.join(profile_nodes(loihi))};" in text
    for node in NODE_TYPES.values():
        line = next(x for x in text.splitlines() if f"exec='{node.executable}'" in x)
        assert f"'--params-file', '{common}', '--params-file', ProfileYaml(" in line
        assert f"default {loihi})" in line


@needs_launch
def test_launch_resolves_the_same_plan_as_bringup(monkeypatch):
    from launch import LaunchContext
    from launch.actions import LogInfo
    from launch.substitutions import LocalSubstitution
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    from fer_ros.bringup import graph_plan as plans

    monkeypatch.setattr(plans, "hri_msgs_available", lambda: True)
    description = launch_description("edge.launch.py")
    context = LaunchContext()
    for argument in description.get_launch_arguments():
        value = perform_substitutions(context, argument.default_value)
        context.launch_configurations[argument.name] = value
    context.launch_configurations.update({"accelerator": "coral", "hri": "true"})
    plan = plans.graph_plan("coral", hri=True)
    started = []
    for entity in description.entities:
        if isinstance(entity, LogInfo):
            assert perform_substitutions(context, entity.msg).startswith(
                f"fer_ros: {plans.plan_summary(plan)}"
            )
        condition = getattr(entity, "condition", None)
        if isinstance(entity, Node) and (condition is None or condition.evaluate(context)):
            started.append(entity.node_executable)
            command = [  # the node's name is launch_ros's own local variable, set at start
                perform_substitutions(context, part)
                for part in entity.cmd[1:]
                if not any(isinstance(s, LocalSubstitution) for s in part)
            ]
            files = [str(f) for f in plan[0].parameter_files]
            if entity.node_executable != "fer_ros_lifecycle_manager":
                assert command[3:7] == ["--params-file", files[0], "--params-file", files[1]]
    assert started == [n.executable for n in plan] + ["fer_ros_lifecycle_manager"]


def test_readme_parameter_tables_match_the_nodes():
    from fer_ros.bringup.parameter_docs import parameter_tables

    readme = (share_dir() / "README.md") if (share_dir() / "README.md").is_file() else None
    if readme is None:
        pytest.skip("README.md is not beside the package (installed share dir)")
    assert parameter_tables() in readme.read_text(), "run python -m fer_ros.bringup.parameter_docs"


def test_a_profile_overrides_common_values_in_a_real_node(ros, tmp_path):
    from node_harness import destroy

    from fer_ros.bringup.graph_plan import node_plan
    from fer_ros.bringup.local_graph import create_node

    profile = tmp_path / "slow_camera.yaml"
    profile.write_text(
        "/**/camera:\n  ros__parameters:\n    fps: 15.0\n"
        "/**/inference:\n  ros__parameters:\n    accelerator: cpu\n"
    )
    assert profile_nodes(profile) == ["camera", "face_detection", "inference"]
    assert profile_parameters(profile, "camera")["fps"] == 15.0
    camera = create_node(node_plan(profile, "camera"))
    detector = create_node(node_plan(profile, "face_detection"))
    assert camera.get_parameter("fps").value == 15.0  # the profile wins
    assert camera.get_parameter("source").value == "demo"  # common.yaml fills the rest
    assert detector.get_parameter("detection_width").value == 240
    destroy(camera)
    destroy(detector)


def test_a_profile_can_override_output_qos(ros, tmp_path):
    from node_harness import destroy
    from rclpy.qos import ReliabilityPolicy

    from fer_ros.bringup.graph_plan import node_plan
    from fer_ros.bringup.local_graph import create_node

    profile = tmp_path / "best_effort.yaml"
    profile.write_text(
        "/**/inference:\n  ros__parameters:\n    qos_overrides:\n      /expressions:\n"
        "        publisher:\n          reliability: best_effort\n"
    )
    node = create_node(node_plan(profile, "inference"))
    (info,) = node.get_publishers_info_by_topic("/expressions")
    assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    destroy(node)
    # One node's override must not leak to the others of the same process.
    other = create_node(node_plan(profile_path("cpu"), "inference", "/other"))
    (info,) = other.get_publishers_info_by_topic("/other/expressions")
    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    destroy(other)


@pytest.mark.parametrize("profile", PROFILES)
def test_node_and_benchmark_paths_build_the_same_inference_settings(ros, profile):
    """The node declares and reads its parameters through ROS; a benchmark reads the YAML
    without ROS. Both must end in the same backend, settings and power configuration."""
    from node_harness import destroy

    from fer_ros.backends.settings import settings_from_parameters
    from fer_ros.bringup.graph_plan import node_plan
    from fer_ros.bringup.local_graph import create_node

    node = create_node(node_plan(profile_path(profile), "inference"))
    try:
        values = {p.name: node.get_parameter(p.name).value for p in node.parameters}
    finally:
        destroy(node)
    via_node = settings_from_parameters(values)
    via_benchmark = settings_from_parameters(profile_parameters(profile_path(profile)))
    assert via_node == via_benchmark


def test_profiles_are_the_config_files_and_the_accelerator_choices():
    from fer_ros.backends.settings import DEFAULTS, INFERENCE_PARAMETERS
    from fer_ros.core.paths import config_dir

    files = {p.stem for p in config_dir().glob("*.yaml")} - {"common"}
    assert set(PROFILES) == files and PROFILES[0] == "loihi"
    (accelerator,) = [p for p in INFERENCE_PARAMETERS if p.name == "accelerator"]
    assert accelerator.choices == PROFILES and DEFAULTS["model_export"] == ""


def test_setup_registers_every_node_executable():
    from importlib.metadata import distribution

    from fer_ros.core import entry

    scripts = {e.name: e for e in distribution("fer_ros").entry_points}
    for node in NODE_TYPES.values():
        main = f"{node.module}:main"
        assert entry.target(node.executable) == main
        assert getattr(entry, node.executable).target == main
        # installed through fer_ros.core.entry (this setup.py) or directly (an older install)
        loaded = scripts[node.executable].load()
        assert getattr(loaded, "target", scripts[node.executable].value) == main
    for executable, main in entry.TARGETS.items():
        module, function = main.split(":")
        assert callable(getattr(import_module(module), function)), executable


def test_a_stop_while_an_executable_imports_is_quiet(tmp_path, monkeypatch):
    from fer_ros.core.entry import SIGINT_EXIT, start

    (tmp_path / "slow_import.py").write_text("raise KeyboardInterrupt\n")  # Ctrl-C, then
    (tmp_path / "stopped_main.py").write_text("def main():\n    raise KeyboardInterrupt\n")
    (tmp_path / "c_import.py").write_text(  # as rclpy's C library import reports it
        "try:\n    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt as e:\n    raise ImportError('initialization failed') from e\n"
    )
    (tmp_path / "missing.py").write_text("import no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert start("slow_import:main") == SIGINT_EXIT
    assert start("stopped_main:main") == SIGINT_EXIT
    assert start("c_import:main") == SIGINT_EXIT
    with pytest.raises(ImportError):  # a real import error is not hidden
        start("missing:main")


@pytest.mark.parametrize("profile", PROFILES)
def test_the_graph_plan_of_every_profile(profile):
    """What the launch files and bringup start, checked without launch_ros."""
    from importlib.metadata import distribution

    from fer_ros.bringup.graph_plan import activate_order, configure_order, graph_plan

    scripts = {e.name for e in distribution("fer_ros").entry_points}
    plan = graph_plan(profile, source="0", namespace="robot/")
    assert [n.name for n in plan] == profile_nodes(profile_path(profile))
    for node in plan:
        assert node.executable in scripts and node.namespace == "/robot"
        assert [f.name for f in node.parameter_files] == ["common.yaml", f"{profile}.yaml"]
        assert all(f.is_file() for f in node.parameter_files)
        assert node.overrides == ({"source": "0"} if node.name == "camera" else {})
    assert configure_order(plan)[0] == "/robot/camera"
    assert activate_order(plan)[-1] == "/robot/camera"
    assert "camera" not in [n.name for n in graph_plan(profile, source="none")]


def test_bringup_offers_the_launch_files_graph_options():
    from fer_ros.bringup.graph_plan import GRAPH_OPTIONS
    from fer_ros.bringup.main import parse_args

    args = parse_args(
        ["cpu", "--source", "0", "--namespace", "robot", "--loop", "--use-sim-time",
         "--log-level", "warn"]
    )  # fmt: skip
    assert {o.name for o in GRAPH_OPTIONS} <= set(vars(args))
    assert (args.profile, args.source, args.loop, args.use_sim_time, args.log_level) == (
        "cpu", "0", True, True, "warn"
    )  # fmt: skip


def test_graph_options_reach_every_planned_node():
    from fer_ros.bringup.graph_plan import graph_plan

    plan = graph_plan("loihi", source="demo", loop=True, use_sim_time=True, log_level="warn")
    camera = plan[0]
    assert camera.overrides == {"source": "demo", "loop": True, "use_sim_time": True}
    assert all(n.overrides["use_sim_time"] is True and n.log_level == "warn" for n in plan)
    with pytest.raises(ValueError, match="log level"):
        graph_plan("cpu", log_level="loud")


def test_behaviour_and_hri_options_add_their_nodes_once(monkeypatch):
    from fer_ros.bringup import graph_plan as plans
    from fer_ros.bringup.graph_plan import graph_plan

    monkeypatch.setattr(plans, "hri_msgs_available", lambda: True)
    names = [n.name for n in graph_plan("cpu", behaviour=True, hri=True)]
    assert names == [
        "camera", "face_detection", "inference", "expression_filter", "expression_reactor",
        "hri_bridge",
    ]  # fmt: skip
    assert [n.name for n in graph_plan("cpu")][-1] == "inference"


def test_hri_without_hri_msgs_is_refused_before_anything_starts(monkeypatch, capsys):
    # launch evaluates the same plan for its conditions, so ros2 launch stops with this too
    from fer_ros.bringup import graph_plan as plans
    from fer_ros.bringup.main import main

    monkeypatch.setattr(plans, "hri_msgs_available", lambda: False)
    with pytest.raises(ValueError, match="hri needs the ROS4HRI messages hri_msgs"):
        plans.graph_plan("cpu", hri=True)
    assert plans.graph_plan("cpu", behaviour=True)[-1].name == "expression_reactor"
    assert main(["cpu", "--hri"]) == 2  # before rclpy starts anything
    assert "fer_ros_bringup: hri needs the ROS4HRI messages" in capsys.readouterr().err


def test_private_mode_gives_the_pixel_nodes_alone_the_loopback_profile(monkeypatch):
    # fer_ros_bringup --private and launch's private:=true both start from this plan.
    from xml.etree import ElementTree

    from fer_ros.bringup import graph_plan as plans
    from fer_ros.core.profiles import FASTDDS_PROFILE_ENV, fastdds_private_profile

    monkeypatch.setattr(plans, "hri_msgs_available", lambda: True)
    plan = plans.graph_plan("loihi", behaviour=True, hri=True, private=True)
    private = {n.name for n in plan if n.environment}
    assert private == {"camera", "face_detection", "spike_encoding", "hri_bridge"}
    for node in plan:
        if node.name in private:
            assert node.environment == {FASTDDS_PROFILE_ENV: str(fastdds_private_profile())}
    assert {"inference", "expression_filter", "expression_reactor"} <= {n.name for n in plan}
    assert not any(n.environment for n in plans.graph_plan("loihi"))
    # The profile: shared memory and UDPv4 on loopback, no built-in transport besides.
    dds = "{http://www.eprosima.com}"
    root = ElementTree.parse(fastdds_private_profile()).getroot()
    transports = {d.findtext(f"{dds}type"): d for d in root.iter(f"{dds}transport_descriptor")}
    assert set(transports) == {"SHM", "UDPv4"}
    allowed = transports["UDPv4"].find(f"{dds}interfaceWhiteList")
    assert [a.text for a in allowed] == ["127.0.0.1"]
    assert root.findtext(f".//{dds}useBuiltinTransports") == "false"
    peers = root.find(f".//{dds}initialPeersList")
    assert [a.text for a in peers.iter(f"{dds}address")] == ["127.0.0.1"]


def test_bringup_prints_the_resolved_plan_without_starting_anything(capsys):
    from fer_ros.bringup.graph_plan import graph_plan, ros_arguments
    from fer_ros.bringup.main import main

    assert main(["cpu", "--source", "0", "--namespace", "robot", "--plan"]) == 0
    text = capsys.readouterr().out
    plan = graph_plan("cpu", source="0", namespace="robot")
    for node in plan:
        assert f"{node.fqn}: {node.executable} ({node.module}." in text
        assert str(node.parameter_files[0]) in text and str(node.parameter_files[1]) in text
    camera = ros_arguments(plan[0])
    assert camera[camera.index("-p") + 1] == 'source:="0"'  # a string, not the int 0
    assert 'fer_ros_lifecycle_manager --ros-args -p \'nodes:=["camera",' in text
