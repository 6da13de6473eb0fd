"""One frame (or a batch) from pixels to decision, CAM and box: the code path shared by the CLI,
the ROS node, replay and verification.

``analyze`` does the per-frame work a decision needs (preprocess, inference, softmax, CAM box);
``render`` draws the overlay only when someone wants to look at it, because on a small CPU
drawing a full-resolution overlay costs more than the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gapcam.backends import Backend, load_backend
from gapcam.cam import PREDICTED, cam_box, choose_cam_variant, normalize_cam, softmax
from gapcam.cam_threshold import resolve_cam_threshold
from gapcam.decision import resolve_fallback
from gapcam.imageio import as_bgr8
from gapcam.model_card import InputSpec
from gapcam.node_settings import DEFAULT_OVERLAY
from gapcam.overlay import OverlayBuffers, render_overlay
from gapcam.preprocess import box_to_image, normalize, resize_to_input


def cam_box_in_image(
    cam: np.ndarray, spec: InputSpec, image_size: tuple[int, int], threshold: float
) -> list[int] | None:
    """The CAM box in image pixels: found on the network-input grid, mapped back to the image.

    The box is taken at input resolution (what the network saw) and scaled per axis, the exact
    inverse of the "stretch" resize; threshold selection scores boxes through this same function.
    """
    box_in = cam_box(cam, (spec.width, spec.height), threshold)
    return None if box_in is None else box_to_image(box_in, spec, image_size)


@dataclass
class FrameResult:
    """Everything the core says about one image."""

    classes: tuple[str, ...]
    probabilities: np.ndarray  #: (C,) softmax of the logits
    logits: np.ndarray  #: (C,)
    class_index: int  #: argmax of this frame alone (the raw, unsmoothed decision)
    cam: np.ndarray  #: (h, w) map in [0, 1] of the class used for localisation
    cam_class: str  #: which class (or "eigen") ``cam`` shows
    box: list[int] | None  #: [x0, y0, x1, y1] in input-image pixels (exclusive ends)
    image_size: tuple[int, int]  #: (width, height) of the input image
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def raw_decision(self) -> str:
        return self.classes[self.class_index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.class_index])

    def probability_map(self) -> dict[str, float]:
        return {c: float(p) for c, p in zip(self.classes, self.probabilities, strict=True)}


class Pipeline:
    """Preprocess -> backend -> softmax -> CAM box, with per-stage timings.

    ``cam_class`` selects the map used for the box and overlay: ``"predicted"`` (the frame's
    argmax class), a class name (e.g. always ``"blocked"``), or ``"eigen"`` (class-agnostic,
    needs the model's ``features`` output). It is checked against the model here, once: a
    variant the model cannot give fails to make the pipeline (:class:`GapcamError`), not every
    frame. ``cam_threshold`` ``None`` takes the model card's (0.2 when the card has none).

    ``fallback_class`` is the class decisions fall back to at low confidence: the card's
    ``fallback_class`` unless overridden (a class name, or ``""`` for none: publish the top-1).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        cam_threshold: float | None = None,
        cam_class: str = PREDICTED,
        fallback_class: str | None = None,
    ) -> None:
        self.backend = backend
        self.card = backend.card
        self.classes = tuple(self.card.classes)
        self.fallback_class = resolve_fallback(
            self.classes, self.card.fallback_class if fallback_class is None else fallback_class
        )
        self.cam_threshold = resolve_cam_threshold(self.card, cam_threshold)
        self._cam_variant = choose_cam_variant(cam_class, self.classes, backend.has_features)
        self._cam_class = cam_class
        self._buffers = threading.local()  #: input blobs reused frame after frame, per thread

    def _input_blob(self, n: int) -> np.ndarray | None:
        """This thread's ``float32`` NCHW input blob for ``n`` images (``None`` for NHWC cards:
        :func:`normalize` transposes those into a new array anyway)."""
        spec = self.card.input
        if spec.layout == "NHWC":
            return None
        blobs = self._buffers.__dict__.setdefault("by_n", {})
        if n not in blobs:
            blobs[n] = np.empty((n, 3, spec.height, spec.width), np.float32)
        return blobs[n]

    @property
    def cam_class(self) -> str:
        """The CAM variant, fixed when the pipeline was made (make another to change it)."""
        return self._cam_class

    @classmethod
    def from_model(cls, model: str | Path, backend: str = "auto", **kwargs) -> Pipeline:
        backend_kwargs = kwargs.pop("backend_kwargs", {})
        return cls(load_backend(model, backend, **backend_kwargs), **kwargs)

    def analyze(
        self,
        image: np.ndarray,
        order: str = "BGR",
        frame_size: tuple[int, int] | None = None,
    ) -> FrameResult:
        """One image (any size; BGR, or RGB with ``order="RGB"``) -> :class:`FrameResult`.

        ``image`` may be a read-only view of message memory; it is not copied at full size.
        ``frame_size`` (width, height) is the camera frame's size when ``image`` is a reduced
        decode of it (:func:`gapcam.preprocess.decode_frame`): the box is then given in frame
        pixels.
        """
        return self.analyze_batch([image], order, [frame_size])[0]

    def analyze_batch(
        self,
        images: Sequence[np.ndarray],
        order: str = "BGR",
        frame_sizes: Sequence[tuple[int, int] | None] | None = None,
    ) -> list[FrameResult]:
        """Several images (e.g. both rear cameras) in one inference call."""
        t0 = time.perf_counter()
        spec = self.card.input
        resized = np.stack([resize_to_input(im, spec, order) for im in images])
        batch = normalize(resized, spec, out=self._input_blob(len(images)))
        t1 = time.perf_counter()
        out = self.backend.infer(batch)
        t2 = time.perf_counter()
        logits = out.logits.astype(np.float32)
        probs = softmax(logits)
        results = []
        for i, im in enumerate(images):
            idx = int(np.argmax(probs[i]))
            features = None if out.features is None else out.features[i]
            raw, which = self._cam_variant(out.cam[i], features, idx)
            cam01 = normalize_cam(raw)
            h, w = im.shape[:2]
            size = (frame_sizes[i] if frame_sizes else None) or (w, h)
            box = cam_box_in_image(cam01, spec, size, self.cam_threshold)
            results.append(
                FrameResult(
                    classes=self.classes,
                    probabilities=probs[i],
                    logits=logits[i],
                    class_index=idx,
                    cam=cam01,
                    cam_class=which,
                    box=box,
                    image_size=size,
                )
            )
        t3 = time.perf_counter()
        n = len(images)
        timings = {
            "preprocess": (t1 - t0) * 1e3 / n,
            "inference": (t2 - t1) * 1e3 / n,
            "cam": (t3 - t2) * 1e3 / n,
        }
        for r in results:
            r.timings_ms = dict(timings)
        return results

    def set_cam_threshold(self, threshold: float | None) -> None:
        """Change the box threshold at run time; ``None`` returns to the model card's."""
        self.cam_threshold = resolve_cam_threshold(self.card, threshold)

    def render(
        self,
        image: np.ndarray,
        result: FrameResult,
        *,
        decision: str | None = None,
        alpha: float = DEFAULT_OVERLAY.alpha,
        caption: str | None = None,
        size: tuple[int, int] | None = None,
        order: str = "BGR",
        buffers: OverlayBuffers | None = None,
    ) -> np.ndarray:
        """Overlay for ``image`` (in ``order``), drawn at ``size`` (default: the image's);
        ``decision`` defaults to the frame's raw decision. ``image`` may be a reduced decode of
        the frame ``result`` describes. See :func:`render_overlay`."""
        if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            image = as_bgr8(image)
        return render_overlay(
            image,
            result.cam,
            decision=decision or result.raw_decision,
            probabilities=result.probability_map(),
            box=result.box,
            alpha=alpha,
            caption=caption,
            size=size,
            order=order,
            box_space=result.image_size,
            buffers=buffers,
        )
