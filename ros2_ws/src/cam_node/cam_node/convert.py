"""ROS messages <-> numpy, by way of the ROS-free :mod:`gapcam.ros_image`, :mod:`gapcam.ros_cdr`
and :mod:`gapcam.stream`.

The only module of the node that knows message field names; no maths here. Camera frames arrive
serialized (the subscription is ``raw=True``): :func:`frame_from_raw` and
:func:`frame_from_compressed` read the few header fields from the CDR bytes and leave the pixels
where they are (``bgr8``/``rgb8``: a zero-copy view; JPEG: decoded at reduced size). The image
outputs leave serialized too (:func:`bgr_image_cdr`, :func:`mono8_image_cdr`, :func:`jpeg_cdr`,
for ``Publisher.publish(bytes)``): their pixels are copied once, not into a Python message first.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from gapcam_msgs.msg import LaneChangeDecision
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from gapcam.errors import ImageDecodeError
from gapcam.imageio import DEFAULT_MAX_PIXELS
from gapcam.model_card import InputSpec
from gapcam.preprocess import decode_frame
from gapcam.ros_cdr import (
    CdrHeader,
    CdrWriter,
    parse_compressed_image,
    parse_header,
    parse_image,
    serialize_compressed_image,
    serialize_image,
)
from gapcam.ros_image import image_to_bgr, pixel_view
from gapcam.stamps import stamp_ns
from gapcam.stream import FrameOutput, decision_fields, roi_fields

__all__ = ["Frame", "stamp_ns"]  # stamp_ns: the core's conversion, used by the node through here


@dataclass(frozen=True)
class Frame:
    """One camera frame as the worker needs it."""

    header: CdrHeader  #: stamp and frame id of the message
    #: the pixels (for bgr8/rgb8 a read-only view of the message: with the worker's kept-buffer
    #: take it is valid until the next frame is taken)
    image: np.ndarray
    order: str  #: "BGR" or "RGB"
    frame_size: tuple[int, int]  #: (width, height) of the camera frame (image may be smaller)
    data: np.ndarray | None = None  #: the compressed bytes (to decode again for an overlay)
    what: str = ""


def frame_from_raw(buf: bytes | memoryview, max_pixels: int = DEFAULT_MAX_PIXELS) -> Frame:
    """A serialized ``sensor_msgs/Image``: ``bgr8``/``rgb8`` pixels stay in ``buf`` (a view);
    other encodings are converted to BGR. :class:`ImageDecodeError` for a bad frame."""
    msg = parse_image(buf)
    view = pixel_view(
        msg.encoding, msg.width, msg.height, msg.step, msg.data, max_pixels=max_pixels
    )
    if view is not None:
        image, order = view
    else:
        image, order = (
            image_to_bgr(msg.encoding, msg.width, msg.height, msg.step, msg.data, msg.is_bigendian),
            "BGR",
        )
    return Frame(msg.header, image, order, (int(msg.width), int(msg.height)))


def frame_from_compressed(
    buf: bytes | memoryview, spec: InputSpec, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Frame:
    """A serialized ``sensor_msgs/CompressedImage``, decoded just large enough for ``spec``."""
    msg = parse_compressed_image(buf)
    what = f"compressed image ({msg.format!r})"
    image, size = decode_frame(msg.data, spec, what, max_pixels=max_pixels)
    return Frame(msg.header, image, "BGR", size, msg.data, what)


def input_header(buf: bytes | memoryview) -> CdrHeader:
    """Stamp and frame id of a serialized camera message, without touching its pixels (so a
    stale frame is dropped before it is decoded)."""
    return parse_header(buf, "camera message")


def header_msg(header: CdrHeader) -> Header:
    """``std_msgs/Header`` for the outputs: the input's stamp and frame id, unchanged."""
    msg = Header(frame_id=header.frame_id)
    msg.stamp.sec, msg.stamp.nanosec = header.sec, header.nanosec
    return msg


def decision_msg(header: Header, out: FrameOutput, latency_ms: float) -> LaneChangeDecision:
    """``gapcam_msgs/LaneChangeDecision`` for one frame; the input header is copied as is.

    The rclpy message of what :func:`decision_cdr` writes (the node publishes that): the
    reference the tests compare it with, and the way for tools that want a message object."""
    msg = LaneChangeDecision(**{**decision_fields(out), "latency_ms": float(latency_ms)})
    msg.header = header
    msg.cam_box = RegionOfInterest(**roi_fields(out.result.box))
    return msg


def decision_cdr(header: CdrHeader, out: FrameOutput, latency_ms: float) -> bytes:
    """:func:`decision_msg` serialized as rclpy would serialize it (same length and fields; the
    alignment padding, which rclpy leaves uninitialised, is zero here), for
    ``Publisher.publish(bytes)``: what the node publishes on every frame.

    Why: building the rclpy message runs a type check in every field setter, and publishing it
    converts it to a C message first (``convert_from_py``), which rmw then serializes; this
    writes the CDR bytes once (README "Performance"). The fields are written in the order of
    ``LaneChangeDecision.msg``; the test compares the bytes with ``serialize_message``.
    """
    f = decision_fields(out)
    box = roi_fields(out.result.box)
    w = CdrWriter()
    w.header(header)
    w.uint16(f["decision"])
    w.uint16(f["raw_decision"])
    w.string(f["decision_label"])
    w.strings(f["class_names"])
    w.float32s(f["probabilities"])
    w.float32s(f["smoothed_probabilities"])
    w.float32(f["confidence"])
    w.uint32(box["x_offset"])  # sensor_msgs/RegionOfInterest, in its declaration order
    w.uint32(box["y_offset"])
    w.uint32(box["height"])
    w.uint32(box["width"])
    w.boolean(box["do_rectify"])
    w.string(f["model_id"])
    w.float32(float(latency_ms))
    return w.done()


def bgr_image_cdr(header: CdrHeader, image: np.ndarray) -> bytes:
    """A serialized ``bgr8`` ``sensor_msgs/Image`` of a BGR ``(H, W, 3)`` array."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR (H, W, 3) image, got shape {image.shape}")
    return serialize_image(header, "bgr8", image)


def mono8_image_cdr(header: CdrHeader, image: np.ndarray) -> bytes:
    """A serialized ``mono8`` ``sensor_msgs/Image`` of an ``(H, W)`` array."""
    if image.ndim != 2:
        raise ValueError(f"expected a single-channel (H, W) image, got shape {image.shape}")
    return serialize_image(header, "mono8", image)


def jpeg_cdr(header: CdrHeader, image: np.ndarray, quality: int) -> bytes:
    """A serialized ``sensor_msgs/CompressedImage`` (``jpeg``) of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV does not fail on a valid uint8 image
        raise ImageDecodeError("JPEG encoding of the overlay failed")
    return serialize_compressed_image(header, "jpeg", buf)
