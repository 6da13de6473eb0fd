"""The camera subscription, read by the inference worker itself rather than by the executor.

Why: rclpy's Python executor rebuilds a wait set and walks every entity of the node for each
message, then hands the frame to the worker through a lock and a condition, so every camera frame
cost a second thread waking up and the GIL changing hands twice: 2.4 ms of CPU per 1280x720
frame on the executor's thread of the development machine, the largest item of the ROS shell
(README "Performance"). Here the worker waits on a wait set that holds only this subscription
and a wake-up guard, takes the serialized message itself and processes it; the executor keeps the
timers and the parameter services and never sees the camera.

This is what ``rclpy.wait_for_message`` does inside (``_rclpy.WaitSet`` on one subscription plus a
guard condition), kept open instead of rebuilt per message. The subscription sits in a callback
group that never lets an executor run it, so an executor spinning the same node leaves its
messages to the worker. rclpy's Python executors honour callback groups; the C++
``rclpy.experimental.EventsExecutor`` does not (it would run the callback and race the worker),
which is why the node spins a ``SingleThreadedExecutor``.

The newest-frame policy: the subscription's keep-last history (``qos.depth``, 1 by default) holds
the newest frame while the worker is busy, and a waiting frame that a newer one replaces never
reaches the node. Those frames are still counted: the publisher's sequence numbers (rmw message
info, per publisher) say how many were skipped, and :meth:`CameraInput.take_newest` reports them
as ``skipped`` (the node counts them as ``superseded`` drops).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from rclpy.callback_groups import CallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile

from cam_node.serialized_take import SerializedTake, open_serialized_take

#: How long one wait lasts before the worker looks at the closed flag again (a safety net: close()
#: wakes it at once through the guard condition).
WAIT_TIMEOUT_S = 0.5

#: Publishers whose last sequence number is remembered (a camera topic has one; a few spare).
_PUBLISHERS_REMEMBERED = 8


class _WorkerOwned(CallbackGroup):
    """A callback group no executor may run: its entities belong to the worker thread.

    The subscription gets no QoS event handlers either (not even rclpy's default incompatible-QoS
    logger): rmw_fastrtps backs a subscription's events with the same DataReader status
    condition as its data, so an executor waiting on any of them wakes on every frame (measured:
    5.1 ms of executor CPU per 1280x720 frame for the default handlers alone). The node reports
    publishers it cannot match from the ROS graph instead (``cam_node.diagnostics``).
    """

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False

    def ending_execution(self, entity: Any) -> None:
        pass


def _never_called(msg: bytes) -> None:  # pragma: no cover - the executor never runs it
    raise AssertionError("the camera subscription is read by the worker, not the executor")


@dataclass(frozen=True)
class Taken:
    """The newest serialized camera message and what came before it unseen."""

    msg: bytes | memoryview  #: the serialized Image or CompressedImage (valid until the next take)
    received_ns: int | None  #: when DDS received it (system clock, ns), if the rmw says
    skipped: int  #: frames of the same publisher that were replaced before the node took them


class PublisherSequences:
    """Frames a publisher sent that were never taken, from the sequence numbers of those taken.

    rmw message info carries the publisher's GID and its per-publisher sequence number
    (``publication_sequence_number``, counting from 1). A jump of more than one between two
    messages taken from the same publisher means the ones in between were replaced in the
    keep-last history (or lost by a best-effort transport) before the node took them. ROS-free.
    """

    def __init__(self, remembered: int = _PUBLISHERS_REMEMBERED) -> None:
        self._last: OrderedDict[bytes | None, int] = OrderedDict()
        self._remembered = remembered

    def skipped(self, info: dict[str, Any]) -> int:
        """How many of this message's publisher's messages came since the last one taken."""
        seq = info.get("publication_sequence_number")
        if not isinstance(seq, int) or seq <= 0:
            return 0  # this rmw does not number its messages
        gid = info.get("publisher_gid")
        key = bytes(gid["data"]) if isinstance(gid, dict) and "data" in gid else None
        last = self._last.pop(key, None)
        self._last[key] = seq
        while len(self._last) > self._remembered:
            self._last.popitem(last=False)  # the longest silent publisher
        return seq - last - 1 if last is not None and seq > last else 0


class CameraInput:
    """A ``raw=True`` subscription plus the wait set the worker blocks on."""

    def __init__(
        self,
        node: Node,
        msg_type: type,
        topic: str,
        qos: QoSProfile,
        *,
        reuse_buffer: bool = True,
    ) -> None:
        self.subscription = node.create_subscription(
            msg_type,
            topic,
            _never_called,
            qos,
            raw=True,
            callback_group=_WorkerOwned(),
            event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False),
        )
        #: the kept-buffer take (``None``: rclpy's ``take_message``, a new ``bytes`` per frame)
        self.fast_take: SerializedTake | None = (
            open_serialized_take(self.subscription) if reuse_buffer else None
        )
        # Not node.create_guard_condition: the executor must not wait on it either.
        self._wake = GuardCondition(None, None, context=node.context)
        self._wait_set = _rclpy.WaitSet(1, 1, 0, 0, 0, 0, node.context.handle)
        self._closed = threading.Event()
        self._sequences = PublisherSequences()
        self._context = node.context

    def take_newest(self) -> Taken | None:
        """Wait for a frame and take the newest one; ``None`` once :meth:`close` was called or
        the ROS context was shut down (SIGINT/SIGTERM: rclpy destroys the subscription then,
        before the node can call :meth:`close`).

        Only one thread (the worker) may call this.
        """
        try:
            return self._take_newest()
        except Exception:
            if self._closed.is_set() or not self._context.ok():
                return None
            raise

    def _take_newest(self) -> Taken | None:
        sub = self.subscription
        while not self._closed.is_set():
            with sub.handle, self._wake.handle:
                self._wait_set.clear_entities()
                self._wait_set.add_subscription(sub.handle)
                self._wait_set.add_guard_condition(self._wake.handle)
                self._wait_set.wait(int(WAIT_TIMEOUT_S * 1e9))
                newest, skipped = None, 0  # woken by a frame, close() or the timeout: try
                while (taken := self._take()) is not None:
                    if newest is not None:
                        skipped += 1  # an older frame waiting in a deeper history
                    skipped += self._sequences.skipped(taken[1])
                    newest = taken
            if newest is None:
                continue
            msg, info = newest
            return Taken(msg, info.get("received_timestamp") or None, skipped)
        return None

    def _take(self) -> tuple[bytes | memoryview, dict[str, Any]] | None:
        if self.fast_take is not None:
            return self.fast_take.take()
        sub = self.subscription
        return sub.handle.take_message(sub.msg_type, True)

    def close(self) -> None:
        """Make :meth:`take_newest` return ``None`` (from any thread)."""
        self._closed.set()
        self._wake.trigger()

    def release(self) -> None:
        """Free the kept buffer, once the worker has stopped using what it took."""
        if self.fast_take is not None:
            self.fast_take.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()
