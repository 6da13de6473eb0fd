"""cam_node.convert against rclpy's own CDR serializer: the node's raw (serialized) input path.

Many shapes, encodings, frame id lengths (alignment) and row paddings: the frame the worker
builds from the serialized bytes must equal the message's fields and pixels exactly, without
copying the pixels of bgr8/rgb8 frames.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from cam_node import convert
from gapcam_msgs.msg import LaneChangeDecision
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image

from gapcam.decision import SmoothedDecision
from gapcam.errors import ImageDecodeError
from gapcam.model_card import InputSpec
from gapcam.pipeline import FrameResult
from gapcam.preprocess import decode_frame
from gapcam.ros_cdr import CdrHeader
from gapcam.ros_image import BYTES_PER_PIXEL, encode_bgr, image_to_bgr
from gapcam.stream import FrameOutput

RNG = np.random.default_rng(7)


def _msg(image: np.ndarray, encoding: str, pad: int, frame_id: str, stamp: tuple[int, int]):
    f = encode_bgr(image, encoding, step=image.shape[1] * BYTES_PER_PIXEL[encoding] + pad)
    msg = Image(**f)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    return msg, f


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8", "mono16", "bgra8", "yuv422"])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (7, 5), (64, 48), (1280, 720)])
@pytest.mark.parametrize("frame_id", ["", "c", "cam", "cam0", "rear_left_camera_optical_frame"])
def test_raw_frame_equals_the_message(encoding, size, frame_id) -> None:
    w, h = size
    if encoding == "yuv422" and w % 2:
        w += 1
    image = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    pad = int(RNG.integers(0, 5)) * (w > 1)
    msg, f = _msg(image, encoding, pad, frame_id, (1_700_000_000, 123_456_789))
    buf = serialize_message(msg)
    frame = convert.frame_from_raw(buf)
    assert frame.header.frame_id == frame_id
    assert frame.header.stamp_ns == 1_700_000_000_123_456_789
    assert frame.frame_size == (w, h)
    want = image_to_bgr(f["encoding"], w, h, f["step"], f["data"], f["is_bigendian"])
    got = frame.image if frame.order == "BGR" else frame.image[..., ::-1]
    np.testing.assert_array_equal(got, want)
    if encoding in ("bgr8", "rgb8"):  # a view into the serialized bytes, not a copy
        assert frame.order == encoding[:3].upper()
        assert np.shares_memory(frame.image, np.frombuffer(buf, np.uint8))
    header = convert.header_msg(frame.header)
    assert header == msg.header


def test_raw_frame_with_a_big_endian_mono16_flag() -> None:
    image = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    f = encode_bgr(image, "mono16", is_bigendian=1)
    msg = Image(**f)
    frame = convert.frame_from_raw(serialize_message(msg))
    np.testing.assert_array_equal(
        frame.image, image_to_bgr("mono16", 10, 6, f["step"], f["data"], 1)
    )


def test_truncated_pixels_and_unknown_encodings_are_decode_errors() -> None:
    msg, _ = _msg(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8), "bgr8", 0, "c", (1, 2))
    msg.height = 9  # the header claims a row more than the data holds
    with pytest.raises(ImageDecodeError, match="truncated"):
        convert.frame_from_raw(serialize_message(msg))
    msg.height, msg.encoding = 8, "32FC1"
    with pytest.raises(ImageDecodeError, match="unsupported image encoding"):
        convert.frame_from_raw(serialize_message(msg))
    with pytest.raises(ImageDecodeError, match="malformed"):
        convert.frame_from_raw(serialize_message(msg)[:40])


@pytest.mark.parametrize("size", [(1280, 720), (640, 480), (200, 100)])
@pytest.mark.parametrize("frame_id", ["", "jpeg_cam", "abc"])
def test_compressed_frame_is_the_cores_reduced_decode(size, frame_id) -> None:
    spec = InputSpec()
    w, h = size
    image = cv2.GaussianBlur(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8), (9, 9), 3)
    ok, jpg = cv2.imencode(".jpg", image)
    assert ok
    msg = CompressedImage(format="jpeg", data=jpg.tobytes())
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = 5, 6
    frame = convert.frame_from_compressed(serialize_message(msg), spec)
    want, want_size = decode_frame(jpg.tobytes(), spec)
    assert frame.header.frame_id == frame_id and frame.header.stamp_ns == 5_000_000_006
    assert frame.frame_size == want_size == (w, h) and frame.order == "BGR"
    np.testing.assert_array_equal(frame.image, want)
    # decoded no smaller than the network input (or the frame), reduced when the frame is larger
    dh, dw = frame.image.shape[:2]
    assert dw >= min(w, spec.width) and dh >= min(h, spec.height)
    assert (dw, dh) == (w, h) if h < 2 * spec.height else dh < h


# ---- the image outputs, serialized by the node itself -------------------------------------------

_HEADERS = [CdrHeader(0, 0, ""), CdrHeader(1_700_000_000, 5, "c"), CdrHeader(-3, 999, "rear_x")]


@pytest.mark.parametrize("header", _HEADERS)
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (640, 360)])
def test_image_outputs_are_what_rclpy_would_serialize(header: CdrHeader, size) -> None:
    """What rclpy writes for the same message (the same layout and length; rclpy leaves its
    alignment padding uninitialized, so the comparison is through rclpy's own deserializer)."""
    w, h = size
    bgr = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    grey = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    ros_header = convert.header_msg(header)
    for data, encoding, ours in [
        (bgr, "bgr8", convert.bgr_image_cdr(header, bgr)),
        (grey, "mono8", convert.mono8_image_cdr(header, grey)),
        (bgr[:, ::-1], "bgr8", convert.bgr_image_cdr(header, bgr[:, ::-1])),  # a strided view
    ]:
        msg = Image(
            header=ros_header,
            height=h,
            width=w,
            encoding=encoding,
            step=data[0].nbytes,
            data=np.ascontiguousarray(data).tobytes(),
        )
        assert deserialize_message(ours, Image) == msg
        assert len(ours) == len(serialize_message(msg))
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    msg = CompressedImage(header=ros_header, format="jpeg", data=jpg.tobytes())
    ours = convert.jpeg_cdr(header, bgr, 80)
    assert deserialize_message(ours, CompressedImage) == msg
    assert len(ours) == len(serialize_message(msg))


def _output(classes: tuple[str, ...], label: str, box, model_id: str) -> FrameOutput:
    """A frame output with the given classes, decision and box (the values are arbitrary)."""
    n = len(classes)
    probs = RNG.dirichlet(np.ones(n)).astype(np.float32)
    smoothed = tuple(float(p) for p in RNG.dirichlet(np.ones(n)))
    result = FrameResult(
        classes=classes,
        probabilities=probs,
        logits=np.log(probs),
        class_index=int(np.argmax(probs)),
        cam=np.zeros((7, 7), np.float32),
        cam_class=classes[0],
        box=box,
        image_size=(640, 480),
    )
    decision = SmoothedDecision(label, smoothed[classes.index(label)], smoothed, False)
    return FrameOutput("c", 0, "cam", result, decision, model_id)


_OUTPUTS = [
    _output(("blocked", "free", "undefined"), "free", [10, 20, 110, 220], "lane@ce9394ca/fp32"),
    _output(("blocked", "free", "undefined"), "undefined", None, ""),
    _output(("a",), "a", [0, 0, 1, 1], "m"),  # one class, one-byte strings: every alignment
    _output(tuple(f"class_{i}" * (i % 4) for i in range(1000)), "class_7" * 3, None, "imagenet"),
    _output(("grüne Ampel", "rot"), "rot", [1, 2, 3, 4], "ünïcode@0/int8/tensorrt"),
]


@pytest.mark.parametrize("header", _HEADERS)
@pytest.mark.parametrize("out", _OUTPUTS)
@pytest.mark.parametrize("latency_ms", [0.0, 12.345678])
def test_the_decision_is_what_rclpy_would_serialize(header, out, latency_ms) -> None:
    """The node publishes :func:`convert.decision_cdr`; it must read back as the message
    :func:`convert.decision_msg` builds (through rclpy's own serializer: float32 rounding and
    uninitialised padding aside), with the same length."""
    ours = convert.decision_cdr(header, out, latency_ms)
    msg = convert.decision_msg(convert.header_msg(header), out, latency_ms)
    theirs = serialize_message(msg)
    assert len(ours) == len(theirs)
    assert deserialize_message(ours, LaneChangeDecision) == deserialize_message(
        theirs, LaneChangeDecision
    )


def test_image_outputs_refuse_the_wrong_shape() -> None:
    header = CdrHeader(1, 2, "c")
    with pytest.raises(ValueError, match="BGR"):
        convert.bgr_image_cdr(header, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="single-channel"):
        convert.mono8_image_cdr(header, np.zeros((4, 4, 3), np.uint8))
