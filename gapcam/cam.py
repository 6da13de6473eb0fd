"""Class Activation Map post-processing (Zhou et al., CVPR 2016).

The exported graph already computes ``M_c(x, y) = sum_k w_k^c f_k(x, y)`` as a 1x1 convolution,
so the per-class maps arrive with the logits from one forward pass. This module turns them into
something a person or a planner can use:

* :func:`class_cam` picks one class's map; :func:`eigen_cam` is the class-agnostic first
  principal component of the feature maps (needs the optional ``features`` output);
  :func:`choose_cam_variant` picks between them once, when a pipeline is made.
* :func:`normalize_cam` rescales a map to ``[0, 1]`` (min-max), the scale the 20% rule uses.
* :func:`cam_box` upsamples to the network input, keeps pixels ``>= threshold * max`` and returns
  the bounding box of the largest connected component.
* :func:`gap_identity_error` is the free self-check ``mean_xy(M_c) + b_c == S_c``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from gapcam.errors import GapcamError

#: Fraction of the CAM maximum kept for localisation (Zhou et al. use 20%).
DEFAULT_CAM_THRESHOLD = 0.2


def class_cam(cam: np.ndarray, class_index: int) -> np.ndarray:
    """The map of one class from one image's ``(C, h, w)`` CAM tensor."""
    return np.asarray(cam[class_index], dtype=np.float32)


def eigen_cam(features: np.ndarray) -> np.ndarray:
    """First principal component of one image's ``(K, h, w)`` features, as an ``(h, w)`` map.

    The sign of a principal component is arbitrary; it is chosen so the map correlates
    positively with the mean activation (where the network "fires").
    """
    k, h, w = features.shape
    mat = features.reshape(k, h * w).T.astype(np.float64)  # (hw, K)
    centred = mat - mat.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[0]
    if np.dot(proj, mat.mean(axis=1) - mat.mean()) < 0:
        proj = -proj
    return proj.reshape(h, w).astype(np.float32)


#: Which map a :class:`CamVariant` draws: the frame's predicted class, class-agnostic Eigen-CAM,
#: or (any other value) one fixed class by name.
PREDICTED, EIGEN = "predicted", "eigen"

#: ``(cam (C, h, w), features (K, h, w) or None, predicted class index) -> (map, what it shows)``
CamVariant = Callable[[np.ndarray, "np.ndarray | None", int], tuple[np.ndarray, str]]


def choose_cam_variant(cam_class: str, classes: Sequence[str], has_features: bool) -> CamVariant:
    """The map selector for ``cam_class``, checked once against the model.

    Raises :class:`GapcamError` (one line: what is wrong, what to do) for an unknown class, or for
    Eigen-CAM on a model exported without its ``features`` output - at start, rather than
    failing on every frame.
    """
    classes = tuple(classes)
    if cam_class == PREDICTED:
        return lambda cam, _features, idx: (class_cam(cam, idx), classes[idx])
    if cam_class == EIGEN:
        if not has_features:
            raise GapcamError(
                "cam class 'eigen' needs a model exported with the 'features' output; "
                "re-export without --no-features or use cam class 'predicted'"
            )

        def _eigen(_cam: np.ndarray, features: np.ndarray | None, _idx: int):
            assert features is not None  # has_features was checked when the variant was chosen
            return eigen_cam(features), EIGEN

        return _eigen
    if cam_class in classes:
        j = classes.index(cam_class)
        return lambda cam, _features, _idx: (class_cam(cam, j), cam_class)
    raise GapcamError(
        f"cam class {cam_class!r} unknown; use {PREDICTED!r}, {EIGEN!r} or one of {classes}"
    )


def normalize_cam(m: np.ndarray) -> np.ndarray:
    """Min-max scale to ``[0, 1]``; a flat map becomes all zeros (nothing to point at)."""
    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo < 1e-12:
        return np.zeros_like(m)
    return (m - lo) / (hi - lo)


def upsample(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of an ``(h, w)`` map to ``size`` = (width, height)."""
    return cv2.resize(np.asarray(m, np.float32), size, interpolation=cv2.INTER_LINEAR)


def _label_type(size: tuple[int, int]) -> int:
    """16-bit component labels where they cannot overflow: an 8-connected mask of W x H has at
    most ceil(W/2) * ceil(H/2) components. Same boxes, and at 224x224 twice as fast on one
    thread (0.11 vs 0.21 ms) as 32-bit labels."""
    w, h = size
    return cv2.CV_16U if ((w + 1) // 2) * ((h + 1) // 2) < 65535 else cv2.CV_32S


def cam_box(
    m: np.ndarray, size: tuple[int, int], threshold: float = DEFAULT_CAM_THRESHOLD
) -> list[int] | None:
    """Bounding box ``[x0, y0, x1, y1]`` (exclusive ends) of the largest component of the map.

    ``m`` is a raw or normalised ``(h, w)`` map; it is normalised, upsampled to ``size``
    (width, height), thresholded at ``threshold`` of its maximum, and the largest 8-connected
    component's box is returned in that pixel grid. ``None`` for a flat map.
    """
    norm = normalize_cam(m)
    if not norm.any():
        return None
    up = upsample(norm, size)
    mask = (up >= threshold * float(up.max())).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(
        mask, connectivity=8, ltype=_label_type(size)
    )
    if count <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[best, :4])
    return [x, y, x + w, y + h]


def cam_peak(m: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """Pixel ``(x, y)`` of the map's maximum after upsampling to ``size`` (pointing game)."""
    up = upsample(m, size)
    y, x = np.unravel_index(int(np.argmax(up)), up.shape)
    return int(x), int(y)


def gap_identity_error(cam: np.ndarray, logits: np.ndarray, bias: np.ndarray) -> float:
    """Max abs error of ``mean_xy(cam_c) + b_c - logits_c`` over a batch ``(N, C, h, w)``."""
    recon = cam.mean(axis=(2, 3)) + np.asarray(bias, np.float32)[None, :]
    return float(np.abs(recon - logits).max())


def box_iou(a: list[int] | None, b: list[int] | None) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes (0 when either is missing)."""
    if a is None or b is None:
        return 0.0
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
