"""Reading images: formats, and the errors a user sees for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gapcam.errors import ImageDecodeError
from gapcam.imageio import as_bgr8, decode_image_bytes, list_images, read_image


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
