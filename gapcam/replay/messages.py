"""Building and reading the messages of replay bags with ``rosbags`` type-store classes.

The decision message is filled from :func:`gapcam.stream.decision_fields`,
:func:`~gapcam.stream.roi_fields` and :func:`~gapcam.stream.split_stamp`, exactly as the live node
fills its rclpy message, so an offline decision is the same bytes as a live one (apart from
``latency_ms``, which measures the machine). Pixel conversions of raw images go through
:mod:`gapcam.ros_image`, the node's converter.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from gapcam import node_interface, ros_image
from gapcam.errors import ImageDecodeError
from gapcam.imageio import DEFAULT_MAX_PIXELS, decode_image_bytes
from gapcam.replay.bag_io import (
    COMPRESSED_IMAGE,
    DECISION,
    DIAGNOSTIC_ARRAY,
    IMAGE,
    STRING,
)
from gapcam.stamps import split_stamp
from gapcam.stream import FrameOutput, decision_fields, roi_fields


def header(store: Any, stamp_ns: int, frame_id: str) -> Any:
    """``std_msgs/Header`` with the input's stamp and frame id (never "now")."""
    sec, nsec = split_stamp(stamp_ns)
    time_t = store.types["builtin_interfaces/msg/Time"]
    return store.types["std_msgs/msg/Header"](
        stamp=time_t(sec=sec, nanosec=nsec), frame_id=frame_id
    )


def image_from_msg(
    msgtype: str, msg: Any, what: str = "image", *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """A ``sensor_msgs/Image`` or ``CompressedImage`` (rosbags object) as BGR ``uint8``.

    Raises :class:`ImageDecodeError` for a truncated, corrupt, oversized or undecodable frame;
    replay counts and skips such frames, as the node does.
    """
    if msgtype == IMAGE:
        return ros_image.image_to_bgr(
            msg.encoding,
            msg.width,
            msg.height,
            msg.step,
            msg.data,
            msg.is_bigendian,
            max_pixels=max_pixels,
        )
    if msgtype == COMPRESSED_IMAGE:
        return decode_image_bytes(msg.data, what=what, max_pixels=max_pixels)
    raise ImageDecodeError(f"{what}: {msgtype} is not an image message")


def decision_msg(store: Any, out: FrameOutput) -> Any:
    """``gapcam_msgs/LaneChangeDecision`` for one processed frame."""
    fields = decision_fields(out)
    fields["probabilities"] = np.asarray(fields["probabilities"], dtype=np.float32)
    fields["smoothed_probabilities"] = np.asarray(
        fields["smoothed_probabilities"], dtype=np.float32
    )
    roi = store.types["sensor_msgs/msg/RegionOfInterest"](**roi_fields(out.result.box))
    return store.types[DECISION](
        header=header(store, out.stamp_ns, out.frame_id), cam_box=roi, **fields
    )


def raw_image_msg(store: Any, stamp_ns: int, frame_id: str, bgr: np.ndarray, encoding: str) -> Any:
    """``sensor_msgs/Image`` in ``encoding`` (the camera's format) from a BGR frame."""
    f = ros_image.encode_bgr(bgr, encoding)
    f["data"] = np.frombuffer(f["data"], dtype=np.uint8)
    return store.types[IMAGE](header=header(store, stamp_ns, frame_id), **f)


def compressed_image_msg(
    store: Any,
    stamp_ns: int,
    frame_id: str,
    bgr: np.ndarray,
    quality: int = 85,
    fmt: str = "bgr8; jpeg compressed bgr8",
) -> Any:
    """``sensor_msgs/CompressedImage`` (JPEG); ``fmt`` defaults to image_transport's format string
    (what a camera's ``.../compressed`` topic carries); the node's overlays use ``"jpeg"``."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV fails only on empty images
        raise ImageDecodeError("JPEG encoding failed")
    return store.types[COMPRESSED_IMAGE](
        header=header(store, stamp_ns, frame_id),
        format=fmt,
        data=buf.reshape(-1),
    )


def string_msg(store: Any, text: str) -> Any:
    return store.types[STRING](data=text)


def diagnostic_array(store: Any, stamp_ns: int, statuses: list[node_interface.StatusFields]) -> Any:
    """``diagnostic_msgs/DiagnosticArray`` of ``statuses``, stamped with recorded time."""
    types = node_interface.DiagnosticTypes(
        array=store.types[DIAGNOSTIC_ARRAY],
        status=store.types["diagnostic_msgs/msg/DiagnosticStatus"],
        key_value=store.types["diagnostic_msgs/msg/KeyValue"],
    )
    return node_interface.diagnostic_array(types, header(store, stamp_ns, ""), statuses)
