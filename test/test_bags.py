"""Record the camera to an mcap bag, replay it through the graph, get the same answers."""

from __future__ import annotations

import pytest
import rclpy
from conftest import TEST_FPS
from graph_harness import Graph
from node_harness import Probe
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from fer_msgs.msg import ExpressionArray
from fer_ros.bags import BagError, BagRecorder, replay
from fer_ros.profiles import profile_path


def stamp_labels(arrays: list[ExpressionArray]) -> dict[tuple[int, int], list[str]]:
    return {
        (a.header.stamp.sec, a.header.stamp.nanosec): [e.label for e in a.expressions]
        for a in arrays
        if a.expressions
    }


def test_replayed_bag_gives_the_same_expressions_as_live(ros, media, tmp_path):
    bag = tmp_path / "camera_bag"
    live = Graph(ros, profile_path("cpu"), fps=TEST_FPS)
    probe = Probe(ros, "live_probe")
    live_expressions = probe.listen("expressions", ExpressionArray)
    recorder = BagRecorder(probe.node, bag, {"/image_raw": "sensor_msgs/msg/Image"})
    live.run()
    recorder.close()
    live.release()
    recorded = recorder.counts["/image_raw"]
    assert recorded >= 0.95 * 72  # best-effort camera QoS: a frame may be lost under load

    replayed = Graph(ros, profile_path("cpu"), only=("face_detection", "inference"))
    replayed.run()
    probe2 = Probe(ros, "replay_probe")
    replay_expressions = probe2.listen("expressions", ExpressionArray)
    player = rclpy.create_node("player")
    counts = replay(player, bag, {"/image_raw": "sensor_msgs/msg/Image"})
    replayed.wait_until_idle()
    replayed.release()
    player.destroy_node()
    assert counts == {"/image_raw": recorded}

    live_labels, replay_labels = stamp_labels(live_expressions), stamp_labels(replay_expressions)
    common = live_labels.keys() & replay_labels.keys()
    assert len(common) >= 0.9 * len(live_labels)  # recorded stamps survive the round trip
    assert all(live_labels[k] == replay_labels[k] for k in common)


def test_bag_is_readable_by_an_independent_mcap_reader(ros, tmp_path):
    from mcap_ros2.reader import read_ros2_messages
    from sensor_msgs.msg import Image

    bag = tmp_path / "bag"
    probe = Probe(ros)
    recorder = BagRecorder(probe.node, bag, {"/image_raw": "sensor_msgs/msg/Image"})
    publisher = probe.publisher("/image_raw", Image, sensor=True)
    publisher.publish(Image(height=1, width=2, encoding="mono8", step=2, data=b"\x01\x02"))
    assert __import__("conftest").wait_for(lambda: recorder.counts["/image_raw"] == 1)
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
