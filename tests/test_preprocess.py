"""Preprocessing: one implementation, identical for training and runtime."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from gapcam.dataset import load_resized, scan_folder
from gapcam.imageio import read_image
from gapcam.model_card import InputSpec
from gapcam.preprocess import (
    box_to_image,
    decimate,
    decimation_stride,
    decode_frame,
    normalize,
    preprocess,
    resize_to_input,
)

SPEC = InputSpec()


def test_training_and_runtime_see_identical_tensors(tmp_path, scene_image):
    """Training caches `load_resized` and normalises per batch; the node calls `preprocess`.
    Both must give the same floats for the same file."""
    for label, im in (("blocked", scene_image), ("free", cv2.flip(scene_image, 1))):
        (tmp_path / label).mkdir()
        cv2.imwrite(str(tmp_path / label / "a.png"), im)
    folder = scan_folder(tmp_path)
    train_batch = normalize(load_resized(folder, SPEC, progress=False), SPEC)
    runtime_batch = np.concatenate([preprocess(read_image(s.path), SPEC) for s in folder.samples])
    assert train_batch.dtype == np.float32 and train_batch.shape == (2, 3, SPEC.height, SPEC.width)
    np.testing.assert_array_equal(train_batch, runtime_batch)


def test_normalisation_and_channel_order():
    img = np.zeros((SPEC.height, SPEC.width, 3), np.uint8)
    img[..., 2] = 255  # pure red in BGR
    x = preprocess(img, SPEC)[0]
    red = (1.0 - SPEC.mean[0]) / SPEC.std[0]
    blue = (0.0 - SPEC.mean[2]) / SPEC.std[2]
    assert x[0].mean() == pytest.approx(red, rel=1e-5)  # RGB order: channel 0 is red
    assert x[2].mean() == pytest.approx(blue, rel=1e-5)


@pytest.mark.parametrize("size", [(1280, 720), (1242, 375), (810, 1080), (64, 48), (1920, 1080)])
def test_any_size_becomes_the_network_size(size):
    w, h = size
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    out = resize_to_input(img, SPEC)
    assert out.shape == (SPEC.height, SPEC.width, 3) and out.dtype == np.uint8


def test_area_downscale_keeps_fine_stripes_grey_instead_of_aliasing():
    """Lane markings are thin: area averaging keeps their mean instead of sampling them away."""
    img = np.zeros((720, 1280, 3), np.uint8)
    img[:, ::2] = 255  # 1-px stripes
    out = resize_to_input(img, SPEC).astype(np.float32)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 3


def test_grayscale_and_alpha_inputs_are_accepted():
    gray = np.full((100, 200), 80, np.uint8)
    bgra = np.zeros((100, 200, 4), np.uint8)
    assert preprocess(gray, SPEC).shape == (1, 3, SPEC.height, SPEC.width)
    assert preprocess(bgra, SPEC).shape == (1, 3, SPEC.height, SPEC.width)


def test_box_maps_back_to_image_pixels():
    assert box_to_image([0, 0, SPEC.width, SPEC.height], SPEC, (1280, 720)) == [0, 0, 1280, 720]
    assert box_to_image([32, 64, 96, 128], SPEC, (1280, 720)) == [320, 360, 960, 720]


def test_an_rgb_view_of_message_memory_gives_the_same_input_as_a_bgr_copy():
    """The node hands a read-only, row-padded RGB view of the message: no copy, same tensor."""
    rng = np.random.default_rng(3)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (5, 5), 2)
    padded = np.zeros((720, 1280 * 3 + 16), np.uint8)  # 16 padding bytes per row
    padded[:, : 1280 * 3] = bgr[..., ::-1].reshape(720, -1)
    buf = padded.tobytes()  # immutable, like the serialized message
    view = np.frombuffer(buf, np.uint8).reshape(720, -1)[:, : 1280 * 3].reshape(720, 1280, 3)
    assert not view.flags.writeable and not view.flags.c_contiguous
    np.testing.assert_array_equal(
        resize_to_input(view, SPEC, "RGB"), resize_to_input(bgr, SPEC, "BGR")
    )
    np.testing.assert_array_equal(preprocess(view, SPEC, "RGB"), preprocess(bgr, SPEC))
    with pytest.raises(ValueError, match="pixel order"):
        resize_to_input(bgr, SPEC, "YUV")


def test_linear_cards_read_large_frames_through_a_strided_view_small_ones_whole():
    assert decimation_stride((1280, 720), SPEC) == 5  # 256x144 read for 128x128
    assert decimation_stride((1920, 1080), SPEC) == 8
    assert decimation_stride((224, 224), SPEC) == 1  # the training images: read whole
    img = np.arange(720 * 1280 * 3, dtype=np.uint32).astype(np.uint8).reshape(720, 1280, 3)
    view = decimate(img, SPEC)
    assert view.shape == (144, 256, 3) and np.shares_memory(view, img)
    assert view[0, 0].tolist() == img[2, 2].tolist()  # block centres
    linear = dataclasses.replace(SPEC, interpolation="linear")
    want = cv2.resize(np.ascontiguousarray(view), (128, 128), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(resize_to_input(img, linear, linear.color_order), want)


def _grid_average(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """The documented area downscale of a large frame: the centres of a 2x2 grid of samples
    per network pixel, averaged (rounded half up)."""
    src_h, src_w = img.shape[:2]
    xs = np.floor((np.arange(2 * w) + 0.5) * src_w / (2 * w)).astype(int)
    ys = np.floor((np.arange(2 * h) + 0.5) * src_h / (2 * h)).astype(int)
    grid = img[ys][:, xs].astype(np.int32)
    return ((grid.reshape(h, 2, w, 2, 3).sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (640, 480), (256, 256), (300, 257)])
def test_frames_twice_the_network_size_average_a_2x2_grid_of_samples(size):
    w, h = size
    img = np.random.default_rng(w * h).integers(0, 256, (h, w, 3), np.uint8)
    want = _grid_average(img, SPEC.width, SPEC.height)
    np.testing.assert_array_equal(resize_to_input(img, SPEC, SPEC.color_order), want)
    # read as it is from a row-padded, read-only message buffer: the same pixels
    padded = np.zeros((h, w * 3 + 8), np.uint8)
    padded[:, : w * 3] = img.reshape(h, -1)
    view = np.frombuffer(padded.tobytes(), np.uint8).reshape(h, -1)[:, : w * 3].reshape(h, w, 3)
    np.testing.assert_array_equal(resize_to_input(view, SPEC, SPEC.color_order), want)


@pytest.mark.parametrize("size", [(250, 200), (320, 180)])  # 128x128 network
def test_frames_under_twice_the_network_size_on_an_axis_are_area_resized_whole(size):
    w, h = size
    img = np.random.default_rng(1).integers(0, 256, (h, w, 3), np.uint8)
    assert decimation_stride((w, h), SPEC) == 1
    want = cv2.resize(img, (SPEC.width, SPEC.height), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resize_to_input(img, SPEC, SPEC.color_order), want)


def test_normalize_is_the_documented_formula():
    batch = np.random.default_rng(0).integers(0, 256, (3, SPEC.height, SPEC.width, 3), np.uint8)
    mean = np.asarray(SPEC.mean, np.float32)
    std = np.asarray(SPEC.std, np.float32)
    want = ((batch.astype(np.float32) / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    got = normalize(batch, SPEC)
    assert got.dtype == np.float32 and got.shape == (3, 3, SPEC.height, SPEC.width)
    np.testing.assert_allclose(got, want, atol=2e-6)
    with pytest.raises(ValueError, match="resize_to_input first"):
        normalize(np.zeros((1, 10, 10, 3), np.uint8), SPEC)


def test_decode_frame_reduces_a_large_jpeg_and_reports_the_frame_size(scene_image):
    big = cv2.resize(scene_image, (1280, 720))
    ok, jpg = cv2.imencode(".jpg", big)
    image, size = decode_frame(jpg.tobytes(), SPEC)
    assert size == (1280, 720) and image.shape == (180, 320, 3)  # 1/4: still >= 128x128
    image, size = decode_frame(jpg.tobytes(), SPEC, cover=(640, 360))
    assert size == (1280, 720) and image.shape == (360, 640, 3)
    ok, png = cv2.imencode(".png", big)
    image, size = decode_frame(png.tobytes(), SPEC)  # other formats: full size
    assert size == (1280, 720) and image.shape == (720, 1280, 3)


def test_opencv_threads_follow_the_setting_and_zero_leaves_the_default() -> None:
    from gapcam.preprocess import set_opencv_threads

    before = cv2.getNumThreads()
    try:
        set_opencv_threads(1)
        assert cv2.getNumThreads() == 1
        set_opencv_threads(0)  # 0: leave OpenCV as it is
        assert cv2.getNumThreads() == 1
        set_opencv_threads(2)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_pixels_contiguous_copies_views_exactly() -> None:
    from gapcam.preprocess import pixels_contiguous

    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    read_only = np.frombuffer(frame.tobytes(), np.uint8).reshape(frame.shape)
    padded = np.zeros((72, 130, 3), np.uint8)
    padded[:, :128] = frame
    for view in [
        frame[1::3, 1::3],  # the decimate view
        read_only[2::5, 2::5],  # message memory
        padded[:, :128],  # row padding
        frame[:, ::-1],  # a negative stride
        frame[..., ::-1],  # channels reversed: not whole pixels
    ]:
        out = pixels_contiguous(view)
        assert out.flags.c_contiguous and out.dtype == np.uint8
        np.testing.assert_array_equal(out, view)
    assert pixels_contiguous(frame) is frame  # nothing to do, nothing copied


def test_normalize_into_a_given_blob_equals_a_fresh_one() -> None:
    spec = InputSpec(width=32, height=24, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    images = np.random.default_rng(9).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    out = np.full((2, 3, 24, 32), np.nan, np.float32)
    got = normalize(images, spec, out=out)
    assert got is out or np.shares_memory(got, out)
    np.testing.assert_array_equal(out, normalize(images, spec))
    with pytest.raises(ValueError, match="contiguous float32"):
        normalize(images, spec, out=np.empty((1, 3, 24, 32), np.float32))
