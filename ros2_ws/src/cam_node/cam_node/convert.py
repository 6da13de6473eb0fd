"""ROS messages <-> numpy, by way of the ROS-free :mod:`gapcam.ros_image` and :mod:`gapcam.stream`.

The only module of the node that knows message field names; no maths here.
"""

from __future__ import annotations

import cv2
import numpy as np
from gapcam_msgs.msg import LaneChangeDecision
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header

from gapcam.errors import ImageDecodeError
from gapcam.imageio import DEFAULT_MAX_PIXELS, decode_image_bytes
from gapcam.ros_image import bgr_to_image_fields, image_to_bgr, mono8_to_image_fields
from gapcam.stream import FrameOutput, decision_fields, roi_fields


def stamp_ns(header: Header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def image_msg_to_bgr(
    msg: Image | CompressedImage, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Pixels of a raw or compressed image message as BGR ``uint8``; :class:`ImageDecodeError`
    for anything that cannot be read exactly (unknown encoding, truncated data, corrupt JPEG,
    more than ``max_pixels``)."""
    if isinstance(msg, CompressedImage):
        return decode_image_bytes(
            memoryview(msg.data), what=f"compressed image ({msg.format!r})", max_pixels=max_pixels
        )
    return image_to_bgr(
        msg.encoding,
        msg.width,
        msg.height,
        msg.step,
        msg.data,
        msg.is_bigendian,
        max_pixels=max_pixels,
    )


def decision_msg(header: Header, out: FrameOutput, latency_ms: float) -> LaneChangeDecision:
    """``gapcam_msgs/LaneChangeDecision`` for one frame; the input header is copied as is."""
    msg = LaneChangeDecision(**{**decision_fields(out), "latency_ms": float(latency_ms)})
    msg.header = header
    msg.cam_box = RegionOfInterest(**roi_fields(out.result.box))
    return msg


def bgr_image_msg(header: Header, image: np.ndarray) -> Image:
    msg = Image(**bgr_to_image_fields(image))
    msg.header = header
    return msg


def mono8_image_msg(header: Header, image: np.ndarray) -> Image:
    msg = Image(**mono8_to_image_fields(image))
    msg.header = header
    return msg


def jpeg_msg(header: Header, image: np.ndarray, quality: int) -> CompressedImage:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV does not fail on a valid uint8 image
        raise ImageDecodeError("JPEG encoding of the overlay failed")
    msg = CompressedImage(format="jpeg", data=buf.tobytes())
    msg.header = header
    return msg
