"""Counters, rates and latency percentiles for ``/diagnostics`` (ROS-free, thread-safe).

The subscription callback, the worker thread and the diagnostics timer all touch these numbers,
so every update goes through one lock; :meth:`StreamStats.snapshot` returns plain values.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

from gapcam.node_interface import DROP_CAUSES

__all__ = ["DROP_CAUSES", "StreamStats"]


class StreamStats:
    """Event counts, rates over a sliding window and latency percentiles over recent frames."""

    def __init__(self, window_s: float = 2.0, samples: int = 300) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter({c: 0 for c in DROP_CAUSES})
        self._times: dict[str, deque[float]] = {"in": deque(), "out": deque()}
        self._latency_ms: deque[float] = deque(maxlen=samples)
        self._age_ms: deque[float] = deque(maxlen=samples)
        self.last_error = ""
        self._last_error_at: float | None = None
        self.last_decision = ""

    def frame_in(self, now: float | None = None) -> None:
        with self._lock:
            self.counters["frames_in"] += 1
            self._mark("in", now)

    def decision_out(self, latency_ms: float, age_ms: float, label: str) -> None:
        """A decision was published: ``latency_ms`` from receipt, ``age_ms`` from the stamp."""
        with self._lock:
            self.counters["decisions_out"] += 1
            self._mark("out", None)
            self._latency_ms.append(latency_ms)
            self._age_ms.append(age_ms)
            self.last_decision = label

    def drop(self, cause: str, error: str | None = None) -> None:
        with self._lock:
            self.drops[cause] += 1
            if error:
                self.last_error = f"{cause}: {error}"
                self._last_error_at = time.monotonic()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def snapshot(self) -> dict[str, float | int | str]:
        """Everything, as plain numbers and strings (rates in Hz, latencies in ms)."""
        with self._lock:
            now = time.monotonic()
            for name in self._times:
                self._expire(name, now)
            snap: dict[str, float | int | str] = {
                "rate_in_hz": len(self._times["in"]) / self.window_s,
                "rate_out_hz": len(self._times["out"]) / self.window_s,
                "latency_p50_ms": _percentile(self._latency_ms, 50),
                "latency_p99_ms": _percentile(self._latency_ms, 99),
                "age_p50_ms": _percentile(self._age_ms, 50),
                "age_p99_ms": _percentile(self._age_ms, 99),
            }
            for key in ("frames_in", "decisions_out"):
                snap[key] = self.counters[key]
            for key, value in sorted(self.counters.items()):
                snap.setdefault(key, value)
            for cause, value in sorted(self.drops.items()):
                snap[f"drops_{cause}"] = value
            snap["drops_total"] = sum(self.drops.values())
            snap["last_decision"] = self.last_decision
            snap["last_error"] = self.last_error
            snap["last_error_age_s"] = (
                -1.0 if self._last_error_at is None else now - self._last_error_at
            )
            return snap

    def _mark(self, name: str, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        self._times[name].append(now)
        self._expire(name, now)

    def _expire(self, name: str, now: float) -> None:
        times = self._times[name]
        while times and now - times[0] > self.window_s:
            times.popleft()


def _percentile(values: deque[float], q: float) -> float:
    return float(np.percentile(np.fromiter(values, float), q)) if values else 0.0
