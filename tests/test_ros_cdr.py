"""CDR parsing of sensor_msgs/Image and CompressedImage, on hand-built buffers (ROS-free).

The same parser is checked against rclpy's own serializer in tests/ros/test_node_convert.py;
here: both byte orders, the alignment rules, zero-copy views and refusals of short buffers.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gapcam.errors import ImageDecodeError
from gapcam.ros_cdr import parse_compressed_image, parse_image


class _Writer:
    """A tiny CDR writer (alignment relative to the end of the 4-byte encapsulation)."""

    def __init__(self, big_endian: bool = False) -> None:
        self.e = ">" if big_endian else "<"
        self.buf = bytearray(b"\x00\x00\x00\x00" if big_endian else b"\x00\x01\x00\x00")

    def _align(self, n: int) -> None:
        self.buf += b"\x00" * (-(len(self.buf) - 4) % n)

    def u32(self, v: int) -> _Writer:
        self._align(4)
        self.buf += struct.pack(self.e + "I", v)
        return self

    def i32(self, v: int) -> _Writer:
        self._align(4)
        self.buf += struct.pack(self.e + "i", v)
        return self

    def u8(self, v: int) -> _Writer:
        self.buf += bytes([v])
        return self

    def string(self, s: str) -> _Writer:
        raw = s.encode() + b"\x00"
        self.u32(len(raw))
        self.buf += raw
        return self

    def seq(self, data: bytes) -> _Writer:
        self.u32(len(data))
        self.buf += data
        return self


def _image(frame_id: str, enc: str, w: int, h: int, step: int, data: bytes, big=False) -> bytes:
    wr = _Writer(big).i32(-5).u32(123456789).string(frame_id)
    wr.u32(h).u32(w).string(enc).u8(1).u32(step).seq(data)
    return bytes(wr.buf)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd", "rear_left_camera_optical"])
def test_image_fields_and_zero_copy_pixels(frame_id: str, big: bool) -> None:
    data = bytes(range(7 * 3 * 5)) + b"\x01"
    buf = _image(frame_id, "rgb8", 7, 5, 22, data[: 22 * 5], big)
    msg = parse_image(buf)
    assert (msg.header.sec, msg.header.nanosec, msg.header.frame_id) == (-5, 123456789, frame_id)
    assert msg.header.stamp_ns == -5 * 1_000_000_000 + 123456789
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step) == (
        5,
        7,
        "rgb8",
        1,
        22,
    )
    assert msg.data.tobytes() == data[: 22 * 5]
    assert not msg.data.flags.writeable and np.shares_memory(msg.data, np.frombuffer(buf, np.uint8))


def test_compressed_image_fields() -> None:
    wr = _Writer().i32(3).u32(4).string("cam").string("jpeg").seq(b"\xff\xd8xyz\xff\xd9")
    msg = parse_compressed_image(bytes(wr.buf))
    assert msg.header.stamp_ns == 3_000_000_004 and msg.header.frame_id == "cam"
    assert msg.format == "jpeg" and msg.data.tobytes() == b"\xff\xd8xyz\xff\xd9"


def test_short_or_foreign_buffers_are_refused_in_one_line() -> None:
    buf = _image("cam", "bgr8", 4, 4, 12, bytes(48))
    for cut in (0, 3, 10, len(buf) - 1):
        with pytest.raises(ImageDecodeError, match="malformed serialized message"):
            parse_image(buf[:cut])
    with pytest.raises(ImageDecodeError, match="encapsulation"):
        parse_image(b"\x00\x07\x00\x00" + buf[4:])
    # a length field pointing past the end (e.g. a CompressedImage read as an Image)
    with pytest.raises(ImageDecodeError, match="malformed"):
        parse_image(bytes(_Writer().i32(0).u32(0).u32(10**9).buf))


def test_serialized_images_parse_back_exactly() -> None:
    from gapcam.ros_cdr import CdrHeader, serialize_compressed_image, serialize_image

    rng = np.random.default_rng(3)
    for frame_id in ("", "c", "cam", "rear_left_camera"):  # every string-length alignment
        header = CdrHeader(-7, 123, frame_id)
        bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        for image, encoding in [(bgr, "bgr8"), (bgr[..., 0], "mono8"), (bgr[:, ::2], "bgr8")]:
            msg = parse_image(serialize_image(header, encoding, image))
            assert msg.header == header and msg.encoding == encoding
            assert (msg.height, msg.width, msg.step) == (*image.shape[:2], image[0].nbytes)
            np.testing.assert_array_equal(msg.data, np.ascontiguousarray(image).ravel())
        jpeg = parse_compressed_image(serialize_compressed_image(header, "jpeg", b"\xff\xd8xy"))
        assert jpeg.header == header and jpeg.format == "jpeg"
        assert jpeg.data.tobytes() == b"\xff\xd8xy"
    with pytest.raises(ValueError, match="uint8"):
        serialize_image(CdrHeader(0, 0, ""), "32FC1", np.zeros((2, 2), np.float32))
