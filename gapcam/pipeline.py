"""One frame (or a batch) from pixels to decision, CAM and box: the code path shared by the CLI,
the ROS node, replay and verification.

``analyze`` does the per-frame work a decision needs (preprocess, inference, softmax, CAM box);
``render`` draws the overlay only when someone wants to look at it, because on a small CPU
drawing a full-resolution overlay costs more than the network.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gapcam.backends import Backend, load_backend
from gapcam.cam import DEFAULT_CAM_THRESHOLD, cam_box, eigen_cam, normalize_cam, softmax
from gapcam.decision import resolve_fallback
from gapcam.errors import GapcamError
from gapcam.imageio import as_bgr8
from gapcam.overlay import OverlayBuffers, render_overlay
from gapcam.preprocess import box_to_image, normalize, resize_to_input


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
    needs the model's ``features`` output).

    ``fallback_class`` is the class decisions fall back to at low confidence: the card's
    ``fallback_class`` unless overridden (a class name, or ``""`` for none: publish the top-1).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        cam_threshold: float = DEFAULT_CAM_THRESHOLD,
        cam_class: str = "predicted",
        fallback_class: str | None = None,
    ) -> None:
        self.backend = backend
        self.card = backend.card
        self.classes = tuple(self.card.classes)
        self.fallback_class = resolve_fallback(
            self.classes, self.card.fallback_class if fallback_class is None else fallback_class
        )
        self.cam_threshold = cam_threshold
        if cam_class not in ("predicted", "eigen", *self.classes):
            raise GapcamError(
                f"cam class {cam_class!r} unknown; use 'predicted', 'eigen' or one of {self.classes}"
            )
        self.cam_class = cam_class

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
        batch = normalize(np.stack([resize_to_input(im, spec, order) for im in images]), spec)
        t1 = time.perf_counter()
        out = self.backend.infer(batch)
        t2 = time.perf_counter()
        logits = out.logits.astype(np.float32)
        probs = softmax(logits)
        results = []
        in_size = (spec.width, spec.height)
        for i, im in enumerate(images):
            idx = int(np.argmax(probs[i]))
            if self.cam_class == "eigen":
                if out.features is None:
                    raise GapcamError(
                        "Eigen-CAM needs a model exported with the 'features' output; "
                        "re-export without --no-features or use --cam-class predicted"
                    )
                raw, which = eigen_cam(out.features[i]), "eigen"
            else:
                which = self.classes[idx] if self.cam_class == "predicted" else self.cam_class
                raw = out.cam[i, self.classes.index(which)]
            cam01 = normalize_cam(raw)
            box_in = cam_box(cam01, in_size, self.cam_threshold)
            h, w = im.shape[:2]
            size = (frame_sizes[i] if frame_sizes else None) or (w, h)
            box = box_to_image(box_in, spec, size) if box_in is not None else None
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

    def render(
        self,
        image: np.ndarray,
        result: FrameResult,
        *,
        decision: str | None = None,
        alpha: float = 0.45,
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
