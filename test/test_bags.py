"""Record the camera to an mcap bag, replay it through the graph, get the same answers."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import rclpy
from builtin_interfaces.msg import Time
from conftest import TEST_FPS, wait_for
from graph_harness import EVERY_FRAME, Graph, tuned_profile
from node_harness import Probe
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_msgs.msg import ExpressionArray
from fer_ros.bringup.bags import BagError, BagRecorder, replay
from fer_ros.core.profiles import profile_path
from fer_ros.nodes.image_codec import array_to_image

Stamp = tuple[int, int]


def stamp_labels(arrays: list[ExpressionArray]) -> dict[Stamp, list[str]]:
    return {
        (a.header.stamp.sec, a.header.stamp.nanosec): [e.label for e in a.expressions]
        for a in arrays
        if a.expressions
    }


def bag_stamps(bag: Path) -> set[Stamp]:
    with Reader(bag) as reader:
        images = (deserialize_message(data, Image) for _, _, data in reader.messages())
        return {(i.header.stamp.sec, i.header.stamp.nanosec) for i in images}


@pytest.mark.slow
def test_replayed_bag_gives_the_same_expressions_as_live(ros, media, tmp_path):
    bag = tmp_path / "camera_bag"
    # Each graph in a namespace of its own, so the replay graph's lifecycle services can
    # never share a name with the live graph's nodes.
    live = Graph(ros, profile_path("cpu"), namespace="live", fps=TEST_FPS)
    camera_topic = live.topic("image_raw")
    probe = Probe(ros, "live_probe")
    live_expressions = probe.listen(live.topic("expressions"), ExpressionArray)
    recorder = BagRecorder(probe.node, bag, {camera_topic: "sensor_msgs/msg/Image"})
    live.run()
    recorder.close()
    published = live.nodes["camera"].frames_published
    live.release()
    recorded = recorder.counts[camera_topic]
    assert published == 72  # every frame of single_face.mp4
    assert recorded >= 0.95 * published  # best-effort camera QoS: a frame may be lost under load

    # Live, each stage keeps only the newest frame; the replay keeps every frame, so the
    # comparison does not depend on what a loaded machine happened to skip live.
    replayed = Graph(
        ros,
        profile_path("cpu"),
        only=("face_detection", "inference"),
        every_node={"input_queue_depth": EVERY_FRAME},
        namespace="replay",
    )
    replayed.run()
    probe2 = Probe(ros, "replay_probe")
    replay_expressions = probe2.listen(replayed.topic("expressions"), ExpressionArray)
    player = rclpy.create_node("player")
    remap = {camera_topic: replayed.topic("image_raw")}
    counts = replay(player, bag, {camera_topic: "sensor_msgs/msg/Image"}, remap=remap)
    replayed.wait_until_idle()
    replayed.release()
    player.destroy_node()
    assert counts == {camera_topic: recorded}

    assert sum(n.inputs.dropped for n in replayed.nodes.values()) == 0

    live_labels, replay_labels = stamp_labels(live_expressions), stamp_labels(replay_expressions)
    recorded_and_labelled = live_labels.keys() & bag_stamps(bag)
    assert len(recorded_and_labelled) >= 0.9 * len(live_labels)
    assert {k: replay_labels.get(k) for k in recorded_and_labelled} == {
        k: live_labels[k] for k in recorded_and_labelled
    }


def test_bag_is_readable_by_an_independent_mcap_reader(ros, tmp_path):
    from mcap_ros2.reader import read_ros2_messages

    bag = tmp_path / "bag"
    probe = Probe(ros)
    recorder = BagRecorder(probe.node, bag, {"/image_raw": "sensor_msgs/msg/Image"})
    publisher = probe.publisher("/image_raw", Image, sensor=True)
    publisher.publish(Image(height=1, width=2, encoding="mono8", step=2, data=b"\x01\x02"))
    assert wait_for(lambda: recorder.counts["/image_raw"] == 1)
    recorder.close()
    (mcap_file,) = bag.glob("*.mcap")
    (message,) = list(read_ros2_messages(str(mcap_file)))
    assert message.ros_msg.encoding == "mono8" and bytes(message.ros_msg.data) == b"\x01\x02"


def test_replay_refuses_a_bag_with_the_wrong_type(ros, tmp_path):
    bag = tmp_path / "wrong"
    store = get_typestore(Stores.ROS2_KILTED)
    string_type = store.types["std_msgs/msg/String"]
    with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/image_raw", string_type.__msgtype__, typestore=store)
        writer.write(
            connection, 1, store.serialize_cdr(string_type(data="hi"), string_type.__msgtype__)
        )
    node = rclpy.create_node("player")
    with pytest.raises(BagError, match="is std_msgs/msg/String, expected sensor_msgs/msg/Image"):
        replay(node, bag, {"/image_raw": "sensor_msgs/msg/Image"})
    with pytest.raises(BagError, match="has no topic /camera"):
        replay(node, bag, {"/camera": "sensor_msgs/msg/Image"})
    with pytest.raises(BagError, match="cannot open bag"):
        replay(node, tmp_path / "no_such_bag", {"/image_raw": "sensor_msgs/msg/Image"})
    node.destroy_node()


def write_video_bag(video: Path, bag: Path, fps: float) -> set[Stamp]:
    """The video's frames as sensor_msgs/Image on /image_raw, ``fps`` apart."""
    capture = cv2.VideoCapture(str(video))
    stamps: set[Stamp] = set()
    with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        store = get_typestore(Stores.ROS2_KILTED)
        connection = writer.add_connection("/image_raw", "sensor_msgs/msg/Image", typestore=store)
        ok, frame = capture.read()
        while ok:
            t_ns = int(1e9 + len(stamps) * 1e9 / fps)
            header = Header(stamp=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id="cam")
            writer.write(connection, t_ns, serialize_message(array_to_image(frame, "bgr8", header)))
            stamps.add((header.stamp.sec, header.stamp.nanosec))
            ok, frame = capture.read()
    capture.release()
    return stamps


@pytest.mark.slow
def test_bringup_without_camera_labels_every_frame_of_a_replayed_bag(ros, media, tmp_path):
    """The user's evaluation workflow: fer_ros_bringup --source none, then a replay, with
    input queues deep enough that no frame is skipped; in a robot's namespace."""
    bag = tmp_path / "video_bag"
    stamps = write_video_bag(media / "single_face.mp4", bag, TEST_FPS)
    profile = tuned_profile(tmp_path, "cpu", queue_depth=EVERY_FRAME)
    probe = Probe(ros)
    expressions = probe.listen("/robot/expressions", ExpressionArray)
    command = [sys.executable, "-m", "fer_ros.bringup", str(profile), "--source", "none"]
    command += ["--namespace", "robot"]
    graph = subprocess.Popen([*command, "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        # Stages activate downstream first, so an /image_raw subscriber means all are up.
        assert wait_for(lambda: probe.node.count_subscribers("/robot/image_raw") > 0, 60)
        assert probe.node.count_publishers("/robot/image_raw") == 0  # no camera was started
        remap = {"/image_raw": "/robot/image_raw"}
        replay(probe.node, bag, {"/image_raw": "sensor_msgs/msg/Image"}, remap=remap)
        wait_for(lambda: len(labelled(expressions)) == len(stamps), 30)
    finally:
        graph.send_signal(signal.SIGINT)
        report, _ = graph.communicate(timeout=30)
    assert graph.returncode == 0
    # The graph's own report on Ctrl-C; this busy test process may have missed messages.
    assert "frames with a result:" in report, report
    assert int(report.split("frames with a result:")[1].split()[0]) >= 0.95 * len(stamps)
    assert "inputs dropped by the inference stage: 0" in report, report  # deep queues
    assert expressions and labelled(expressions) <= stamps  # recorded stamps kept


def labelled(arrays: list[ExpressionArray]) -> set[Stamp]:
    return set(stamp_labels(arrays))


@pytest.mark.parametrize(
    ("arguments", "topic"),
    [
        (["--namespace", "robot"], "/robot/image_raw"),
        (["--remap", "/image_raw=/cam/left/image_raw"], "/cam/left/image_raw"),
        (["--ros-args", "-r", "/image_raw:=/ros/image_raw"], "/ros/image_raw"),
    ],
)
def test_replay_cli_feeds_a_namespaced_or_remapped_graph(ros, media, tmp_path, arguments, topic):
    bag = tmp_path / "video_bag"
    stamps = write_video_bag(media / "single_face.mp4", bag, TEST_FPS)
    probe = Probe(ros)
    # best-effort, as the replay publishes camera images; deep enough for every frame (a
    # history of 5 lost frames mid-stream whenever this process stalled for 5 of them)
    images = probe.listen(topic, Image, sensor=True, depth=len(stamps))
    command = [sys.executable, "-m", "fer_ros.bringup.bags", str(bag), "--rate", "4", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"/image_raw: {len(stamps)} messages" in done.stdout
    # The replay exits right after its last best-effort publish: the last frames can be lost.
    assert wait_for(lambda: len(images) >= 0.9 * len(stamps), 10), len(images)
