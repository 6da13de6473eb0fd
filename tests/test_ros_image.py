"""sensor_msgs/Image encodings <-> BGR (gapcam.ros_image), checked against hand-built buffers.

The expected pixels are written out here byte by byte (not produced by the encoder under test),
so a swapped Bayer pattern, a UYVY/YUY2 mix-up, ignored row padding or a wrong byte order fails.
"""

from __future__ import annotations

import array
import subprocess
import sys

import numpy as np
import pytest

from gapcam.errors import ImageDecodeError
from gapcam.ros_image import (
    BYTES_PER_PIXEL,
    SUPPORTED_ENCODINGS,
    encode_bgr,
    image_to_bgr,
)

ISSUE_ENCODINGS = {
    "rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "yuv422_yuy2",
    "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
}  # fmt: skip


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    """A smooth colour image (chroma subsampling and demosaicing stay close on it)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), 255 - x * 255 // (w - 1)], -1).astype(
        np.uint8
    )


def _padded(rows: np.ndarray, pad: int, fill: int = 0xAB) -> tuple[bytes, int]:
    """Rows of bytes with ``pad`` junk bytes appended to each (a driver's alignment padding)."""
    h, n = rows.shape
    out = np.full((h, n + pad), fill, np.uint8)
    out[:, :n] = rows
    return out.tobytes(), n + pad


def test_every_encoding_of_the_issue_is_supported() -> None:
    assert set(SUPPORTED_ENCODINGS) == ISSUE_ENCODINGS


@pytest.mark.parametrize("pad", [0, 5])
def test_rgb_bgr_alpha_exact_with_padding(pad: int) -> None:
    img = _gradient()
    h, w = img.shape[:2]
    rgb = img[..., ::-1]
    alpha = np.full((h, w, 1), 7, np.uint8)
    cases = {
        "bgr8": img,
        "rgb8": rgb,
        "bgra8": np.concatenate([img, alpha], -1),
        "rgba8": np.concatenate([rgb, alpha], -1),
    }
    for enc, px in cases.items():
        data, step = _padded(px.reshape(h, -1), pad)
        out = image_to_bgr(enc, w, h, step, data)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8, enc
        np.testing.assert_array_equal(out, img, err_msg=enc)


def test_mono8_and_mono16_both_byte_orders() -> None:
    h, w = 3, 4
    grey = np.arange(h * w, dtype=np.uint8).reshape(h, w) * 20
    data, step = _padded(grey, 3)
    np.testing.assert_array_equal(image_to_bgr("mono8", w, h, step, data)[..., 1], grey)
    # 16-bit value v*256 + 0x7F: the high byte is v whichever the byte order.
    v16 = grey.astype(np.uint16) * 256 + 0x7F
    little = v16.astype("<u2").view(np.uint8).reshape(h, 2 * w)
    big = v16.astype(">u2").view(np.uint8).reshape(h, 2 * w)
    for raw, be in ((little, 0), (big, 1)):
        data, step = _padded(raw, 2)
        out = image_to_bgr("mono16", w, h, step, data, is_bigendian=be)
        np.testing.assert_array_equal(out[..., 0], grey)
        np.testing.assert_array_equal(out[..., 2], grey)
    # Reading big-endian data as little-endian gives the low byte (0x7F): byte order matters.
    data, step = _padded(big, 0)
    assert (image_to_bgr("mono16", w, h, step, data, is_bigendian=0) == 0x7F).all()


def test_yuv422_uyvy_and_yuy2_byte_order() -> None:
    # BT.601 limited range: pure red is Y=81 U=90 V=240, grey 128 is Y=U=V=128 (approximately).
    h, w = 2, 4
    uyvy = np.tile(np.array([90, 81, 240, 81], np.uint8), (h, w // 2))
    yuy2 = np.tile(np.array([81, 90, 81, 240], np.uint8), (h, w // 2))
    for enc, raw in (("yuv422", uyvy), ("yuv422_yuy2", yuy2)):
        data, step = _padded(raw, 4)
        out = image_to_bgr(enc, w, h, step, data).astype(int)
        b, g, r = out[..., 0], out[..., 1], out[..., 2]
        assert (r > 220).all() and (g < 40).all() and (b < 40).all(), (enc, out[0, 0])
    # The same UYVY bytes read as YUY2 are not red: the two layouts are told apart.
    wrong = image_to_bgr("yuv422_yuy2", w, h, w * 2, uyvy.tobytes())
    assert not (wrong[..., 2] > 220).all()


@pytest.mark.parametrize(
    "enc,cell",
    [
        ("bayer_rggb8", ("R", "G", "G", "B")),
        ("bayer_bggr8", ("B", "G", "G", "R")),
        ("bayer_gbrg8", ("G", "B", "R", "G")),
        ("bayer_grbg8", ("G", "R", "B", "G")),
    ],
)
def test_bayer_patterns_follow_ros_naming(enc: str, cell: tuple[str, ...]) -> None:
    # A flat scene B=30 G=120 R=220 mosaicked by hand: the 2x2 cell read from the top-left pixel.
    value = {"B": 30, "G": 120, "R": 220}
    h, w = 8, 8
    raw = np.empty((h, w), np.uint8)
    for (dy, dx), c in zip(((0, 0), (0, 1), (1, 0), (1, 1)), cell, strict=True):
        raw[dy::2, dx::2] = value[c]
    data, step = _padded(raw, 3)
    out = image_to_bgr(enc, w, h, step, data).astype(int)
    inner = out[2:-2, 2:-2].reshape(-1, 3)
    np.testing.assert_allclose(inner.mean(0), [30, 120, 220], atol=2)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize("pad", [0, 6])
def test_encode_then_decode_round_trip(encoding: str, pad: int) -> None:
    img = _gradient()
    h, w = img.shape[:2]
    bpp = BYTES_PER_PIXEL[encoding]
    f = encode_bgr(img, encoding, step=w * bpp + pad)
    assert f["step"] == w * bpp + pad and len(f["data"]) == f["step"] * h
    assert (f["height"], f["width"], f["encoding"]) == (h, w, encoding)
    out = image_to_bgr(
        f["encoding"], f["width"], f["height"], f["step"], f["data"], f["is_bigendian"]
    )
    assert out.shape == img.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - img.astype(int))
    if encoding in ("bgr8", "rgb8", "bgra8", "rgba8"):
        assert err.max() == 0
    elif encoding.startswith("mono"):
        grey = (img @ np.array([0.114, 0.587, 0.299])).round()
        assert np.abs(out[..., 0] - grey).max() <= 1
    else:  # chroma subsampling / demosaicing: close on a smooth image, away from the border
        assert err[2:-2, 2:-2].mean() < 6, err.mean()


def test_mono16_big_endian_round_trip() -> None:
    img = _gradient()
    f = encode_bgr(img, "mono16", is_bigendian=1)
    assert f["is_bigendian"] == 1
    out = image_to_bgr("mono16", f["width"], f["height"], f["step"], f["data"], 1)
    grey = encode_bgr(img, "mono8")["data"]
    np.testing.assert_array_equal(out[..., 0].ravel(), np.frombuffer(grey, np.uint8))


def test_accepts_every_buffer_type_ros_and_rosbags_give() -> None:
    img = _gradient()
    f = encode_bgr(img, "bgr8")
    for data in (
        f["data"],
        bytearray(f["data"]),
        memoryview(f["data"]),
        array.array("B", f["data"]),
        np.frombuffer(f["data"], np.uint8),
    ):
        out = image_to_bgr("bgr8", f["width"], f["height"], f["step"], data)
        np.testing.assert_array_equal(out, img)
        out[0, 0] = 0  # writable, and a copy: the caller's buffer is not touched
    assert f["data"][:3] == img[0, 0].tobytes()


@pytest.mark.parametrize(
    "args,needle",
    [
        (("32FC1", 4, 2, 16, bytes(32)), "unsupported image encoding '32FC1'"),
        (("bgr8", 4, 2, 12, bytes(23)), "truncated buffer, 23 of 24 bytes"),
        (("rgb8", 4, 2, 10, bytes(24)), "step 10 < width"),
        (("yuv422", 3, 2, 6, bytes(12)), "odd width"),
        (("mono8", 0, 2, 0, b""), "empty size"),
        (("bayer_rggb8", 4, 4, 4, bytes(15)), "truncated"),
    ],
)
def test_bad_input_is_one_clear_error(args: tuple, needle: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        image_to_bgr(*args)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_module_is_ros_free() -> None:
    code = "import sys, gapcam.ros_image; assert 'rclpy' not in sys.modules, 'rclpy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_raw_frame_over_max_pixels_is_refused_before_conversion():
    """The header (width x height) is checked first: a 20000x20000 claim costs nothing."""
    with pytest.raises(ImageDecodeError, match=r"20000x20000: .*max_pixels 33177600"):
        image_to_bgr("bgr8", 20000, 20000, 60000, b"\x00" * 100)
    img = np.zeros((4, 6, 3), np.uint8)
    f = encode_bgr(img, "bgr8")
    args = (f["encoding"], f["width"], f["height"], f["step"], f["data"])
    assert image_to_bgr(*args, max_pixels=24).shape == (4, 6, 3)
    with pytest.raises(ImageDecodeError, match="max_pixels 23"):
        image_to_bgr(*args, max_pixels=23)
