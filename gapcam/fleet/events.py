"""What runners tell the fleet driver while bags are replayed (progress and results)."""

from __future__ import annotations

from typing import Any, Protocol

from gapcam.fleet.task import BagTask


class Events(Protocol):
    """Called by a runner on the driver's thread, in the order things happen."""

    def total(self, frames: int) -> None:
        """Some started task expects ``frames`` more frames (grows the frames bar)."""

    def frames(self, n: int) -> None:
        """``n`` more frames were replayed somewhere."""

    def finished(self, task: BagTask, result: dict[str, Any]) -> None:
        """``task`` ended (any status); called exactly once per started task."""
