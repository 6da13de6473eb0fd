"""Reading images from files and byte buffers into the one pixel format the core uses.

The core works on ``uint8`` BGR arrays of shape ``(H, W, 3)`` (OpenCV's native order, and what a
camera driver's ``bgr8`` gives). Everything else - grayscale, palette PNGs, 16-bit, alpha - is
converted here, once, so no other module has to care.

Encoded images are hostile input (a camera topic anyone on the network can publish to, files and
bags from elsewhere): :func:`decode_image_bytes` is the one decoder of the package, and it refuses
decompression bombs before decoding and corrupt data after, always with one line.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import cv2
import numpy as np

from gapcam import codec_messages
from gapcam.errors import ImageDecodeError
from gapcam.image_header import ImageHeader, read_header

log = logging.getLogger(__name__)

#: Default limit on the pixels an encoded image may claim: 8K UHD (7680x4320), above any
#: automotive camera; a header over it is refused before decoding (a decompression bomb).
DEFAULT_MAX_PIXELS = 7680 * 4320

#: Most bytes per pixel an image file can reasonably hold (16-bit RGBA, uncompressed, x2).
_MAX_BYTES_PER_PIXEL = 16
_NOTE_THROTTLE_S = 60.0
_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

_JPEG_EOI = b"\xff\xd9"


def as_bgr8(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as contiguous ``uint8`` BGR ``(H, W, 3)``.

    Accepts gray ``(H, W)`` / ``(H, W, 1)``, BGR, BGRA, and ``uint16`` or float data (scaled to
    8 bits), because cameras and files deliver all of these.
    """
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise ImageDecodeError(f"expected an image array (H, W[, C]), got {_describe(image)}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageDecodeError(f"unsupported pixel type {image.dtype}; use uint8, uint16 or float")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels != 3:
        raise ImageDecodeError(f"unsupported channel count {channels}; expected 1, 3 or 4")
    return np.ascontiguousarray(image)


def decode_image_bytes(
    data: bytes | bytearray | memoryview | np.ndarray,
    what: str = "image",
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode a compressed image (JPEG, PNG, ...) into BGR ``uint8``, or refuse it.

    The one decoder of the package (files, ``CompressedImage`` messages, bags). Before any pixel
    is decoded, the header's claimed size is checked against ``max_pixels`` and against the
    length of the data (see :mod:`gapcam.image_header`), so a decompression bomb costs
    microseconds, not gigabytes. After decoding, a corruption warning from libjpeg or libpng
    (which OpenCV ignores: it returns the image with grey where the data was bad) makes the
    frame a decode error too. Every refusal is one :class:`ImageDecodeError` line; OpenCV's own
    exceptions never escape.

    ``min_size`` (``(width, height)``, e.g. the model input) allows a JPEG to be decoded at 1/2,
    1/4 or 1/8 of its size by libjpeg's DCT scaling (much faster) as long as the result still
    covers ``min_size``; the image returned is then that smaller one. Other formats are always
    decoded at full size (OpenCV would decode them fully and resize anyway).
    """
    buf = _as_uint8(data)
    if buf.size == 0:
        raise ImageDecodeError(f"{what}: empty buffer; check the camera driver or the file")
    try:
        header = read_header(buf)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{what}: {exc}") from None
    _check_claim(header, buf.size, what, max_pixels)
    if header.format == "JPEG" and _JPEG_EOI not in buf[-64:].tobytes():
        raise ImageDecodeError(
            f"{what}: truncated JPEG ({buf.size} bytes, no end-of-image marker); "
            "the frame is incomplete, check the transport or re-record"
        )
    flags = cv2.IMREAD_COLOR
    if header.format == "JPEG" and min_size is not None:
        flags = _reduced_flag(header.width, header.height, min_size)
    try:
        with codec_messages.capture() as said:
            image = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageDecodeError(f"{what}: OpenCV cannot decode it: {_cv_error(exc)}") from None
    corrupt = [m for m in said if codec_messages.is_corruption(m)]
    if corrupt:
        raise ImageDecodeError(
            f"{what}: corrupt {header.format} data ({corrupt[0]}); the frame was dropped, "
            "check the camera, transport or file"
        )
    if image is None:
        detail = f" ({said[0]})" if said else ""
        raise ImageDecodeError(
            f"{what}: {header.format} data could not be decoded{detail} ({buf.size} bytes); "
            "the file or frame is damaged"
        )
    for m in said:
        _log_codec_note(m)
    if image.shape[0] * image.shape[1] > max_pixels:  # a header we misread: never pass it on
        raise ImageDecodeError(f"{what}: decoded {image.shape[1]}x{image.shape[0]} > max_pixels")
    return image


def read_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read an image file (JPEG/PNG/..., colour or grayscale) as BGR ``uint8``.

    The same checks as :func:`decode_image_bytes`; a file far larger than any image of
    ``max_pixels`` could be is refused before it is read into memory.
    """
    p = Path(path)
    if not p.exists():
        raise ImageDecodeError(f"{p}: no such file")
    if not p.is_file():
        raise ImageDecodeError(f"{p}: not a file")
    size = p.stat().st_size
    if size > max_pixels * _MAX_BYTES_PER_PIXEL + (1 << 20):
        raise ImageDecodeError(
            f"{p}: {size / 1e6:.0f} MB is more than an image within max_pixels {max_pixels} "
            "can take; raise --max-pixels if this really is one image"
        )
    return decode_image_bytes(p.read_bytes(), what=str(p), max_pixels=max_pixels, min_size=min_size)


def reduced_size(width: int, height: int, min_size: tuple[int, int] | None) -> tuple[int, int]:
    """The size :func:`decode_image_bytes` returns for a JPEG of ``width`` x ``height``."""
    factor = reduction(width, height, min_size)
    return -(-width // factor), -(-height // factor)


def reduction(width: int, height: int, min_size: tuple[int, int] | None) -> int:
    """Largest libjpeg scale factor (1, 2, 4, 8) whose output still covers ``min_size``."""
    if min_size is None:
        return 1
    min_w, min_h = min_size
    for factor in (8, 4, 2):
        if -(-width // factor) >= min_w and -(-height // factor) >= min_h:
            return factor
    return 1


def _reduced_flag(width: int, height: int, min_size: tuple[int, int]) -> int:
    return _REDUCED_FLAGS[reduction(width, height, min_size)]


def _check_claim(header: ImageHeader, size: int, what: str, max_pixels: int) -> None:
    """Refuse a header whose size is over the limit or impossible for the amount of data."""
    if header.pixels > max_pixels:
        raise ImageDecodeError(
            f"{what}: {header.format} claims {header.width}x{header.height} pixels "
            f"({header.pixels / 1e6:.1f} MP), over the limit of {max_pixels / 1e6:.1f} MP "
            f"(max_pixels {max_pixels}); refused undecoded. A real camera this large needs a "
            "higher max_pixels (--max-pixels, node parameter max_pixels)"
        )
    if size < header.min_bytes:
        raise ImageDecodeError(
            f"{what}: {header.format} claims {header.width}x{header.height} pixels but holds "
            f"only {size} bytes (a complete image needs at least {header.min_bytes}); "
            "truncated or forged, refused undecoded"
        )


def _as_uint8(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """A flat ``uint8`` view of any buffer (no copy for bytes, memoryview, array.array)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, np.uint8)
    except (TypeError, ValueError):
        return np.frombuffer(bytes(data), np.uint8)


def _cv_error(exc: cv2.error) -> str:
    """OpenCV's multi-line exception text reduced to its one informative line."""
    text = " ".join(str(exc).split())
    m = re.search(r"error: \(-?\d+:[^)]*\) (.*)", text)
    return (m.group(1) if m else text)[:200]


_last_note: dict[str, float] = {}


def _log_codec_note(message: str) -> None:
    """A codec remark on an image that decoded fine: logged, at most once a minute per text."""
    key = message[:60]
    now = time.monotonic()
    if now - _last_note.get(key, -1e9) >= _NOTE_THROTTLE_S:
        _last_note[key] = now
        log.warning("image decoder: %s", message)


def list_images(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories (recursively, sorted) into image files.

    A directory that holds no image is an error rather than a silent no-op, because the user
    almost certainly pointed at the wrong place.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ImageDecodeError(
                    f"{p}: directory holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            found.extend(files)
        elif p.exists():
            found.append(p)
        else:
            raise ImageDecodeError(f"{p}: no such file or directory")
    return found


def _describe(obj: object) -> str:
    if isinstance(obj, np.ndarray):
        return f"array of shape {obj.shape} and dtype {obj.dtype}"
    return type(obj).__name__
