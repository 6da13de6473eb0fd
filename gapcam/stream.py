"""Per-camera frame streams: the ROS-free heart of both the ROS node and bag replay.

:class:`StreamProcessor` takes a decoded camera frame with its header (stamp, frame id), runs the
shared :class:`~gapcam.pipeline.Pipeline`, keeps one :class:`~gapcam.decision.DecisionSmoother`
per camera, and returns a :class:`FrameOutput`. :func:`decision_fields` turns that into the
field values of ``gapcam_msgs/LaneChangeDecision``, so the live node (rclpy messages) and replay
(rosbags messages) publish byte-identical decisions from the same code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gapcam.decision import (
    DecisionSmoother,
    SmoothedDecision,
    SmoothingConfig,
    resolve_fallback,
)
from gapcam.node_settings import DEFAULT_OVERLAY
from gapcam.overlay import OverlayBuffers
from gapcam.pipeline import FrameResult, Pipeline
from gapcam.stamps import split_stamp  # noqa: F401 - re-exported: message builders use it


@dataclass
class FrameOutput:
    """What one frame produced, with the input header carried through unchanged."""

    camera: str
    stamp_ns: int
    frame_id: str
    result: FrameResult
    decision: SmoothedDecision
    model_id: str
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class StreamProcessor:
    """Pipeline + one smoother per camera key (topic or namespace).

    ``fallback_class`` overrides the card's low-confidence fallback for this stream: a class
    name, ``""`` for none (publish the top-1), or ``None`` to use the pipeline's (the card's).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        smoothing: SmoothingConfig | None = None,
        fallback_class: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.smoothing = smoothing or SmoothingConfig()
        self.fallback_class = resolve_fallback(
            pipeline.classes, pipeline.fallback_class if fallback_class is None else fallback_class
        )
        self._smoothers: dict[str, DecisionSmoother] = {}
        self._overlay_buffers = OverlayBuffers()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.pipeline.classes

    def set_smoothing(self, smoothing: SmoothingConfig) -> None:
        """Change smoothing at run time; smoothers keep their state but use the new settings."""
        self.smoothing = smoothing
        for s in self._smoothers.values():
            s.config = smoothing

    def smoother(self, camera: str) -> DecisionSmoother:
        if camera not in self._smoothers:
            self._smoothers[camera] = DecisionSmoother(
                self.classes, self.smoothing, self.fallback_class
            )
        return self._smoothers[camera]

    def process(
        self,
        camera: str,
        image: np.ndarray,
        stamp_ns: int,
        frame_id: str,
        received_at: float | None = None,
        order: str = "BGR",
        frame_size: tuple[int, int] | None = None,
    ) -> FrameOutput:
        """Analyse one frame (``image`` in ``order``, BGR or RGB; a read-only view is fine);
        ``received_at`` (``time.perf_counter()``) starts the latency clock; ``frame_size`` is
        the camera frame's (width, height) when ``image`` is a reduced decode of it."""
        start = received_at if received_at is not None else time.perf_counter()
        result = self.pipeline.analyze(image, order, frame_size)
        decision = self.smoother(camera).update(result.probabilities)
        return FrameOutput(
            camera=camera,
            stamp_ns=int(stamp_ns),
            frame_id=frame_id,
            result=result,
            decision=decision,
            model_id=self.pipeline.backend.model_id,
            latency_ms=(time.perf_counter() - start) * 1e3,
        )

    def render(
        self,
        image: np.ndarray,
        out: FrameOutput,
        alpha: float = DEFAULT_OVERLAY.alpha,
        scale: float = 1.0,
        order: str = "BGR",
    ) -> np.ndarray:
        """Overlay of the smoothed decision, drawn at ``scale`` times the frame size (< 1 is
        cheaper: nothing is drawn at full size). ``image`` is in ``order`` (BGR or RGB), the
        frame or a reduced decode of it (:func:`gapcam.preprocess.decode_frame` with
        ``cover=overlay_size(...)``).

        The returned image is reused by the next call (publish, encode or copy it first).
        """
        res = out.result
        size = overlay_size(res.image_size, scale)
        caption = f"{out.model_id}  raw={res.raw_decision}  {out.latency_ms:.1f} ms"
        return self.pipeline.render(
            image,
            res,
            decision=out.decision.label,
            alpha=alpha,
            caption=caption,
            size=size,
            order=order,
            buffers=self._overlay_buffers,
        )


def overlay_size(frame_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) of an overlay drawn at ``scale`` times a frame of ``frame_size``."""
    w, h = frame_size
    return max(1, int(w * scale)), max(1, int(h * scale))


def decision_fields(out: FrameOutput) -> dict[str, Any]:
    """Field values of ``gapcam_msgs/LaneChangeDecision`` except ``header`` and ``cam_box``
    (those are message types; builders fill them from ``stamp_ns``/``frame_id``/:func:`roi_fields`).
    """
    classes = list(out.result.classes)
    return {
        "decision": classes.index(out.decision.label),
        "raw_decision": out.result.class_index,
        "decision_label": out.decision.label,
        "class_names": classes,
        "probabilities": [float(p) for p in out.result.probabilities],
        "smoothed_probabilities": [float(p) for p in out.decision.probabilities],
        "confidence": float(out.decision.confidence),
        "model_id": out.model_id,
        "latency_ms": float(out.latency_ms),
    }


def roi_fields(box: list[int] | None) -> dict[str, Any]:
    """``sensor_msgs/RegionOfInterest`` fields for a CAM box (all zero when there is none)."""
    if box is None:
        return {"x_offset": 0, "y_offset": 0, "width": 0, "height": 0, "do_rectify": False}
    x0, y0, x1, y1 = box
    return {
        "x_offset": x0,
        "y_offset": y0,
        "width": x1 - x0,
        "height": y1 - y0,
        "do_rectify": False,
    }
