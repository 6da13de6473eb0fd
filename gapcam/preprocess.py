"""The one implementation of preprocessing.

Training, ONNX export checks, INT8 calibration, the ROS node, replay and engine verification all
call these functions, so a model never sees pixels prepared differently from how it was trained.
The parameters come from the model card's :class:`~gapcam.model_card.InputSpec`.

The work is split in two steps so training can cache the (expensive) resize once and normalise
per batch, while still running exactly this code:

1. :func:`resize_to_input` - ``uint8`` image of any size (BGR, or RGB straight from a camera
   message) -> ``uint8`` ``(h, w, 3)`` in the model's colour order and size.
2. :func:`normalize` - a batch of those -> ``float32`` ``(N, 3, h, w)``.

Per frame this is the cheapest path that keeps the model's accuracy (README "Performance"):
the frame is never copied, colour-converted or turned into floats at full resolution. A frame at
least twice the network size in both directions is first read through a strided view (every
``s``-th pixel, ``s`` = the smaller whole ratio of the two sides, so each output pixel still
averages about two samples across and one down), then area-resized; colours are swapped on the
small image; mean/std normalisation runs on the network-size image in one OpenCV call.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from gapcam.image_header import read_header
from gapcam.imageio import DEFAULT_MAX_PIXELS, as_bgr8, decode_image_bytes
from gapcam.model_card import InputSpec

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
}

#: Samples per network pixel and axis averaged by the ``area`` downscale of a large frame.
SAMPLES_PER_PIXEL = 2

#: Pixel orders a caller may hand :func:`resize_to_input` (a camera message is often ``rgb8``).
PIXEL_ORDERS = ("BGR", "RGB")


def set_opencv_threads(threads: int) -> None:
    """Size OpenCV's thread pool for this process (``threads`` > 0; 0 leaves its default).

    Why: with its default pool (all cores) OpenCV splits each resize and colour conversion over
    threads that then spin-wait for the next job; for one camera frame at a time that idle
    spinning cost 0.4 ms of CPU per frame here, more than the split saves. A node that shares a
    small CPU with others runs one thread (``threads: 1``), as it does for ONNX Runtime.
    """
    if threads > 0:
        cv2.setNumThreads(threads)


def decimation_stride(image_size: tuple[int, int], spec: InputSpec) -> int:
    """Stride of the strided view read before a ``linear`` or ``nearest`` resize (1: the whole
    frame is read). An ``area`` card reads frames twice its size through the sample grid of
    :func:`resize_to_input` instead, and smaller ones whole (their stride is 1 here anyway).

    ``image_size`` is (width, height). The stride is the smaller of the whole ratios
    ``W // width`` and ``H // height``, so neither axis drops below the network size.
    """
    w, h = image_size
    return max(1, min(w // spec.width, h // spec.height))


def decimate(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The strided view of :func:`decimation_stride` (no copy), sampling block centres."""
    h, w = image.shape[:2]
    s = decimation_stride((w, h), spec)
    if s == 1:
        return image
    o = s // 2
    return image[o::s, o::s]


def pixels_contiguous(image: np.ndarray) -> np.ndarray:
    """``image`` (``uint8`` ``(H, W, 3)``) as a C-contiguous array: itself if it is one, else a
    copy made whole pixels at a time.

    Why: OpenCV copies any view it cannot describe (a :func:`decimate` view steps over pixels)
    and numpy's own strided copy moves one byte at a time; seen as 3-byte items the same copy
    is 2.3x faster (0.18 vs 0.42 ms for the 427x240 view of a 1280x720 frame), bit-identical.
    """
    if image.flags.c_contiguous:
        return image
    if image.ndim == 3 and image.shape[2] == 3 and image.strides[2] == 1:
        return np.ascontiguousarray(image.view(np.dtype("V3"))).view(np.uint8)
    return np.ascontiguousarray(image)


def resize_to_input(image: np.ndarray, spec: InputSpec, order: str = "BGR") -> np.ndarray:
    """Resize (stretch) an image to the network size and put its colours in the model's order.

    ``image`` is ``uint8`` ``(H, W, 3)`` in ``order`` (``"BGR"`` or ``"RGB"``), and may be a
    read-only or row-padded view of message memory: it is neither copied nor written. With
    ``order="BGR"`` anything :func:`gapcam.imageio.as_bgr8` accepts (grey, BGRA, 16-bit) works
    too. Downscaling is area averaging of the :func:`decimate` view; upscaling is bilinear.
    Returns a new ``uint8`` ``(height, width, 3)`` array.
    """
    if order not in PIXEL_ORDERS:
        raise ValueError(f"pixel order {order!r} unknown; use one of {PIXEL_ORDERS}")
    if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        if order != "BGR":
            raise ValueError(f"an {order} image must be uint8 (H, W, 3), got {image.shape}")
        image = as_bgr8(image)
    h, w = image.shape[:2]
    size = (spec.width, spec.height)
    if (w, h) == size:
        out = image.copy()
    elif w >= spec.width and h >= spec.height:
        out = _downscale(image, spec)
    else:
        out = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if order != spec.color_order:
        cv2.cvtColor(out, cv2.COLOR_BGR2RGB, dst=out)  # the same swap both ways
    return out


def _downscale(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``image`` (at least the network size on both axes) at the network size.

    ``area`` on a frame at least :data:`SAMPLES_PER_PIXEL` times the network size on both axes:
    the centres of a ``k x k`` grid per network pixel are read (``INTER_NEAREST_EXACT``) and
    averaged (``INTER_AREA`` at a whole ratio, OpenCV's fast path). Why: the general
    fractional-ratio area resize of the strided view cost 0.52 ms of the 0.71 ms preprocessing
    of a 1280x720 frame; this costs 0.23 ms in all, reads the frame as it is (a row-padded
    message view too) and averages 2x2 samples on both axes where the strided view averaged
    about 2x1. Other frames and interpolations: the strided view of :func:`decimate`, resized.

    Measured and not kept: a 2x1 grid for frames twice the network size on one axis only (the
    640x360 half-size JPEG decode of a 1280x720 frame for 224 px) cost 0.33 instead of 0.86 ms,
    but nearest rows at a 1.6:1 ratio lost 1.5 points of held-out ``cam_iou50`` on that path.
    """
    size = (spec.width, spec.height)
    h, w = image.shape[:2]
    k = SAMPLES_PER_PIXEL
    if spec.interpolation == "area" and w >= k * spec.width and h >= k * spec.height:
        grid = cv2.resize(
            image, (k * spec.width, k * spec.height), interpolation=cv2.INTER_NEAREST_EXACT
        )
        return cv2.resize(grid, size, interpolation=cv2.INTER_AREA)
    return cv2.resize(
        pixels_contiguous(decimate(image, spec)),
        size,
        interpolation=_INTERPOLATIONS[spec.interpolation],
    )


@lru_cache(maxsize=8)
def _blob_params(spec: InputSpec) -> cv2.dnn.Image2BlobParams:
    """``(v / 255 - mean) / std`` per channel as OpenCV's ``(v - mean') * scale'``."""
    mean = np.asarray(spec.mean, np.float64)
    std = np.asarray(spec.std, np.float64)
    params = cv2.dnn.Image2BlobParams()
    params.scalefactor = (*(1.0 / (255.0 * std)).tolist(), 0.0)
    params.mean = (*(255.0 * mean).tolist(), 0.0)
    params.size = (spec.width, spec.height)
    params.ddepth = cv2.CV_32F
    params.swapRB = False
    return params


def normalize(batch: np.ndarray, spec: InputSpec, out: np.ndarray | None = None) -> np.ndarray:
    """``uint8`` ``(N, h, w, 3)`` (or one ``(h, w, 3)``) -> ``float32`` ``(N, 3, h, w)``
    (``(N, h, w, 3)`` for a model whose card says ``layout: NHWC``).

    ``(v / 255 - mean) / std`` per channel, computed by OpenCV in one pass straight into the
    planar layout (a fifth of the time of the numpy expression, equal to it within 1e-6).
    ``out``, a ``float32`` ``(N, 3, h, w)`` array to write into (NCHW only), saves allocating
    and page-faulting a fresh blob per frame: 0.08 instead of 0.39 ms for one 224x224 image.
    """
    if batch.ndim == 3:
        batch = batch[None]
    if batch.shape[1:3] != (spec.height, spec.width):
        raise ValueError(
            f"normalize expects {spec.width}x{spec.height} images (resize_to_input first), "
            f"got {batch.shape[2]}x{batch.shape[1]}"
        )
    images = [np.ascontiguousarray(im) for im in batch]
    if out is not None and spec.layout != "NHWC":
        want = (len(images), 3, spec.height, spec.width)
        if out.shape != want or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"normalize: out must be a contiguous float32 {want} array")
        return cv2.dnn.blobFromImagesWithParams(images, out, _blob_params(spec))
    blob = cv2.dnn.blobFromImagesWithParams(images, _blob_params(spec))
    if spec.layout == "NHWC":  # TensorFlow/Keras exports take channels last
        return np.ascontiguousarray(blob.transpose(0, 2, 3, 1))
    return blob


def preprocess(
    images: np.ndarray | Sequence[np.ndarray], spec: InputSpec, order: str = "BGR"
) -> np.ndarray:
    """Images (one array or a sequence, any sizes, in ``order``) -> network input batch."""
    if isinstance(images, np.ndarray):
        images = [images]
    resized = np.stack([resize_to_input(im, spec, order) for im in images])
    return normalize(resized, spec)


def decode_frame(
    data: bytes | memoryview | np.ndarray,
    spec: InputSpec,
    what: str = "image",
    *,
    cover: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, tuple[int, int]]:
    """A compressed frame -> (BGR ``uint8`` image, the frame's (width, height)).

    A JPEG is decoded at the smallest libjpeg DCT reduction (1/2, 1/4, 1/8) whose result still
    covers the network input (or ``cover``, e.g. an overlay size): a 1280x720 frame for a
    128x128 network is decoded at 320x180, four times less work, and the reduction is an
    area-like low-pass like the resize that follows. The frame size (from the header) is what
    boxes are reported in. ``max_pixels`` as in :func:`~gapcam.imageio.decode_image_bytes`.
    The node, its tests and benchmarks use this one function.
    """
    image = decode_image_bytes(
        data, what, max_pixels=max_pixels, min_size=cover or (spec.width, spec.height)
    )
    header = read_header(data)
    if header.format == "JPEG":
        return image, (header.width, header.height)
    return image, (image.shape[1], image.shape[0])


def box_to_image(box: Sequence[float], spec: InputSpec, image_size: tuple[int, int]) -> list[int]:
    """Map a box in network-input pixels to the original image (``image_size`` = (w, h)).

    Exact inverse of the "stretch" resize policy: a per-axis scale.
    """
    w, h = image_size
    sx, sy = w / spec.width, h / spec.height
    x0, y0, x1, y1 = box
    return [
        int(round(x0 * sx)),
        int(round(y0 * sy)),
        min(w, int(round(x1 * sx))),
        min(h, int(round(y1 * sy))),
    ]
