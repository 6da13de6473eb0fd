"""The one implementation of preprocessing.

Training, ONNX export checks, INT8 calibration, the ROS node, replay and engine verification all
call these functions, so a model never sees pixels prepared differently from how it was trained.
The parameters come from the model card's :class:`~gapcam.model_card.InputSpec`.

The work is split in two steps so training can cache the (expensive) resize once and normalise
per batch, while still running exactly this code:

1. :func:`resize_to_input` - BGR ``uint8`` image of any size -> ``uint8`` ``(h, w, 3)`` in the
   model's colour order and size.
2. :func:`normalize` - a batch of those -> ``float32`` ``(N, 3, h, w)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gapcam.imageio import as_bgr8
from gapcam.model_card import InputSpec

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
}


def resize_to_input(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize (stretch) a BGR image to the network size and reorder colours; stays ``uint8``.

    Downscaling is area averaging (no aliasing of lane markings). A large frame whose sides are
    whole multiples of the integer factors ``W // width`` and ``H // height`` is first reduced
    by those factors, which OpenCV does with its fast integer-area kernel (1280x720 -> 128x144 in
    a third of the time of one fractional area resize), then area-resized to the final size.
    """
    image = as_bgr8(image)
    h, w = image.shape[:2]
    if (w, h) != (spec.width, spec.height):
        if w >= spec.width and h >= spec.height:
            interp = _INTERPOLATIONS[spec.interpolation]
            kx, ky = w // spec.width, h // spec.height
            if interp == cv2.INTER_AREA and kx * ky > 1 and w % kx == 0 and h % ky == 0:
                image = cv2.resize(image, (w // kx, h // ky), interpolation=cv2.INTER_AREA)
        else:
            interp = cv2.INTER_LINEAR
        image = cv2.resize(image, (spec.width, spec.height), interpolation=interp)
    if spec.color_order == "RGB":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def normalize(batch: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``uint8`` ``(N, h, w, 3)`` (or one ``(h, w, 3)``) -> ``float32`` ``(N, 3, h, w)``."""
    if batch.ndim == 3:
        batch = batch[None]
    scale = np.float32(1.0 / 255.0)
    mean = np.asarray(spec.mean, np.float32).reshape(1, 1, 1, 3)
    inv_std = (1.0 / np.asarray(spec.std, np.float32)).reshape(1, 1, 1, 3)
    out = (batch.astype(np.float32) * scale - mean) * inv_std
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def preprocess(images: np.ndarray | Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Images (one array or a sequence of BGR arrays, any sizes) -> network input batch."""
    if isinstance(images, np.ndarray):
        images = [images]
    resized = np.stack([resize_to_input(im, spec) for im in images])
    return normalize(resized, spec)


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
