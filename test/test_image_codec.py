import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fer_ros.nodes.image_codec import (
    ImageError,
    array_to_image,
    compressed_to_bgr,
    image_to_array,
    image_to_bgr,
    image_to_gray,
)


def test_round_trip_keeps_pixels_and_header():
    pixels = np.random.default_rng(0).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    msg = array_to_image(pixels, "bgr8", Header(frame_id="cam"))
    assert (msg.width, msg.height, msg.step, msg.header.frame_id) == (64, 36, 192, "cam")
    np.testing.assert_array_equal(image_to_array(msg), pixels)


def test_gray_conversion_respects_channel_order():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 255  # red in BGR order
    bgr = image_to_gray(array_to_image(red, "bgr8", Header()))
    rgb = image_to_gray(array_to_image(red, "rgb8", Header()))  # same bytes read as blue
    assert bgr[0, 0] > rgb[0, 0]


def test_padded_rows_are_cropped():
    msg = Image(height=2, width=3, encoding="mono8", step=4, data=bytes(range(8)))
    np.testing.assert_array_equal(image_to_array(msg), [[0, 1, 2], [4, 5, 6]])


@pytest.mark.parametrize(
    ("encoding", "to_yuv", "to_bgr", "to_gray"),
    [
        (
            "yuv422_yuy2",
            cv2.COLOR_BGR2YUV_YUY2,
            cv2.COLOR_YUV2BGR_YUY2,
            cv2.COLOR_YUV2GRAY_YUY2,
        ),
        ("yuv422", cv2.COLOR_BGR2YUV_UYVY, cv2.COLOR_YUV2BGR_UYVY, cv2.COLOR_YUV2GRAY_UYVY),
    ],
)
def test_packed_yuv422_reads_in_its_byte_order(encoding, to_yuv, to_bgr, to_gray):
    # A colour ramp, so that swapped luma and chroma bytes would show.
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 255 - ramp[None]), -1)
    pixels = np.ascontiguousarray(pixels[:36])
    packed = cv2.cvtColor(pixels, to_yuv)
    msg = array_to_image(packed, encoding, Header())
    assert msg.step == 2 * 64
    bgr = image_to_bgr(msg)
    np.testing.assert_array_equal(bgr, cv2.cvtColor(packed, to_bgr))
    np.testing.assert_array_equal(image_to_gray(msg), cv2.cvtColor(packed, to_gray))
    assert np.abs(bgr.astype(int) - pixels).mean() < 3  # 4:2:2 loses only some chroma


def test_compressed_jpeg_and_png_decode_to_bgr_and_grey():
    pixels = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    png = CompressedImage(format="png", data=cv2.imencode(".png", pixels)[1].tobytes())
    np.testing.assert_array_equal(compressed_to_bgr(png), pixels)
    jpeg = cv2.imencode(".jpg", pixels)[1].tobytes()
    as_published = CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg)
    np.testing.assert_array_equal(
        compressed_to_bgr(as_published), cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1)
    )
    grey = CompressedImage(format="mono8; png compressed mono8")
    grey.data = cv2.imencode(".png", pixels[..., 0])[1].tobytes()
    np.testing.assert_array_equal(compressed_to_bgr(grey), pixels[..., 0])
    bgra = cv2.cvtColor(pixels, cv2.COLOR_BGR2BGRA)
    alpha = CompressedImage(format="png", data=cv2.imencode(".png", bgra)[1].tobytes())
    np.testing.assert_array_equal(compressed_to_bgr(alpha), pixels)


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (CompressedImage(format="jpeg", data=b"not a jpeg"), "do not decode"),
        (CompressedImage(format="jpeg"), "empty compressed image"),
        (CompressedImage(format="16UC1; compressedDepth png", data=b"x"), "compressedDepth"),
        (
            CompressedImage(
                format="png",
                data=cv2.imencode(".png", np.zeros((4, 4), np.uint16))[1].tobytes(),
            ),
            "only 8-bit",
        ),
    ],
)
def test_bad_compressed_images_give_clear_errors(msg, reason):
    with pytest.raises(ImageError, match=reason):
        compressed_to_bgr(msg)


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (
            Image(height=2, width=2, encoding="bayer_rggb8", step=2, data=bytes(4)),
            "unsupported encoding",
        ),
        (Image(height=0, width=0, encoding="mono8", step=0, data=b""), "empty image"),
        (Image(height=4, width=4, encoding="bgr8", step=12, data=bytes(10)), "data holds 10 bytes"),
        (Image(height=4, width=4, encoding="bgr8", step=4, data=bytes(48)), "step 4 is shorter"),
        (
            Image(height=2, width=3, encoding="yuv422_yuy2", step=6, data=bytes(12)),
            "even width",
        ),
    ],
)
def test_bad_images_give_clear_errors(msg, reason):
    with pytest.raises(ImageError, match=reason):
        image_to_array(msg)
