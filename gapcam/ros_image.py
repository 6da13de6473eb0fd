"""``sensor_msgs/Image`` pixel encodings <-> the core's BGR ``uint8`` arrays, in numpy and OpenCV.

``cv_bridge`` is not installable from PyPI (the ``cv-bridge`` package there is a broken ROS 1
port), and the node, bag replay and the tests all need the same conversions, so they live here,
ROS-free: functions take and return the message's *field values* (``encoding``, ``width``,
``height``, ``step``, ``data``, ``is_bigendian``), never message objects. That way rclpy messages
(``data`` is an ``array.array``) and rosbags messages (``data`` is a numpy array) both work.

Decoding (:func:`image_to_bgr`) honours row padding (``step`` > ``width * bytes_per_pixel``) and
the byte order of 16-bit data, and refuses anything it cannot convert exactly with a one-line
:class:`~gapcam.errors.ImageDecodeError`: an unknown encoding, a buffer shorter than
``step * height`` (a truncated frame), or a ``step`` too small for the width. A frame that is
silently misread would feed the network garbage that looks like a valid decision.

Encoding (:func:`encode_bgr`) is the inverse, for tests and simulators that produce camera frames
in a given encoding (the node serializes its own image outputs, :mod:`gapcam.ros_cdr`).

Bayer names follow ROS (the 2x2 pattern read from the top-left pixel), which OpenCV spells with
the pattern of the *second* row/column; the mapping is the one ``cv_bridge`` uses.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from gapcam.errors import ImageDecodeError
from gapcam.imageio import DEFAULT_MAX_PIXELS

#: Bytes per pixel of every supported encoding (``yuv422`` packs 2 pixels in 4 bytes).
BYTES_PER_PIXEL: dict[str, int] = {
    "rgb8": 3,
    "bgr8": 3,
    "rgba8": 4,
    "bgra8": 4,
    "mono8": 1,
    "mono16": 2,
    "yuv422": 2,  # UYVY: U0 Y0 V0 Y1
    "yuv422_yuy2": 2,  # YUYV: Y0 U0 Y1 V0
    "bayer_rggb8": 1,
    "bayer_bggr8": 1,
    "bayer_gbrg8": 1,
    "bayer_grbg8": 1,
}

#: Encodings :func:`image_to_bgr` accepts, in a stable order (for messages and docs).
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(BYTES_PER_PIXEL)

#: ROS Bayer pattern -> OpenCV demosaicing code (cv_bridge's mapping).
_BAYER_TO_BGR = {
    "bayer_rggb8": cv2.COLOR_BayerBG2BGR,
    "bayer_bggr8": cv2.COLOR_BayerRG2BGR,
    "bayer_gbrg8": cv2.COLOR_BayerGR2BGR,
    "bayer_grbg8": cv2.COLOR_BayerGB2BGR,
}

#: Colour channel (B=0, G=1, R=2) at each position of the 2x2 Bayer cell: (0,0), (0,1), (1,0), (1,1).
_BAYER_CELLS = {
    "bayer_rggb8": (2, 1, 1, 0),
    "bayer_bggr8": (0, 1, 1, 2),
    "bayer_gbrg8": (1, 0, 2, 1),
    "bayer_grbg8": (1, 2, 0, 1),
}

_YUV_TO_BGR = {"yuv422": cv2.COLOR_YUV2BGR_UYVY, "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUY2}
_BGR_TO_YUV = {"yuv422": cv2.COLOR_BGR2YUV_UYVY, "yuv422_yuy2": cv2.COLOR_BGR2YUV_YUY2}


def bytes_per_pixel(encoding: str) -> int:
    """Bytes per pixel of ``encoding``; :class:`ImageDecodeError` if it is not supported."""
    try:
        return BYTES_PER_PIXEL[encoding]
    except KeyError:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        ) from None


def image_to_bgr(
    encoding: str,
    width: int,
    height: int,
    step: int,
    data: Any,
    is_bigendian: int | bool = 0,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image`` as a contiguous BGR ``uint8`` ``(height, width, 3)`` array.

    ``data`` is anything exposing the buffer protocol (``bytes``, ``array.array``, numpy). Padding
    bytes at the end of each row are skipped; bytes beyond ``step * height`` are ignored.
    ``mono16`` is reduced to 8 bits by its high byte (the same rule as :func:`gapcam.imageio.as_bgr8`).
    A frame over ``max_pixels`` is refused before any conversion, as compressed frames are.
    """
    _check_pixels(encoding, width, height, max_pixels)
    rows = _rows(encoding, width, height, step, data)
    try:
        return _convert(encoding, rows, width, height, is_bigendian)
    except cv2.error as exc:  # OpenCV's own limits: one line, never an "inference error"
        raise ImageDecodeError(
            f"{encoding} image {width}x{height}: OpenCV cannot convert it: "
            f"{' '.join(str(exc).split())[-160:]}"
        ) from None


def _convert(
    encoding: str, rows: np.ndarray, width: int, height: int, is_bigendian: int | bool
) -> np.ndarray:
    width, height = int(width), int(height)
    bpp = BYTES_PER_PIXEL[encoding]
    px = rows[:, : width * bpp]
    if encoding == "bgr8":  # a copy: never alias (or hand out read-only) message memory
        return px.reshape(height, width, 3).copy()
    if encoding == "rgb8":
        return cv2.cvtColor(np.ascontiguousarray(px).reshape(height, width, 3), cv2.COLOR_RGB2BGR)
    if encoding == "bgra8":
        return cv2.cvtColor(np.ascontiguousarray(px).reshape(height, width, 4), cv2.COLOR_BGRA2BGR)
    if encoding == "rgba8":
        return cv2.cvtColor(np.ascontiguousarray(px).reshape(height, width, 4), cv2.COLOR_RGBA2BGR)
    if encoding == "mono8":
        return cv2.cvtColor(np.ascontiguousarray(px), cv2.COLOR_GRAY2BGR)
    if encoding == "mono16":
        dtype = ">u2" if is_bigendian else "<u2"
        mono = np.ascontiguousarray(px).view(dtype).reshape(height, width)
        return cv2.cvtColor((mono >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if encoding in _YUV_TO_BGR:
        return cv2.cvtColor(
            np.ascontiguousarray(px).reshape(height, width, 2), _YUV_TO_BGR[encoding]
        )
    return cv2.cvtColor(np.ascontiguousarray(px), _BAYER_TO_BGR[encoding])


#: Encodings whose pixels the core reads in place (no conversion): encoding -> pixel order.
VIEW_ORDERS: dict[str, str] = {"bgr8": "BGR", "rgb8": "RGB"}


def pixel_view(
    encoding: str,
    width: int,
    height: int,
    step: int,
    data: Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, str] | None:
    """A zero-copy ``(height, width, 3)`` view of ``bgr8``/``rgb8`` pixels and their order.

    The view keeps any row padding as its row stride and is read-only when ``data`` is (the
    core's preprocessing reads such views without copying them). ``None`` for encodings that
    need a conversion (use :func:`image_to_bgr`); the same size checks as :func:`image_to_bgr`.
    """
    order = VIEW_ORDERS.get(encoding)
    if order is None:
        return None
    _check_pixels(encoding, width, height, max_pixels)
    rows = _rows(encoding, width, height, step, data)
    return rows[:, : int(width) * 3].reshape(int(height), int(width), 3), order


def encode_bgr(
    image: np.ndarray, encoding: str, *, step: int | None = None, is_bigendian: int = 0
) -> dict[str, Any]:
    """A BGR ``uint8`` image as ``sensor_msgs/Image`` field values in ``encoding``.

    ``step`` larger than ``width * bytes_per_pixel`` pads every row with zero bytes (as some
    camera drivers do for alignment). Returns ``height``, ``width``, ``encoding``,
    ``is_bigendian``, ``step`` and ``data`` (``bytes``, which rclpy copies into the message fast).
    ``mono16`` spreads the 8-bit grey value over 16 bits (``v * 257``).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.shape} {image.dtype}")
    bpp = bytes_per_pixel(encoding)
    h, w = image.shape[:2]
    if encoding in _YUV_TO_BGR and w % 2:
        raise ValueError(f"{encoding} needs an even width, got {w}")
    if encoding == "bgr8":
        px = image
    elif encoding == "rgb8":
        px = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif encoding == "bgra8":
        px = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    elif encoding == "rgba8":
        px = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
    elif encoding == "mono8":
        px = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif encoding == "mono16":
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
        px = grey.astype(">u2" if is_bigendian else "<u2").view(np.uint8)
    elif encoding in _BGR_TO_YUV:
        px = cv2.cvtColor(image, _BGR_TO_YUV[encoding])
    else:
        px = _mosaic(image, _BAYER_CELLS[encoding])
    rows = np.ascontiguousarray(px).reshape(h, w * bpp)
    step = w * bpp if step is None else int(step)
    if step < w * bpp:
        raise ValueError(f"step {step} is smaller than width * bytes per pixel ({w * bpp})")
    if step > w * bpp:
        rows = np.pad(rows, ((0, 0), (0, step - w * bpp)))
    return {
        "height": h,
        "width": w,
        "encoding": encoding,
        "is_bigendian": int(bool(is_bigendian)) if encoding == "mono16" else 0,
        "step": step,
        "data": rows.tobytes(),
    }


def _check_pixels(encoding: str, width: int, height: int, max_pixels: int) -> None:
    if int(width) * int(height) > max_pixels:
        raise ImageDecodeError(
            f"{encoding} image {width}x{height}: more pixels than the limit (max_pixels "
            f"{max_pixels}); refused unconverted, raise max_pixels if the camera really is that large"
        )


def _rows(encoding: str, width: int, height: int, step: int, data: Any) -> np.ndarray:
    """``data`` as a ``(height, step)`` ``uint8`` view, after checking sizes against the header."""
    bpp = bytes_per_pixel(encoding)
    width, height, step = int(width), int(height), int(step)
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{encoding} image: empty size {width}x{height}")
    if step < width * bpp:
        raise ImageDecodeError(
            f"{encoding} image {width}x{height}: step {step} < width * {bpp} bytes per pixel "
            f"({width * bpp}); the header is inconsistent"
        )
    if encoding in _YUV_TO_BGR and width % 2:
        raise ImageDecodeError(f"{encoding} image: odd width {width}; 4:2:2 needs pixel pairs")
    try:
        buf = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        buf = np.asarray(data, dtype=np.uint8).ravel()
    need = step * height
    if buf.size < need:
        raise ImageDecodeError(
            f"{encoding} image {width}x{height}: truncated buffer, {buf.size} of {need} bytes "
            f"(step {step} x height {height}); check the camera driver or transport"
        )
    return buf[:need].reshape(height, step)


def _mosaic(image: np.ndarray, cells: tuple[int, int, int, int]) -> np.ndarray:
    """One-channel Bayer mosaic of a BGR image; ``cells`` names the channel of each 2x2 position."""
    out = np.empty(image.shape[:2], dtype=np.uint8)
    for (dy, dx), channel in zip(((0, 0), (0, 1), (1, 0), (1, 1)), cells, strict=True):
        out[dy::2, dx::2] = image[dy::2, dx::2, channel]
    return out
