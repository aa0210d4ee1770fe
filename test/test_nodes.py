"""Each node alone, with real messages in and out on a real rclpy / Fast DDS graph."""

from __future__ import annotations

import copy
import os
import signal
import time

import cv2
import numpy as np
import pytest
from conftest import wait_for
from node_harness import Probe, destroy, make_node, start
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from fer_msgs.msg import ExpressionArray, FaceArray, SpikeTrainArray, Telemetry
from fer_ros.core.model_card import load_model_card
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.core.spike_encoding import EncodingSettings, encode, unpack_spikes
from fer_ros.nodes.camera_node import CameraNode
from fer_ros.nodes.face_detection_node import FaceDetectionNode
from fer_ros.nodes.image_codec import array_to_image, image_to_gray
from fer_ros.nodes.inference_node import InferenceNode
from fer_ros.nodes.pipeline_base import ERROR, OK, WARN
from fer_ros.nodes.spike_encoding_node import SpikeEncodingNode


def bgr(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return image


def faces_from(ros, media, names=("multi_face.jpg",), **parameters) -> list[FaceArray]:
    """Real FaceArray messages: the face detection node run on real photos."""
    detector = make_node(ros, FaceDetectionNode, **parameters)
    start(detector)
    probe = Probe(ros, "faces_probe")
    faces = probe.listen("faces", FaceArray)
    images = probe.publisher("image_raw", Image, sensor=True)
    for name in names:
        count = len(faces)
        images.publish(array_to_image(bgr(media / name), "bgr8", Header(frame_id=name)))
        assert wait_for(lambda c=count: len(faces) > c, 10)
    detector.release()
    return list(faces)


# --- camera -----------------------------------------------------------------------------
def test_camera_plays_an_image_folder_then_reports_end_of_stream(ros, media, tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), bgr(media / "multi_face.jpg"))
    (tmp_path / "notes.txt").write_text("not an image")
    camera = make_node(ros, CameraNode, source=str(tmp_path), fps=50.0, width=320, height=240)
    probe = Probe(ros)
    images = probe.listen("image_raw", Image, sensor=True)
    infos = probe.listen("camera_info", CameraInfo, sensor=True)
    start(camera)
    assert wait_for(lambda: camera.end_of_stream, 10)
    assert wait_for(lambda: len(images) == 3 and len(infos) == 3, 15)
    assert (images[0].width, images[0].height, images[0].encoding) == (320, 240, "bgr8")
    info = infos[0]
    assert (info.width, info.height, info.header.stamp) == (320, 240, images[0].header.stamp)
    # uncalibrated pinhole from the 60 degree default field of view, centred
    focal = 160 / np.tan(np.radians(30))
    assert info.k[0] == pytest.approx(focal) and info.k[4] == pytest.approx(focal)
    assert (info.k[2], info.k[5], info.k[8]) == (160, 120, 1)
    assert wait_for(
        lambda: any(
            kv.value == "end_of_stream" for s in probe.diagnostics_of("camera") for kv in s.values
        ),
        5,
    )
    camera.release()


def test_camera_with_missing_source_fails_to_configure_with_a_clear_error(ros, tmp_path):
    camera = make_node(ros, CameraNode, source=str(tmp_path / "nope.mp4"))
    probe = Probe(ros)
    assert camera.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert wait_for(lambda: probe.saw_diagnostic("camera", "no such camera source", ERROR), 15)


def test_camera_reports_a_corrupt_video_and_keeps_serving(ros, tmp_path):
    video = tmp_path / "corrupt.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    camera = make_node(ros, CameraNode, source=str(video))
    probe = Probe(ros)
    images = probe.listen("image_raw", Image, sensor=True)
    if camera.trigger_configure() == TransitionCallbackReturn.SUCCESS:
        camera.trigger_activate()
        assert wait_for(lambda: probe.saw_diagnostic("camera", "no frame could be decoded", ERROR))
        camera.trigger_deactivate()
        camera.trigger_cleanup()
    else:
        assert wait_for(lambda: probe.saw_diagnostic("camera", "cannot open", ERROR))
    # The same node serves a good source after a cleanup and a new configure.
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((48, 64, 3), 128, np.uint8))
    (tmp_path / "corrupt.mp4").unlink()
    camera.set_parameters([Parameter("source", value=str(tmp_path))])
    start(camera)
    assert wait_for(lambda: len(images) == 1, 10)
    assert (images[0].width, images[0].height) == (64, 48)
    camera.release()


# --- face detection ----------------------------------------------------------------------
@pytest.mark.parametrize(("detector", "expected"), [("blazeface", 5), ("haar", 3)])
def test_face_detection_finds_tracks_and_crops_real_faces(ros, media, detector, expected):
    results = faces_from(ros, media, ("multi_face.jpg", "multi_face.jpg"), detector=detector)
    first, second = results[0], results[1]
    assert len(first.faces) >= expected  # the photo shows 5 people; Haar finds 4 of them
    # same faces, same ids
    assert [f.face_id for f in second.faces] == [f.face_id for f in first.faces]
    assert len({f.face_id for f in first.faces}) == len(first.faces)
    crop = first.faces[0].crop
    assert (crop.width, crop.height, crop.encoding) == (48, 48, "mono8")
    assert first.header.frame_id == "multi_face.jpg"
    assert all(0.0 < f.confidence <= 1.0 for f in first.faces)


def test_blazeface_finds_the_turned_face_haar_misses(ros, media):
    (found,) = faces_from(ros, media, ("45-m7-di-ph.jpg",))
    assert len(found.faces) == 1 and found.faces[0].confidence >= 0.7


def test_face_detection_survives_bad_images_and_empty_scenes(ros, media):
    detector = make_node(ros, FaceDetectionNode)
    start(detector)
    probe = Probe(ros)
    faces = probe.listen("faces", FaceArray)
    images = probe.publisher("image_raw", Image, sensor=True)
    images.publish(Image(height=2, width=2, encoding="bayer_rggb8", step=2, data=bytes(4)))
    assert wait_for(lambda: probe.saw_diagnostic("face_detection", "unsupported encoding", WARN))
    images.publish(Image(height=0, width=0, encoding="bgr8"))
    assert wait_for(lambda: probe.saw_diagnostic("face_detection", "empty image", WARN))
    blank = np.full((240, 320, 3), 127, np.uint8)
    images.publish(array_to_image(blank, "bgr8", Header(frame_id="blank")))
    assert wait_for(lambda: any(f.header.frame_id == "blank" for f in faces))
    assert next(f for f in faces if f.header.frame_id == "blank").faces == []
    images.publish(array_to_image(bgr(media / "multi_face.jpg"), "bgr8", Header(frame_id="ok")))
    assert wait_for(lambda: any(f.header.frame_id == "ok" and f.faces for f in faces))
    detector.release()


# --- spike encoding ----------------------------------------------------------------------
def test_spike_encoder_emits_the_trains_of_the_model_cards_preprocessing(ros, media):
    face_arrays = faces_from(ros, media)
    encoder = make_node(ros, SpikeEncodingNode, timesteps=20)
    start(encoder)
    probe = Probe(ros)
    trains = probe.listen("spike_trains", SpikeTrainArray)
    probe.publisher("faces", FaceArray).publish(face_arrays[0])
    assert wait_for(lambda: len(trains) == 1)
    card = load_model_card("fer_snn_loihi.json")
    snn = card.extra["snn"]  # the encoder defaults to what the SNN was converted for
    settings = EncodingSettings(timesteps=20, dt=snn["dt"], max_rate=snn["input_rate_hz"])
    train = trains[0].trains[0]
    assert (train.timesteps, train.height, train.width) == (20, 48, 48)
    assert train.preprocessing == card.preprocessing and train.encoding == "rate"
    crop = image_to_gray(face_arrays[0].faces[0].crop)[None]
    expected = encode(
        preprocess_crops(crop, card.preprocessing, card.canny)[0, 0],
        settings,
    )
    spikes = unpack_spikes(bytes(train.spikes), (20, 48, 48))
    np.testing.assert_array_equal(spikes, expected)
    assert train.spike_count == int(expected.sum()) > 0
    encoder.release()


# --- inference ---------------------------------------------------------------------------
def test_cpu_inference_labels_real_faces_and_reports_honest_telemetry(ros, media):
    stills = ("0-f15-hao-ph.jpg", "0-f1-su-ph.jpg", "15-f13-anc-ph.jpg")
    # Haar's box crops: the model reads all three stills right from them (BlazeFace's
    # aligned crop reads the happy one as contempt; see docs/performance.md).
    face_arrays = [f for f in faces_from(ros, media, stills, detector="haar") if f.faces]
    assert len(face_arrays) == 3
    node = make_node(ros, InferenceNode)  # the node's defaults are the cpu profile's model
    start(node)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    telemetry = probe.listen("telemetry", Telemetry)
    faces = probe.publisher("faces", FaceArray)
    for array in face_arrays:
        count = len(expressions)
        faces.publish(array)
        assert wait_for(lambda c=count: len(expressions) > c)
    labels = [e.expressions[0].label for e in expressions]
    assert labels.count("happy") >= 1 and labels[0] == "happy"
    e = expressions[0].expressions[0]
    assert e.class_names[e.label_index] == e.label and len(e.scores) == len(e.class_names)
    assert sum(e.scores) == pytest.approx(1.0, abs=1e-3)
    assert expressions[0].header == face_arrays[0].header
    assert wait_for(lambda: telemetry)
    t = telemetry[0]
    assert (t.accelerator, t.backend, t.device) == ("cpu", "onnxruntime", "CPUExecutionProvider")
    assert t.faces == 1 and t.inference_ms > 0
    # The node's defaults name no power model: a figure is a sensor reading or nothing.
    assert t.figure_source in (Telemetry.SOURCE_MEASURED, Telemetry.SOURCE_UNAVAILABLE)
    if t.figure_source == Telemetry.SOURCE_UNAVAILABLE:
        assert np.isnan(t.power_w) and np.isnan(t.energy_mj)
    else:
        assert t.figure_model and t.figure_source == Telemetry.SOURCE_MEASURED
    node.release()


def test_inference_with_missing_model_file_fails_to_configure_clearly(ros, tmp_path):
    card = tmp_path / "card.json"
    card.write_text('{"model_id": "x", "classes": ["a", "b"], "files": {"onnx": "gone.onnx"}}')
    node = make_node(ros, InferenceNode, model_card=str(card))
    probe = Probe(ros)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert wait_for(lambda: probe.saw_diagnostic("inference", "gone.onnx", ERROR))


def test_inference_rejects_wrong_crop_sizes_and_keeps_serving(ros, media):
    good = faces_from(ros, media)[0]
    bad = FaceArray(header=Header(frame_id="bad"), faces=[copy.deepcopy(good.faces[0])])
    bad.faces[0].crop = array_to_image(np.zeros((10, 10), np.uint8), "mono8", Header())
    node = make_node(ros, InferenceNode)
    start(node)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    faces = probe.publisher("faces", FaceArray)
    faces.publish(bad)
    assert wait_for(lambda: probe.saw_diagnostic("inference", "crops are 10x10", WARN))
    faces.publish(good)
    assert wait_for(lambda: len(expressions) == 1)
    node.release()


def test_inference_serves_again_after_deactivate_cleanup_configure(ros, media):
    good = faces_from(ros, media)[0]
    node = make_node(ros, InferenceNode)
    start(node)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    faces = probe.publisher("faces", FaceArray)
    faces.publish(good)
    assert wait_for(lambda: len(expressions) == 1)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    faces.publish(good)  # inactive: nothing comes out
    assert not wait_for(lambda: len(expressions) > 1, 1.0)
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    start(node)
    faces.publish(good)
    assert wait_for(lambda: len(expressions) == 2)
    assert [e.label for e in expressions[1].expressions] == [
        e.label for e in expressions[0].expressions
    ]
    node.release()


@pytest.mark.parametrize(
    ("warn_ms", "error_ms", "level", "text"),
    [(0.0, 1e6, WARN, "above 0 ms"), (0.0, 0.0, ERROR, "above 0 ms"), (1e6, 1e6, None, "")],
)
def test_inference_latency_thresholds_raise_warn_and_error(
    ros, media, warn_ms, error_ms, level, text
):
    good = faces_from(ros, media)[0]
    node = make_node(ros, InferenceNode, warn_latency_ms=warn_ms, error_latency_ms=error_ms)
    start(node)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    faces = probe.publisher("faces", FaceArray)
    good.header.stamp = node.get_clock().now().to_msg()  # latency is measured from the stamp
    faces.publish(good)
    assert wait_for(lambda: len(expressions) == 1)
    if level is None:  # generous thresholds: OK on the next report
        assert wait_for(lambda: any(s.level == OK for s in probe.diagnostics_of("inference")))
        assert not probe.saw_diagnostic("inference", "latency above")
    else:
        assert wait_for(lambda: probe.saw_diagnostic("inference", text, level))
    node.release()


def test_an_illegal_parameter_is_refused_at_run_time(ros):
    node = make_node(ros, InferenceNode)
    (result,) = node.set_parameters([Parameter("backend", value="tensorflow")])
    assert not result.successful and "not one of" in result.reason
    (result,) = node.set_parameters([Parameter("num_threads", value=0)])
    assert not result.successful
    assert node.get_parameter("backend").value == "onnxruntime"
    (result,) = node.set_parameters([Parameter("backend", value="litert")])
    assert result.successful
    destroy(node)


def test_diagnostics_report_the_lifecycle_state_as_it_is(ros):
    node = make_node(ros, InferenceNode)
    probe = Probe(ros)

    def state_is(state: str) -> bool:
        latest = probe.diagnostics_of("inference")[-1:]
        return any(kv.key == "state" and kv.value == state for s in latest for kv in s.values)

    assert wait_for(lambda: state_is("unconfigured"), 15)
    assert probe.saw_diagnostic("inference", "unconfigured", WARN)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert wait_for(lambda: state_is("inactive"), 15)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert wait_for(lambda: state_is("active"), 15)
    node.release()


def test_a_problem_cleared_before_the_next_report_is_still_published_once(ros):
    # A loaded process can fire the 1 Hz diagnostics timer late, after a problem's
    # period has ended: the problem must still reach /diagnostics, once.
    node = make_node(ros, InferenceNode)
    probe = Probe(ros)
    node.report("brief", WARN, "a brief problem")
    node.clear("brief")
    node.publish_diagnostics()
    assert wait_for(lambda: probe.saw_diagnostic("inference", "a brief problem", WARN), 15)
    seen = len(probe.diagnostics_of("inference"))
    node.publish_diagnostics()
    assert wait_for(lambda: len(probe.diagnostics_of("inference")) > seen, 15)
    assert "a brief problem" not in probe.diagnostics_of("inference")[-1].message
    node.release()


def test_camera_without_its_device_configures_and_reports_no_device(ros):
    camera = make_node(ros, CameraNode, source="/dev/video97", reconnect_period_s=0.2)
    probe = Probe(ros)
    start(camera)  # a robot's camera may be plugged in later: the graph still comes up
    assert wait_for(lambda: probe.saw_diagnostic("camera", "no device", ERROR), 15)
    stream = [
        kv.value for s in probe.diagnostics_of("camera") for kv in s.values if kv.key == "stream"
    ]
    assert stream and stream[-1] == "no device"
    camera.release()


def serving_inference(ros, media, **parameters):
    """An active inference node that has labelled one real FaceArray, and its probe."""
    good = faces_from(ros, media)[0]
    node = make_node(ros, InferenceNode, **parameters)
    start(node)
    probe = Probe(ros)
    expressions = probe.listen("expressions", ExpressionArray)
    faces = probe.publisher("faces", FaceArray)
    good.header.stamp = node.get_clock().now().to_msg()  # no latency alarm from an old stamp
    faces.publish(good)
    assert wait_for(lambda: len(expressions) == 1, 10)
    return node, probe, expressions, faces, good


def test_a_killed_backend_process_is_restarted_and_serves_again(ros, media):
    node, probe, expressions, faces, good = serving_inference(
        ros, media, backend_process=True, backend_restart_delay_s=0.2
    )
    os.kill(node.backend.pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def served_again() -> bool:
        faces.publish(good)
        return wait_for(lambda: len(expressions) > 1, 0.2)

    assert wait_for(served_again, 20)
    assert time.monotonic() - killed_at < 10
    assert wait_for(lambda: probe.saw_diagnostic("inference", "backend down", ERROR), 15)
    assert node.backend.restarts == 1 and node.frames_lost >= 1
    node.release()


def test_a_stalled_stage_is_an_error_until_it_works_again(ros, media):
    node, probe, expressions, faces, good = serving_inference(
        ros, media, backend_process=True, stall_timeout_s=0.5
    )
    pid = node.backend.pid
    os.kill(pid, signal.SIGSTOP)  # the backend hangs: inputs keep arriving, none finish
    try:
        faces.publish(good)
        assert wait_for(lambda: probe.saw_diagnostic("inference", "stalled", ERROR), 15)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert wait_for(lambda: len(expressions) >= 2, 10)
    count = len(probe.diagnostics_of("inference"))
    assert wait_for(
        lambda: any("stalled" not in s.message for s in probe.diagnostics_of("inference")[count:]),
        5,
    )
    node.release()


def test_an_undecodable_payload_is_counted_as_rejected_and_the_stage_goes_on(ros, media):
    node, probe, expressions, faces, good = serving_inference(ros, media)
    faces.publish(b"\x00\x01\x00\x00" + b"\xff" * 40)  # right topic and type, garbage CDR
    assert wait_for(lambda: probe.saw_diagnostic("inference", "undecodable FaceArray", WARN), 15)
    assert node.inputs_rejected == 1
    faces.publish(good)
    assert wait_for(lambda: len(expressions) == 2, 15)
    node.release()
