"""The newest-frame slot between the subscription callback and the inference worker.

A camera at 30 Hz outruns a small CPU: queuing frames would make every decision later than the
one before (and a lane-change decision about the past is worse than none). The slot holds one
frame; a new frame replaces the waiting one, which is counted as dropped ("superseded"). ROS-free.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestFrameSlot(Generic[T]):
    """A one-element mailbox: :meth:`put` never blocks, :meth:`take` waits for the newest item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> T | None:
        """Store ``item``; returns the unprocessed item it replaced (dropped), if any."""
        with self._cond:
            replaced, self._item = self._item, item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` s; ``None`` on timeout or once closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._item is not None or self._closed, timeout):
                return None
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the worker so it can exit (at shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
