"""What replay keeps while streaming, in bounded memory: per-frame records for the report, the
frames around every decision change (for the contact sheet), header-stamp reordering and the
per-camera statistics published on ``/diagnostics``.

Everything here is O(1) per frame in memory except :class:`FrameRecord` lists (a few dozen bytes
per frame), which is what keeps a 10,000-frame replay flat.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from gapcam.stream import FrameOutput, StreamProcessor


@dataclass
class FrameRecord:
    """One replayed frame, reduced to what the report and the summary need."""

    camera: str
    frame_id: str
    stamp_ns: int
    decision: int
    raw_decision: int
    probabilities: tuple[float, ...]
    smoothed: tuple[float, ...]
    latency_ms: float
    truth: str | None = None


class Reorder:
    """A per-camera heap that releases messages in header-stamp order.

    Bags store messages in *receive* order; a camera's header stamps can be a little out of order
    (driver jitter, several publishers). Holding ``window`` messages back and always releasing the
    oldest stamp makes replay process each camera in stamp order as long as no message is more
    than ``window`` places late; later ones are processed at once and counted in ``late``.
    """

    def __init__(self, window: int) -> None:
        self.window = max(0, int(window))
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = 0
        self.last_released: int | None = None
        self.late = 0

    def push(self, stamp: int, item: Any) -> list[tuple[int, Any]]:
        """Add one message; returns the messages now due (oldest stamp first)."""
        heapq.heappush(self._heap, (stamp, self._seq, item))
        self._seq += 1
        due = []
        while len(self._heap) > self.window:
            due.append(self._pop())
        return due

    def drain(self) -> list[tuple[int, Any]]:
        return [self._pop() for _ in range(len(self._heap))]

    def _pop(self) -> tuple[int, Any]:
        stamp, _, item = heapq.heappop(self._heap)
        if self.last_released is not None and stamp < self.last_released:
            self.late += 1
        else:
            self.last_released = stamp
        return stamp, item


@dataclass
class ChangeGroup:
    """Overlay tiles before, at and after one decision change of one camera."""

    camera: str
    stamp_ns: int
    before: str
    after: str
    tiles: list[np.ndarray] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


class ChangeCollector:
    """Keeps the last ``context`` frames of each camera and renders small overlays around changes.

    Only references to already decoded frames are held (no copies, no rendering) until a change
    happens, so the cost on frames without a change is a deque append.
    """

    def __init__(
        self,
        processor: StreamProcessor,
        context: int = 2,
        max_changes: int = 12,
        tile_width: int = 320,
    ) -> None:
        self.processor = processor
        self.context = context
        self.max_changes = max_changes
        self.tile_width = tile_width
        self._recent: dict[str, deque[tuple[np.ndarray, FrameOutput]]] = {}
        self._pending: dict[str, tuple[ChangeGroup, int]] = {}
        self.groups: list[ChangeGroup] = []
        self.changes: dict[str, int] = {}
        self._previous: dict[str, str] = {}

    def add(self, camera: str, image: np.ndarray, out: FrameOutput, t0_ns: int) -> None:
        recent = self._recent.setdefault(camera, deque(maxlen=self.context))
        label = out.decision.label
        previous = self._previous.get(camera)
        self._previous[camera] = label
        if camera in self._pending:
            group, left = self._pending[camera]
            self._tile(group, image, out, t0_ns)
            if left <= 1:
                del self._pending[camera]
            else:
                self._pending[camera] = (group, left - 1)
        if previous is not None and label != previous:
            n = self.changes.get(camera, 0) + 1
            self.changes[camera] = n
            if n <= self.max_changes and camera not in self._pending:
                group = ChangeGroup(camera, out.stamp_ns, previous, label)
                for im, o in recent:
                    self._tile(group, im, o, t0_ns)
                self._tile(group, image, out, t0_ns, mark=True)
                self.groups.append(group)
                if self.context:
                    self._pending[camera] = (group, self.context)
        recent.append((image, out))

    def _tile(
        self,
        group: ChangeGroup,
        image: np.ndarray,
        out: FrameOutput,
        t0_ns: int,
        mark: bool = False,
    ) -> None:
        # drawn at full size, then shrunk: the overlay's text is sized for the camera image
        full = self.processor.render(image, out)
        h, w = full.shape[:2]
        size = (self.tile_width, max(1, round(h * self.tile_width / w)))
        tile = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
        if mark:  # the first frame with the new decision gets a white frame
            tile[:3], tile[-3:], tile[:, :3], tile[:, -3:] = 255, 255, 255, 255
        group.tiles.append(tile)
        t = (out.stamp_ns - t0_ns) / 1e9
        group.captions.append(f"t={t:.2f}s {out.decision.label} (raw {out.result.raw_decision})")


class CameraStats:
    """Running counters of one camera for ``/diagnostics`` and the summary."""

    def __init__(self) -> None:
        self.frames = 0
        self.skipped = 0
        self.last_error = ""
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.window_latencies: list[float] = []
        self.first_stamp: int | None = None
        self.last_stamp: int | None = None
        self.next_report_ns: int | None = None
        self.decision = ""
        self.frame_id = ""

    def add(self, stamp: int, latency_ms: float, decision: str) -> None:
        self.frames += 1
        self.latency_sum += latency_ms
        self.latency_max = max(self.latency_max, latency_ms)
        self.window_latencies.append(latency_ms)
        self.first_stamp = stamp if self.first_stamp is None else min(self.first_stamp, stamp)
        self.last_stamp = stamp if self.last_stamp is None else max(self.last_stamp, stamp)
        self.decision = decision

    def rate_hz(self) -> float:
        if self.frames < 2 or self.first_stamp is None or self.last_stamp is None:
            return 0.0
        span = (self.last_stamp - self.first_stamp) / 1e9
        return (self.frames - 1) / span if span > 0 else 0.0

    def take_window(self) -> list[float]:
        w, self.window_latencies = self.window_latencies, []
        return w
