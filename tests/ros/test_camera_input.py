"""cam_node.camera_input over real DDS: the worker's own take of the camera topic.

The subscription lives on the test process's node, which rclpy's ``SingleThreadedExecutor`` spins
all the time (the harness): the executor must leave its messages to the worker. The kept-buffer
take (``rcl_take_serialized_message`` through ctypes) must give the message that was published,
field for field and at its own length (compared through rclpy's deserializer: rclpy leaves the
CDR padding bytes uninitialized), and every frame published is either taken or counted as
skipped.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from cam_node.camera_input import CameraInput, PublisherSequences, Taken
from cam_node.qos import image_input_qos
from rclpy.serialization import deserialize_message, serialize_message
from ros_harness import wait_for
from sensor_msgs.msg import Image

from gapcam.ros_cdr import parse_header
from gapcam.ros_image import encode_bgr

_topics = itertools.count()


def _frame(stamp_s: int, size: tuple[int, int] = (64, 48), frame_id: str = "cam") -> Image:
    w, h = size
    pixels = np.random.default_rng(stamp_s).integers(0, 256, (h, w, 3), dtype=np.uint8)
    msg = Image(**encode_bgr(pixels, "rgb8"))
    msg.header.stamp.sec = stamp_s
    msg.header.frame_id = frame_id
    return msg


class _Setup:
    """A camera input on the harness node, and a reliable publisher on the same topic."""

    def __init__(self, ros, depth: int = 1, reuse_buffer: bool = True) -> None:
        self.ros = ros
        topic = f"/camera_input_test_{next(_topics)}"
        qos = image_input_qos("reliable", depth)
        self.input = CameraInput(ros.node, Image, topic, qos, reuse_buffer=reuse_buffer)
        self.pub = ros.node.create_publisher(Image, topic, image_input_qos("reliable", 10))
        wait_for(lambda: self.pub.get_subscription_count() > 0, 10.0, f"a match on {topic}")

    def take(self) -> Taken:
        taken = self.input.take_newest()
        assert taken is not None
        return taken

    def burst_then_take(self, stamps: range) -> tuple[list[int], int]:
        """Publish ``stamps`` while the worker is "busy", then take until the last one: the
        stamps taken, in order, and the sum of what the takes reported as skipped."""
        for stamp in stamps:
            self.pub.publish(_frame(stamp))
        seen, skipped = [], 0
        while not seen or seen[-1] != stamps[-1]:
            taken = self.take()
            seen.append(_stamp(taken))
            skipped += taken.skipped
        return seen, skipped

    def close(self) -> None:
        self.input.close()
        self.input.release()
        self.ros.node.destroy_publisher(self.pub)
        self.ros.node.destroy_subscription(self.input.subscription)


@pytest.fixture
def setup(ros) -> Iterator[_Setup]:
    s = _Setup(ros)
    yield s
    s.close()


def _stamp(taken: Taken) -> int:
    return parse_header(taken.msg).sec


@pytest.mark.parametrize("reuse_buffer", [True, False])
def test_the_take_gives_rclpys_own_serialization(ros, reuse_buffer: bool) -> None:
    s = _Setup(ros, reuse_buffer=reuse_buffer)
    try:
        assert (s.input.fast_take is not None) == reuse_buffer  # librcl is reachable here
        for stamp, size, frame_id in [(1, (1280, 720), "rear_left_camera"), (2, (7, 5), "c")]:
            msg = _frame(stamp, size, frame_id)  # large, then small: the kept buffer is reused
            s.pub.publish(msg)
            taken = s.take()
            # rclpy leaves CDR padding uninitialized: compare through its deserializer, and the
            # length (a kept buffer that is larger from the frame before must not show)
            assert deserialize_message(bytes(taken.msg), Image) == msg
            assert len(taken.msg) == len(serialize_message(msg))
            assert taken.skipped == 0
            assert taken.received_ns is not None and taken.received_ns > 0
    finally:
        s.close()


def test_the_executor_never_runs_the_camera_subscription(ros, setup: _Setup) -> None:
    """The harness executor spins the node the whole time; it must not even wait on the camera
    subscription (it would race the worker for every frame), and every frame reaches the worker."""
    assert not ros.executor.can_execute(setup.input.subscription)
    ordinary = ros.node.create_subscription(Image, "/camera_input_ordinary", lambda m: None, 1)
    try:
        assert ros.executor.can_execute(ordinary)  # what it says of an ordinary subscription
    finally:
        ros.node.destroy_subscription(ordinary)
    for stamp in range(1, 6):
        setup.pub.publish(_frame(stamp))
        assert _stamp(setup.take()) == stamp


def test_every_frame_is_taken_or_counted_as_skipped(setup: _Setup) -> None:
    setup.pub.publish(_frame(1))
    assert _stamp(setup.take()) == 1
    seen, skipped = setup.burst_then_take(range(2, 9))  # seven frames
    assert seen == sorted(seen), "an older frame was taken after a newer one"
    assert len(seen) + skipped == 7, (seen, skipped)


def test_a_deeper_history_is_drained_to_its_newest_frame(ros) -> None:
    s = _Setup(ros, depth=5)
    try:
        s.pub.publish(_frame(1))
        assert _stamp(s.take()) == 1
        seen, skipped = s.burst_then_take(range(2, 5))
        assert len(seen) + skipped == 3, (seen, skipped)  # no frame counted twice
    finally:
        s.close()


def test_close_wakes_a_waiting_worker(setup: _Setup) -> None:
    got: list[Taken | None] = []
    worker = threading.Thread(target=lambda: got.append(setup.input.take_newest()))
    worker.start()
    setup.input.close()
    worker.join(timeout=10)
    assert not worker.is_alive() and got == [None]
    assert setup.input.closed


def _info(seq: int | None, gid: bytes | None = b"A" * 16) -> dict:
    info: dict = {"publication_sequence_number": seq}
    if gid is not None:
        info["publisher_gid"] = {"data": gid}
    return info


def test_publisher_sequences_count_gaps_per_publisher() -> None:
    seqs = PublisherSequences(remembered=2)
    assert seqs.skipped(_info(5)) == 0  # the first one seen: nothing known before it
    assert seqs.skipped(_info(6)) == 0
    assert seqs.skipped(_info(9)) == 2  # 7 and 8 never taken
    assert seqs.skipped(_info(1, b"B" * 16)) == 0  # another publisher, its own count
    assert seqs.skipped(_info(3, b"B" * 16)) == 1
    assert seqs.skipped(_info(10)) == 0
    assert seqs.skipped(_info(2)) == 0  # a restarted publisher (same GID, lower number)
    assert seqs.skipped(_info(None)) == 0  # an rmw without sequence numbers
    assert seqs.skipped(_info(4, gid=None)) == 0
    seqs.skipped(_info(1, b"C" * 16))  # a third publisher: the oldest one is forgotten
    seqs.skipped(_info(1, b"D" * 16))
    assert seqs.skipped(_info(9)) == 0


def test_a_shut_down_context_ends_a_waiting_worker_quietly() -> None:
    """SIGINT shuts the context down (and destroys the subscription) before the node can call
    close(): the worker's wait must end with None, not an exception in its thread."""
    import rclpy
    from rclpy.node import Node

    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("camera_input_shutdown", context=context)
    camera = CameraInput(node, Image, "/camera_input_shutdown", image_input_qos("best_effort", 1))
    got: list[object] = []

    def work() -> None:
        try:
            got.append(camera.take_newest())
        except Exception as exc:  # what must not happen
            got.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    rclpy.shutdown(context=context)
    worker.join(timeout=10)
    assert not worker.is_alive() and got == [None]
    assert camera.take_newest() is None  # and again, without waiting
