"""Camera inputs a robot really sends: a USB camera's packed YUV 4:2:2 and
image_transport's compressed JPEG / PNG, each giving the faces and expressions bgr8 gives.

The frame is a real one (the demo video's smiling face at 640x360), converted the way a
camera or image_transport would: cv2.cvtColor to YUYV / UYVY, cv2.imencode to JPEG / PNG.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import wait_for
from node_harness import Probe, destroy, make_node, start
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fer_msgs.msg import FaceArray
from fer_ros.backends import BackendSettings, create_backend
from fer_ros.core.model_card import load_model_card
from fer_ros.nodes.face_detection_node import FaceDetectionNode
from fer_ros.nodes.image_codec import array_to_image, image_to_gray
from fer_ros.nodes.inference_inputs import CropInput

FRAME_INDEX = 60  # smiling, well inside the 72-frame demo

# name -> (what a camera publishes from the BGR frame, the BGR the same pixels decode to)
PACKED = {
    "yuv422_yuy2": (cv2.COLOR_BGR2YUV_YUY2, cv2.COLOR_YUV2BGR_YUY2),  # YUYV (v4l2, usb_cam)
    "yuv422": (cv2.COLOR_BGR2YUV_UYVY, cv2.COLOR_YUV2BGR_UYVY),  # UYVY
}
COMPRESSED = {"jpeg": ".jpg", "png": ".png"}


@pytest.fixture(scope="module")
def frame(media) -> np.ndarray:
    video = cv2.VideoCapture(str(media / "single_face.mp4"))
    video.set(cv2.CAP_PROP_POS_FRAMES, FRAME_INDEX)
    ok, pixels = video.read()
    video.release()
    assert ok and pixels.shape == (360, 640, 3)
    return pixels


def labels(arrays: list[FaceArray]) -> list[str]:
    """The cpu profile's model on the crops, read exactly as the inference node reads them."""
    card = load_model_card("fer_cnn_cpu.json")
    backend = create_backend("onnxruntime", BackendSettings(card=card, model_export="onnx"))
    try:
        crops = CropInput(card)
        return [card.classes[int(backend.infer(crops.batch(a)).scores[0].argmax())] for a in arrays]
    finally:
        backend.close()


def detect(ros, frames: dict[str, Image | CompressedImage], **parameters) -> dict[str, FaceArray]:
    """Each frame through one face detection node; its FaceArray by frame_id.

    Every frame gets the full detector (``detect_every: 1``): following a face makes a
    frame's crop depend on the frames before it, and here each frame is the same picture
    in another encoding, compared with the others."""
    detector = make_node(ros, FaceDetectionNode, detect_every=1, **parameters)
    start(detector)
    probe = Probe(ros, "inputs_probe")
    faces = probe.listen("faces", FaceArray)
    if parameters.get("image_transport") == "compressed":
        images = probe.publisher("image_raw/compressed", CompressedImage, sensor=True)
    else:
        images = probe.publisher("image_raw", Image, sensor=True)
    for name, msg in frames.items():
        msg.header = Header(frame_id=name)
        images.publish(msg)
        assert wait_for(lambda n=name: any(f.header.frame_id == n for f in faces), 10), name
    problems = [s.message for s in probe.diagnostics_of("face_detection") if "input" in s.message]
    detector.release()
    destroy(detector)
    destroy(probe.node)
    assert not problems
    return {f.header.frame_id: f for f in faces}


def crop(array: FaceArray) -> np.ndarray:
    (face,) = array.faces
    return image_to_gray(face.crop).astype(int)


def assert_same_face(found: FaceArray, reference: FaceArray, max_crop_error: float) -> None:
    assert (found.image_width, found.image_height) == (640, 360)
    (face,), (ref,) = found.faces, reference.faces
    box = (face.roi.x_offset, face.roi.y_offset, face.roi.width, face.roi.height)
    ref_box = (ref.roi.x_offset, ref.roi.y_offset, ref.roi.width, ref.roi.height)
    assert np.abs(np.subtract(box, ref_box)).max() <= 2
    assert (face.crop.width, face.crop.height, face.crop.encoding) == (48, 48, "mono8")
    assert np.abs(crop(found) - crop(reference)).mean() <= max_crop_error


def test_usb_camera_yuv422_gives_the_faces_and_expressions_of_bgr8(ros, frame):
    frames: dict[str, Image | CompressedImage] = {"bgr8": array_to_image(frame, "bgr8", Header())}
    for encoding, (to_camera, to_bgr) in PACKED.items():
        packed = cv2.cvtColor(frame, to_camera)
        frames[encoding] = array_to_image(packed, encoding, Header())
        # the same pixels as the node must decode them, sent as bgr8
        decoded = cv2.cvtColor(packed, to_bgr)
        frames[f"{encoding} as bgr8"] = array_to_image(decoded, "bgr8", Header())
    found = detect(ros, frames)
    for encoding in PACKED:
        np.testing.assert_array_equal(crop(found[encoding]), crop(found[f"{encoding} as bgr8"]))
        assert_same_face(found[encoding], found["bgr8"], max_crop_error=1.0)
    names = ["bgr8", *PACKED]
    assert labels([found[n] for n in names]) == [labels([found["bgr8"]])[0]] * len(names)


def test_compressed_transport_gives_the_faces_and_expressions_of_bgr8(ros, frame):
    (reference,) = detect(ros, {"bgr8": array_to_image(frame, "bgr8", Header())}).values()
    frames: dict[str, Image | CompressedImage] = {}
    for fmt, suffix in COMPRESSED.items():
        data = cv2.imencode(suffix, frame)[1].tobytes()
        frames[fmt] = CompressedImage(format=f"bgr8; {fmt} compressed bgr8", data=data)
    found = detect(ros, frames, image_transport="compressed")
    np.testing.assert_array_equal(crop(found["png"]), crop(reference))  # lossless
    assert_same_face(found["jpeg"], reference, max_crop_error=2.0)
    assert labels([found["jpeg"], found["png"]]) == labels([reference]) * 2


def test_the_compressed_topic_follows_a_remapped_image_topic(ros):
    # image_transport's rule: remap the base topic, and its transports move with it.
    detector = FaceDetectionNode(
        cli_args=["--ros-args", "-r", "image_raw:=/robot/head_camera/image_raw"],
        parameter_overrides=[Parameter("image_transport", value="compressed")],
    )
    ros.add_node(detector)
    start(detector)
    topic = "/robot/head_camera/image_raw/compressed"
    assert wait_for(lambda: detector.count_subscribers(topic) == 1, 5)
    (info,) = detector.get_subscriptions_info_by_topic(topic)
    assert info.topic_type == "sensor_msgs/msg/CompressedImage"
    assert detector.count_subscribers("/image_raw") == 0
    detector.release()
