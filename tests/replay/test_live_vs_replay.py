"""The live node fed from a bag equals offline replay of the same bag, over real DDS.

A small player publishes the bag's camera messages (deserialised by rclpy from the bag's CDR
bytes) at the recorded rate to ``python -m cam_node`` in a subprocess; the node's decisions must
equal, field by field, the decisions ``gapcam replay`` writes for the same bag. Uses the ROS
engineer's harness (tests/ros/ros_harness.py) and DDS environment (cam_node.ros_env).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cam_node.ros_env import apply_localhost_env
from replay_helpers import read_bag

# Before this process creates any rclpy context (same settings as tests/ros/conftest.py).
apply_localhost_env(
    log_dir=Path(os.environ.get("TMPDIR", "/tmp")) / f"gapcam-test-ros-{os.getpid()}"
)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros"))
from ros_harness import (  # noqa: E402
    DEFAULT_YAML,
    NodeProcess,
    RosHarness,
    node_args,
    wait_for,
    wait_node_side,
)

from gapcam.replay import bag_io  # noqa: E402
from gapcam.replay.replay import ReplayOptions, replay_bag  # noqa: E402

TOPIC = "/rear_left/image_raw"  #: the camera in the bag
NS = "/rear_left"  #: where replay writes its decisions
#: The live node and its player use names of their own, so that endpoints other tests of this
#: process left on the bag's names cannot answer for them.
LIVE_NS = "/live_vs_replay"
LIVE_TOPIC = f"{LIVE_NS}/image_raw"


@pytest.fixture(scope="module")
def harness():
    h = RosHarness()
    yield h
    h.close()


def _wait_decisions(decisions, n: int, what: str) -> None:
    wait_for(lambda: len(decisions) >= n, 20.0, what)


def _play(harness, bag: Path, decisions, node: NodeProcess) -> list[int]:
    """Publish the camera topic of ``bag`` at its recorded rate; returns the stamps sent.

    Before each frame the player makes sure the node has answered the previous one (waiting only
    if the machine is slower than the camera), so no frame is superseded in the node's
    newest-frame slot: the two runs must see exactly the same frames.
    """
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    created = time.time()
    pub = harness.node.create_publisher(
        Image, LIVE_TOPIC, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    )

    def ready() -> bool:
        node.check_alive()
        return pub.get_subscription_count() > 0 and decisions.sub.get_publisher_count() > 0

    wait_for(ready, 60.0, "cam_node to match the player")
    wait_node_side(harness, node, LIVE_TOPIC, decisions.topic, created)
    reader = bag_io.open_reader(bag)
    try:
        conns = [c for c in reader.connections if c.topic == TOPIC]
        items = [(ts, bytes(raw)) for _, ts, raw in reader.messages(connections=conns)]
    finally:
        reader.close()
    start_wall, start_bag = time.monotonic(), items[0][0]
    sent: list[int] = []
    for ts, raw in items:
        if sent:
            _wait_decisions(decisions, len(sent), "the node's previous decision")
        delay = (ts - start_bag) / 1e9 - (time.monotonic() - start_wall)
        if delay > 0:
            time.sleep(delay)
        msg = deserialize_message(raw, Image)  # the bag's bytes, as rclpy reads them
        pub.publish(msg)
        sent.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
    _wait_decisions(decisions, len(sent), "the last decision")
    harness.node.destroy_publisher(pub)
    return sent


def test_node_fed_from_bag_decides_like_offline_replay(
    harness, sample_bag, pipeline, tmp_path
) -> None:
    from gapcam_msgs.msg import LaneChangeDecision

    decisions = harness.collect(LaneChangeDecision, f"{LIVE_NS}/cam_node/decision")
    overrides = {
        "max_age_s": 0.0,  # recorded stamps are old; the node must not drop them as stale
        "qos.reliability": "reliable",
        "qos.depth": 50,
        "threads": 1,
    }
    node = NodeProcess(
        namespace=LIVE_NS,
        args=node_args(LIVE_NS, LIVE_TOPIC, [DEFAULT_YAML], overrides),
        log_path=tmp_path / "cam_node.log",
        env=dict(os.environ),
    ).start()
    try:
        sent = _play(harness, sample_bag, decisions, node)
    finally:
        node.stop()
    live = {d.header.stamp.sec * 1_000_000_000 + d.header.stamp.nanosec: d for d in decisions.msgs}
    assert sorted(live) == sorted(sent), node.log()[-2000:]

    out = tmp_path / "replayed"
    replay_bag(
        sample_bag,
        out,
        ReplayOptions(topics=[TOPIC], progress=False, report=False),
        pipeline=pipeline,
    )
    offline = read_bag(out)[f"{NS}/cam_node/decision"]
    assert len(offline) == len(sent)
    for ts, off in offline:
        got = live[ts]
        assert got.header.frame_id == off.header.frame_id
        assert (got.decision, got.raw_decision, got.decision_label) == (
            off.decision,
            off.raw_decision,
            off.decision_label,
        ), ts
        assert list(got.class_names) == list(off.class_names)
        np.testing.assert_allclose(got.probabilities, off.probabilities, atol=1e-5)
        np.testing.assert_allclose(
            got.smoothed_probabilities, off.smoothed_probabilities, atol=1e-5
        )
        assert abs(got.confidence - off.confidence) < 1e-5
        box = ("x_offset", "y_offset", "width", "height")
        assert [getattr(got.cam_box, k) for k in box] == [getattr(off.cam_box, k) for k in box]
        assert got.model_id == off.model_id
