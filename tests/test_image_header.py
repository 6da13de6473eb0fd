"""Reading the claimed size from encoded headers, before any decoding (gapcam.image_header)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from gapcam.errors import ImageDecodeError
from gapcam.image_header import MAX_JPEG_SCANS, read_header


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8), (5, 5), 2)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_jpeg_size_behind_large_app_segments_and_fill_bytes(jpeg):
    """SOF may follow big EXIF/ICC segments (a thumbnail JPEG inside them is skipped whole)."""
    app1 = b"Exif\x00\x00" + jpeg[:400] + bytes(60_000)  # holds another SOI/SOF: not the frame
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    data = jpeg[:2] + b"\xff\xff" + segment + jpeg[2:]
    h = read_header(data)
    assert (h.format, h.width, h.height) == ("JPEG", 200, 120)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (120, 200, 3)


def test_progressive_jpeg_and_its_minimum_size(jpeg):
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    prog = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    h = read_header(prog)
    assert (h.width, h.height) == (200, 120) and not h.arithmetic
    # a real JPEG always holds more than the bound (1 bit per 8x8 block)
    assert len(prog) > h.min_bytes == (25 * 15) // 8


def test_too_many_scans_is_refused(jpeg):
    sos = jpeg.find(b"\xff\xda")
    data = jpeg[:sos] + b"\xff\xda\x00\x02" * (MAX_JPEG_SCANS + 1) + jpeg[sos:]
    with pytest.raises(ImageDecodeError, match="scans"):
        read_header(data)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[:2] + b"\xff\xda\x00\x02" + d[2:], "before the frame header"),
        (lambda d: d[:30], "truncated JPEG header"),
        (
            lambda d: d.replace(b"\xff\xc0\x00\x11\x08\x00\x78", b"\xff\xc0\x00\x11\x08\x00\x00"),
            "DNL",
        ),
    ],
)
def test_broken_jpeg_headers(jpeg, mangle, message):
    with pytest.raises(ImageDecodeError, match=message):
        read_header(mangle(jpeg))


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp", ".ppm"])
def test_other_formats(ext):
    image = np.zeros((33, 47, 3), np.uint8)
    h = read_header(cv2.imencode(ext, image)[1].tobytes())
    assert (h.width, h.height) == (47, 33)


def test_png_bound_from_deflate_ratio():
    image = np.zeros((300, 400, 3), np.uint8)  # compresses as well as anything can
    data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    h = read_header(data)
    assert h.min_bytes == 300 * 400 * 3 // 1032 and len(data) >= h.min_bytes


def test_unknown_format_is_refused():
    with pytest.raises(ImageDecodeError, match="expected JPEG or PNG"):
        read_header(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(100))  # JPEG 2000
