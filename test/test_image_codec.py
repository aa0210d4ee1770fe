import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_ros.nodes.image_codec import ImageError, array_to_image, image_to_array, image_to_gray


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
    ("msg", "reason"),
    [
        (
            Image(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)),
            "unsupported encoding",
        ),
        (Image(height=0, width=0, encoding="mono8", step=0, data=b""), "empty image"),
        (Image(height=4, width=4, encoding="bgr8", step=12, data=bytes(10)), "data holds 10 bytes"),
        (Image(height=4, width=4, encoding="bgr8", step=4, data=bytes(48)), "step 4 is shorter"),
    ],
)
def test_bad_images_give_clear_errors(msg, reason):
    with pytest.raises(ImageError, match=reason):
        image_to_array(msg)
