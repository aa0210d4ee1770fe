"""Record the graph to a bag, replay it through the graph or into a behaviour node, get the
same answers; run a bag's frames through two profiles and compare them."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from conftest import TEST_FPS, wait_for
from graph_harness import EVERY_FRAME, Graph, tuned_profile
from node_harness import Probe, destroy, start
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_msgs.msg import ExpressionArray, ExpressionEvent
from fer_ros.bringup.bag_report import NO_FACE, FaceLabel, FrameResult, Run, passed, write_report
from fer_ros.bringup.bags import GRAPH_TOPICS, BagError, BagRecorder, replay
from fer_ros.core.profiles import profile_path
from fer_ros.nodes.expression_filter_node import ExpressionFilterNode
from fer_ros.nodes.image_codec import array_to_image

Stamp = tuple[int, int]


# Frame-for-frame comparisons of live and replayed runs: the full detector on every frame.
# Following a face (the default) makes a frame's crop depend on the frames processed
# before it, and live skips frames a replay does not (README, Bags).
FRAME_EXACT = {"detect_every": 1}


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
    live = Graph(ros, profile_path("cpu"), every_node=FRAME_EXACT, namespace="live", fps=TEST_FPS)
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
        every_node={"input_queue_depth": EVERY_FRAME, **FRAME_EXACT},
        namespace="replay",
    )
    replayed.run()
    probe2 = Probe(ros, "replay_probe")
    replay_expressions = probe2.listen(replayed.topic("expressions"), ExpressionArray)
    player = rclpy.create_node("player")
    remap = {camera_topic: replayed.topic("image_raw")}
    # three times as fast: the replay graph queues every frame (and counts any it drops)
    counts = replay(player, bag, {camera_topic: "sensor_msgs/msg/Image"}, 3.0, remap=remap)
    live_labels = stamp_labels(live_expressions)
    recorded_and_labelled = live_labels.keys() & bag_stamps(bag)
    # until the replay's answer to every recorded frame live labelled has arrived
    assert wait_for(lambda: recorded_and_labelled <= stamp_labels(replay_expressions).keys(), 60)
    replayed.wait_until_idle()
    replayed.release()
    destroy(player)
    assert counts == {camera_topic: recorded}

    assert sum(n.inputs.dropped for n in replayed.nodes.values()) == 0

    replay_labels = stamp_labels(replay_expressions)
    assert len(recorded_and_labelled) >= 0.9 * len(live_labels)
    assert {k: replay_labels.get(k) for k in recorded_and_labelled} == {
        k: live_labels[k] for k in recorded_and_labelled
    }


def test_bag_is_readable_by_an_independent_mcap_reader(ros, tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.reader import read_ros2_messages

    bag = tmp_path / "bag"
    probe = Probe(ros)
    topics = {"/image_raw": "sensor_msgs/msg/Image", "/expressions": GRAPH_TOPICS["expressions"]}
    recorder = BagRecorder(probe.node, bag, topics)
    publisher = probe.publisher("/image_raw", Image, sensor=True)
    publisher.publish(Image(height=1, width=2, encoding="mono8", step=2, data=b"\x01\x02"))
    probe.publisher("/expressions", ExpressionArray).publish(ExpressionArray(model_id="m"))
    assert wait_for(lambda: recorder.counts == dict.fromkeys(topics, 1))
    recorder.close()
    (mcap_file,) = bag.glob("*.mcap")
    messages = {m.channel.topic: m.ros_msg for m in read_ros2_messages(str(mcap_file))}
    image = messages["/image_raw"]
    assert image.encoding == "mono8" and bytes(image.data) == b"\x01\x02"
    assert messages["/expressions"].model_id == "m"  # fer_msgs from its own .msg files
    with mcap_file.open("rb") as file:  # indexed: a summary with the counts, as mcap info reads
        statistics = make_reader(file).get_summary().statistics
    assert statistics.message_count == 2
    with Reader(bag) as reader:  # metadata.yaml, which ros2 bag info reads
        assert {c.topic: c.msgcount for c in reader.connections} == dict.fromkeys(topics, 1)


def test_recorder_writes_sqlite3_bags_too(ros, tmp_path):
    bag = tmp_path / "bag"
    probe = Probe(ros)
    topics = {"/expressions": GRAPH_TOPICS["expressions"]}
    recorder = BagRecorder(probe.node, bag, topics, storage=StoragePlugin.SQLITE3)
    publisher = probe.publisher("/expressions", ExpressionArray)
    for i in range(3):
        publisher.publish(ExpressionArray(model_id=str(i)))
    assert wait_for(lambda: recorder.counts["/expressions"] == 3)
    recorder.close()
    assert list(bag.glob("*.db3"))
    with Reader(bag) as reader:
        ids = [deserialize_message(d, ExpressionArray).model_id for _, _, d in reader.messages()]
    assert ids == ["0", "1", "2"]


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
    destroy(node)


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
    command = [sys.executable, "-m", "fer_ros.bringup.bag_cli", str(bag), "--rate", "4", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"/image_raw: {len(stamps)} messages" in done.stdout
    # It starts once our subscription has matched (and settled: a best-effort one) and
    # exits once every frame has left: nothing is lost at either end.
    assert wait_for(lambda: len(images) == len(stamps), 10), sorted(
        stamps - {(i.header.stamp.sec, i.header.stamp.nanosec) for i in images}
    )


# --- fer_ros_record ------------------------------------------------------------------------
RECORD = "import sys; from fer_ros.bringup.bag_cli import record_main; sys.exit(record_main())"
REPLAY = [sys.executable, "-m", "fer_ros.bringup.bag_cli"]


def test_record_cli_refuses_an_existing_or_impossible_path_in_one_line(ros, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "a_file").write_text("")
    for bag, reason in (("taken", "exists already"), ("a_file/bag", "Not a directory")):
        command = [sys.executable, "-c", RECORD, str(tmp_path / bag), "--duration", "1"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("fer_ros_record: cannot record to") and reason in line, line


def event_tuples(events: list[ExpressionEvent]) -> list[tuple]:
    """Events as the filter decided them; a gone event's stamp is the filter's steady-clock
    estimate of stream time after the input stopped, so it differs from run to run."""
    return [
        (e.kind, e.face_id, e.from_label, e.to_label, round(e.confidence, 5))
        + ((e.header.stamp.sec, e.header.stamp.nanosec) if e.kind != "gone" else ())
        for e in events
    ]


def recorded(bag: Path, topic: str, msg_type: type) -> list:
    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        return [deserialize_message(d, msg_type) for _, _, d in reader.messages(connections)]


def started_filter(ros, namespace: str) -> ExpressionFilterNode:
    # gone_after_s well above a loaded test process's stalls (see test_expression_filter)
    node = ExpressionFilterNode(
        namespace=namespace, parameter_overrides=[Parameter("gone_after_s", value=3.0)]
    )
    ros.add_node(node)
    start(node)
    return node


@pytest.mark.slow
def test_recorded_session_replays_into_a_filter_with_the_live_events(ros, tmp_path):
    """The behaviour team's question: fer_ros_record a live run (stopped with Ctrl-C), then
    fer_ros_replay only its expressions into a fresh filter: the events are the live ones.
    And the model team's: the recorded frames through the same profile again agree."""
    bag = tmp_path / "session"
    live = Graph(ros, profile_path("cpu"), every_node=FRAME_EXACT, namespace="live", fps=TEST_FPS)
    live_filter = started_filter(ros, "/live")
    probe = Probe(ros, "session_probe")
    live_events = probe.listen("/live/expression_events", ExpressionEvent)
    recorder = subprocess.Popen(
        [sys.executable, "-c", RECORD, str(bag), "--namespace", "live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def recorder_listens(topic: str) -> bool:
            infos = probe.node.get_subscriptions_info_by_topic(topic)
            return any(i.node_name == "fer_ros_record" for i in infos)

        topics = [live.topic(t) for t in GRAPH_TOPICS if not t.startswith("/")]
        assert wait_for(lambda: all(recorder_listens(t) for t in topics), 30)
        time.sleep(1.0)  # and the recorder has matched our publishers
        live.run()
        assert wait_for(lambda: any(e.kind == "gone" for e in live_events), 15)
        # the recorder has everything the graph published before the Ctrl-C
        for publisher in (live_filter._events_pub, live.nodes["inference"]._expressions_pub):
            assert publisher.wait_for_all_acked(Duration(seconds=10))
    finally:
        recorder.send_signal(signal.SIGINT)
        out, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    live_inputs = live_filter.inputs.received
    live.release()
    live_filter.release()
    destroy(live_filter)

    # Ctrl-C closed the bag: every topic readable, the filter's inputs all recorded
    expressions = recorded(bag, "/live/expressions", ExpressionArray)
    assert f"/live/expressions: {len(expressions)} messages" in out
    assert len(expressions) == live_inputs > 0  # a loaded machine skips frames live
    bag_events = recorded(bag, "/live/expression_events", ExpressionEvent)
    assert event_tuples(bag_events) == event_tuples(live_events)
    assert [e.kind for e in bag_events if e.kind != "changed"] == ["appeared", "gone"]

    replay_filter = started_filter(ros, "/replay")
    replay_events = probe.listen("/replay/expression_events", ExpressionEvent)
    command = [*REPLAY, str(bag), "--topics", "/live/expressions", "--fast"]
    command += ["--remap", "/live/expressions=/replay/expressions"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"/live/expressions: {len(expressions)} messages" in done.stdout
    assert wait_for(lambda: any(e.kind == "gone" for e in replay_events), 15)
    assert replay_filter.inputs.received == len(expressions)
    assert event_tuples(replay_events) == event_tuples(bag_events)
    replay_filter.release()

    # The same model on the recorded frames: the recorded labels again, frame for frame.
    report = tmp_path / "report"
    frame_exact = tmp_path / "cpu_frame_exact.yaml"  # the cpu profile, as live ran it
    frame_exact.write_text(
        profile_path("cpu").read_text()
        + "/**/face_detection:\n  ros__parameters:\n    detect_every: 1\n"
    )
    command = [*REPLAY, str(bag), "--profile", str(frame_exact), "--report", str(report)]
    done = subprocess.run([*command, "--min-agreement", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{frame_exact.stem} vs recorded: agreement 1.000" in done.stdout
    assert f"on {len([e for e in expressions if e.expressions])} frames" in done.stdout


# --- fer_ros_replay --profile ... --report -------------------------------------------------
@pytest.mark.slow
def test_two_profile_report_on_the_demo_video_bag(ros, media, tmp_path):
    bag = tmp_path / "video_bag"
    stamps = write_video_bag(media / "single_face.mp4", bag, TEST_FPS)
    report = tmp_path / "report"
    command = [*REPLAY, str(bag), "--profile", "cpu", "--profile", "loihi"]
    command += ["--report", str(report), "--min-agreement", "0.6"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    elapsed_s = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    agreement = float(done.stdout.split("loihi vs cpu: agreement ")[1].split()[0])
    assert done.returncode == (0 if agreement >= 0.6 else 1)  # a CI's verdict
    assert elapsed_s < 120  # about 10 s here; the target is under a minute
    with (report / "frames.csv").open() as file:
        rows = list(csv.DictReader(file))
    # every frame answered by both, one face each: a row per frame and face
    assert len(rows) == len(stamps) == 72
    assert all(r["cpu_label"] and r["loihi_label"] and r["loihi_latency_ms"] for r in rows)
    agreeing = sum(r["agree"] == "1" for r in rows)
    assert agreeing / len(rows) == pytest.approx(agreement, abs=1e-3)
    text = (report / "report.md").read_text()
    assert "## Confusion: cpu (rows) vs loihi (columns)" in text
    assert "inputs dropped: 0" in text  # deep queues, one frame in flight
    with (report / "confusion.csv").open() as file:
        confusion = list(csv.reader(file))
    assert sum(int(n) for row in confusion[1:] for n in row[1:]) == len(rows)
    header = confusion[0]  # the diagonal: the same label in both runs
    diagonal = [int(row[header.index(row[0])]) for row in confusion[1:] if row[0] in header]
    assert sum(diagonal) == agreeing


def test_report_compares_faces_by_their_boxes_and_fails_below_the_minimum(tmp_path):
    def face(face_id: int, x: int, label: str) -> FaceLabel:
        return FaceLabel(face_id, (x, 10, 50, 50), label, 0.9)

    first = Run("cpu", "cpu: a model")
    second = Run("loihi", "loihi: another")
    first.frames = {
        0: FrameResult((face(1, 0, "happy"), face(2, 200, "neutral")), 5.0),
        1: FrameResult((face(1, 2, "happy"),), 5.0),
        2: FrameResult((), 5.0),
    }
    # the same people numbered otherwise; a face only the second found; frame 2 unanswered
    second.frames = {
        0: FrameResult((face(7, 201, "neutral"), face(8, 1, "sadness")), 9.0, 4.0),
        1: FrameResult((face(8, 3, "happy"), face(9, 400, "fear")), 9.0, 4.0),
    }
    stamps = [10**9, 2 * 10**9, 3 * 10**9]
    main = write_report(tmp_path, "title", stamps, [first, second], (first, second), 0.75)
    assert (main.frames, main.faces, main.agreeing) == (2, 4, 2)
    assert main.confusion == {
        ("happy", "sadness"): 1,
        ("neutral", "neutral"): 1,
        ("happy", "happy"): 1,
        (NO_FACE, "fear"): 1,
    }
    assert not passed(main, 0.75) and passed(main, 0.5) and passed(None, 0)
    assert not passed(None, 0.5)  # nothing compared fails a CI that asks for agreement
    with (tmp_path / "frames.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(r["frame"], r["cpu_label"], r["loihi_label"], r["agree"]) for r in rows] == [
        ("0", "happy", "sadness", "0"),
        ("0", "neutral", "neutral", "1"),
        ("1", "happy", "happy", "1"),
        ("1", NO_FACE, "fear", "0"),
        ("2", "", "", ""),  # no face and no answer from the second run
    ]
    text = (tmp_path / "report.md").read_text()
    assert "**loihi vs cpu: 0.500** (--min-agreement 0.75: **FAIL**)" in text
    assert "| 0 | 1.000 | 1 | happy | sadness |" in text


def test_full_disk_stops_the_recording_in_one_line_and_keeps_the_bag_readable(ros, tmp_path):
    """A 24 MiB file system of its own (a tmpfs in a mount namespace), filled by camera
    frames: the recorder stops with one line and leaves a closed, readable bag."""
    from mcap_ros2.reader import read_ros2_messages

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small file system")
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    script = (
        f'mount -t tmpfs -o size=24m tmpfs "{disk}" || exit 77; '
        f'"{sys.executable}" -c "$1" "{disk}/bag" --topics image_raw --duration 60; '
        f'rc=$?; cp -r "{disk}/bag" "{kept}/"; exit $rc'
    )
    recorder = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script, "sh", RECORD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    probe = Probe(ros)
    publisher = probe.node.create_publisher(Image, "/image_raw", qos_profile_sensor_data)
    started = wait_for(lambda: publisher.get_subscription_count() or recorder.poll(), 30)
    if recorder.poll() == 77 or not started:
        recorder.kill()
        pytest.skip(f"cannot mount a tmpfs here: {recorder.communicate()[1].strip()}")
    time.sleep(1.0)  # the recorder has matched us too
    frame = np.zeros((360, 640, 3), np.uint8)
    deadline = time.monotonic() + 60
    while recorder.poll() is None and time.monotonic() < deadline:
        publisher.publish(array_to_image(frame, "bgr8", Header(frame_id="cam")))
        time.sleep(0.05)
    out, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("fer_ros_record: disk full:") and "closed and readable" in line, line
    written = int(out.split("/image_raw: ")[1].split()[0])
    assert written >= 5
    with Reader(kept / "bag") as reader:  # metadata.yaml written
        assert [c.msgcount for c in reader.connections] == [written]
        assert sum(1 for _ in reader.messages()) == written
    (mcap_file,) = (kept / "bag").glob("*.mcap")  # indexed and complete
    assert sum(1 for _ in read_ros2_messages(str(mcap_file))) == written
