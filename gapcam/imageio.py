"""Reading images from files and byte buffers into the one pixel format the core uses.

The core works on ``uint8`` BGR arrays of shape ``(H, W, 3)`` (OpenCV's native order, and what a
camera driver's ``bgr8`` gives). Everything else - grayscale, palette PNGs, 16-bit, alpha - is
converted here, once, so no other module has to care.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gapcam.errors import ImageDecodeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

_JPEG_SOI = b"\xff\xd8"
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
    data: bytes | bytearray | memoryview | np.ndarray, what: str = "image"
) -> np.ndarray:
    """Decode a compressed image (JPEG, PNG, ...) into BGR ``uint8``.

    A JPEG cut short still decodes in libjpeg (with grey rows at the bottom), which would feed the
    network half an image without anyone noticing; such buffers are refused instead.
    """
    buf = np.frombuffer(
        bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), np.uint8
    )
    if buf.size == 0:
        raise ImageDecodeError(f"{what}: empty buffer; check the camera driver or the file")
    head = buf[:2].tobytes()
    if head == _JPEG_SOI and _JPEG_EOI not in buf[-64:].tobytes():
        raise ImageDecodeError(
            f"{what}: truncated JPEG ({buf.size} bytes, no end-of-image marker); "
            "the frame is incomplete, check the transport or re-record"
        )
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodeError(
            f"{what}: not a decodable image ({buf.size} bytes); expected JPEG or PNG data"
        )
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file (any size, JPEG/PNG/..., colour or grayscale) as BGR ``uint8``."""
    p = Path(path)
    if not p.exists():
        raise ImageDecodeError(f"{p}: no such file")
    if not p.is_file():
        raise ImageDecodeError(f"{p}: not a file")
    return decode_image_bytes(p.read_bytes(), what=str(p))


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
