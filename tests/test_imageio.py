"""Reading images: formats, and the errors a user sees for bad input."""

from __future__ import annotations

import cv2
import hostile_images as hostile
import numpy as np
import pytest

from gapcam.errors import ImageDecodeError
from gapcam.imageio import as_bgr8, decode_image_bytes, list_images, read_image, reduced_size


@pytest.mark.parametrize("kind", ["jpg", "png", "gray", "png16"])
def test_reads_colour_gray_and_16_bit(image_files, scene_image, kind):
    img = read_image(image_files[kind])
    assert img.dtype == np.uint8 and img.shape == scene_image.shape


def test_truncated_jpeg_is_refused_not_half_decoded(image_files):
    data = image_files["jpg"].read_bytes()
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        decode_image_bytes(data[: len(data) // 2])


def test_garbage_and_empty_buffers(tmp_path):
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        decode_image_bytes(b"hello, not an image" * 10)
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image_bytes(b"")


def test_missing_file_and_empty_directory(tmp_path):
    with pytest.raises(ImageDecodeError, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageDecodeError, match="holds no images"):
        list_images([tmp_path])


def test_error_messages_are_one_line(tmp_path):
    with pytest.raises(ImageDecodeError) as info:
        read_image(tmp_path / "missing.png")
    assert "\n" not in str(info.value)


def test_as_bgr8_rejects_unsupported_layouts():
    with pytest.raises(ImageDecodeError):
        as_bgr8(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageDecodeError):
        as_bgr8(np.zeros((4, 4), np.int32))
    assert as_bgr8(np.ones((4, 4), np.float32)).max() == 255


# ---- hostile input: bombs and corrupt data (the fuzz cases of issue 12) ---------------------


@pytest.mark.parametrize("name", sorted(hostile.hostile_images()))
def test_every_hostile_image_is_refused_with_one_line(name):
    data = hostile.hostile_images()[name]
    with pytest.raises(ImageDecodeError) as info:
        decode_image_bytes(data, what="frame")
    text = str(info.value)
    assert text.startswith("frame: ") and "\n" not in text


def test_bombs_are_refused_from_the_header_before_decoding():
    """The 20000x20000 JPEG would take seconds and gigabytes; the refusal names the claim."""
    with pytest.raises(ImageDecodeError, match=r"claims 20000x20000 .*max_pixels 33177600"):
        decode_image_bytes(hostile.jpeg_claiming(20000, 20000))
    with pytest.raises(ImageDecodeError, match=r"PNG claims 20000x20000"):
        decode_image_bytes(hostile.png_bomb())
    # Within the pixel limit, but 630 bytes cannot hold 7680x4320 pixels of any real JPEG.
    with pytest.raises(ImageDecodeError, match=r"holds only \d+ bytes"):
        decode_image_bytes(hostile.jpeg_claiming(7680, 4320))


def test_max_pixels_is_the_limit(scene_image):
    ok, buf = cv2.imencode(".png", scene_image)
    h, w = scene_image.shape[:2]
    assert decode_image_bytes(buf, max_pixels=w * h).shape == scene_image.shape
    with pytest.raises(ImageDecodeError, match=f"max_pixels {w * h - 1}"):
        decode_image_bytes(buf, max_pixels=w * h - 1)


def test_opencv_errors_become_one_line_decode_errors():
    """Past our limit, OpenCV's own 2^30-pixel assertion is caught, not raised as cv2.error."""
    with pytest.raises(ImageDecodeError) as info:
        decode_image_bytes(hostile.png_over_opencv_limit(), max_pixels=1 << 40)
    assert "OpenCV cannot decode it" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["bit_flip", "spliced", "truncated_eoi"])
def test_corrupt_jpegs_that_libjpeg_only_warns_about_are_refused(kind, capfd):
    jpeg = hostile.scene_jpeg()
    data = hostile.corrupt_jpegs(jpeg)[kind]
    # What made these dangerous: plain OpenCV returns a full-size image for them.
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    capfd.readouterr()
    with pytest.raises(ImageDecodeError, match="corrupt JPEG data"):
        decode_image_bytes(data)
    # libjpeg's warning became the error message instead of a line on stderr.
    assert "Corrupt JPEG" not in capfd.readouterr().err
    assert decode_image_bytes(jpeg).shape == (240, 320, 3)  # the intact frame still decodes


def test_corrupt_png_is_refused():
    ok, buf = cv2.imencode(".png", np.full((60, 80, 3), 90, np.uint8))
    data = bytearray(buf.tobytes())
    data[data.find(b"IDAT") + 12] ^= 0x04  # one flipped bit: the chunk's CRC no longer matches
    with pytest.raises(ImageDecodeError, match="PNG"):
        decode_image_bytes(bytes(data))


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (1920, 1080)])
def test_reduced_jpeg_decode_matches_a_resized_full_decode(size):
    """``min_size`` lets libjpeg decode at 1/2..1/8 scale: same picture as decode + area resize."""
    data = hostile.scene_jpeg(size=size, quality=90)
    full = decode_image_bytes(data)
    small = decode_image_bytes(data, min_size=(224, 224))
    w, h = size
    factor = max(f for f in (1, 2, 4, 8) if -(-w // f) >= 224 and -(-h // f) >= 224)
    assert factor > 1
    assert small.shape == (-(-h // factor), -(-w // factor), 3)
    assert reduced_size(w, h, (224, 224)) == (small.shape[1], small.shape[0])
    resized = cv2.resize(full, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    diff = np.abs(resized.astype(np.int16) - small.astype(np.int16))
    assert diff.mean() < 2.0 and np.percentile(diff, 99) < 16


def test_reduced_decode_never_goes_below_min_size():
    data = hostile.scene_jpeg(size=(320, 240))
    assert decode_image_bytes(data, min_size=(224, 224)).shape == (240, 320, 3)
    assert decode_image_bytes(data, min_size=(160, 120)).shape == (120, 160, 3)
    ok, png = cv2.imencode(".png", np.zeros((480, 640, 3), np.uint8))
    assert decode_image_bytes(png, min_size=(64, 64)).shape == (480, 640, 3)  # JPEG only


def test_oversized_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3_000_000))
    with pytest.raises(ImageDecodeError, match="max_pixels"):
        read_image(big, max_pixels=100_000)


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".webp", ".ppm"])
def test_other_formats_header_is_read(scene_image, ext):
    from gapcam.image_header import read_header

    ok, buf = cv2.imencode(ext, scene_image)
    header = read_header(buf.tobytes())
    assert (header.width, header.height) == (640, 480)
    assert decode_image_bytes(buf).shape == scene_image.shape
