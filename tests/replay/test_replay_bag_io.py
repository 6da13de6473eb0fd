"""Interoperability of the bags with rclpy serialisation and rosbag2 metadata readers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rclpy.serialization as rclpy_serialization
from gapcam_msgs.msg import LaneChangeDecision
from replay_helpers import read_bag

from gapcam.replay import bag_io, messages
from gapcam.replay.replay import ReplayOptions, replay_bag
from gapcam.stream import StreamProcessor


def _gapcam_msgs():
    return LaneChangeDecision


def _rclpy_image(stamp_ns: int, frame_id: str, img: np.ndarray):
    from sensor_msgs.msg import Image

    from gapcam.ros_image import encode_bgr

    msg = Image(**encode_bgr(img, "rgb8"))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rclpy_serialised_images_replay_and_decisions_deserialise_with_rclpy(
    storage, tmp_path, pipeline, scene_image
):
    """Images serialised by rclpy go in; decisions come out that rclpy deserialises into the
    built gapcam_msgs type, with the values StreamProcessor computes for the same pixels."""
    lane_change_decision = _gapcam_msgs()
    bag = tmp_path / "in"
    frames = [np.roll(scene_image, 40 * i, axis=1) for i in range(6)]
    t0 = 1_700_000_000_000_000_000
    with bag_io.BagWriter(bag, storage) as w:
        for i, img in enumerate(frames):
            stamp = t0 + i * 50_000_000
            data = rclpy_serialization.serialize_message(_rclpy_image(stamp, "cam", img))
            w.write_raw("/cam/image_raw", bag_io.IMAGE, data, stamp + 7)
    out = tmp_path / "out"
    replay_bag(bag, out, ReplayOptions(progress=False, storage=storage), pipeline=pipeline)

    proc = StreamProcessor(pipeline)
    reader = bag_io.open_reader(out)
    try:
        decisions = [
            rclpy_serialization.deserialize_message(bytes(raw), lane_change_decision)
            for conn, _, raw in reader.messages()
            if conn.topic == "/cam/cam_node/decision"
        ]
    finally:
        reader.close()
    assert len(decisions) == len(frames)
    for i, (msg, img) in enumerate(zip(decisions, frames, strict=True)):
        exp = proc.process("x", img, t0 + i * 50_000_000, "cam")
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == divmod(
            t0 + i * 50_000_000, 1_000_000_000
        )
        assert msg.header.frame_id == "cam"
        assert msg.decision_label == exp.decision.label
        assert msg.raw_decision == exp.result.class_index
        np.testing.assert_allclose(msg.probabilities, exp.result.probabilities, rtol=1e-5)


def test_decision_definition_matches_rosidl(tmp_path):
    """The bag's embedded definition and type hash equal what rosidl built for the node, so
    `ros2 bag` matches the topic type to the installed gapcam_msgs."""
    _gapcam_msgs()
    store = bag_io.typestore()
    share = Path(sys.prefix) / "share" / "gapcam_msgs" / "msg" / "LaneChangeDecision.json"
    if not share.exists():
        pytest.skip("rosidl type description not installed")
    hashes = {
        h["type_name"]: h["hash_string"] for h in json.loads(share.read_text())["type_hashes"]
    }
    assert store.hash_rihs01(bag_io.DECISION) == hashes[bag_io.DECISION]
    with bag_io.BagWriter(tmp_path / "b", "mcap") as w:
        conn = w.connection("/d", bag_io.DECISION)
    fields = [
        line.split("#")[0].strip()
        for line in bag_io.decision_msg_path().read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    ours = conn.msgdef.data.split("=" * 80)[0].splitlines()
    assert [" ".join(f.split()) for f in fields] == ours  # the .msg file, comments removed
    assert "MSG: sensor_msgs/RegionOfInterest" in conn.msgdef.data
    meta = bag_io.read_metadata(tmp_path / "b")
    (topic,) = meta["topics_with_message_count"]
    assert topic["topic_metadata"]["type_description_hash"] == hashes[bag_io.DECISION]


def test_replay_decision_equals_the_node_message(pipeline, scene_image):
    """A decision built for the bag (rosbags) deserialises with rclpy into a message equal to the
    one the node publishes for the same frame output (CDR padding bytes aside, which rclpy and
    rosbags may fill differently)."""
    lane_change_decision = _gapcam_msgs()
    from cam_node import convert

    from gapcam.ros_cdr import CdrHeader

    out = StreamProcessor(pipeline).process("c", scene_image, 1_700_000_000_123_456_789, "cam")
    ours = bag_io.typestore().serialize_cdr(
        messages.decision_msg(bag_io.typestore(), out), bag_io.DECISION
    )
    header = CdrHeader(1_700_000_000, 123_456_789, "cam")
    node_bytes = convert.decision_cdr(header, out, out.latency_ms)
    assert len(ours) == len(node_bytes)
    assert rclpy_serialization.deserialize_message(
        bytes(ours), lane_change_decision
    ) == rclpy_serialization.deserialize_message(node_bytes, lane_change_decision)


def test_metadata_versions_per_storage(tmp_path):
    for storage, version in (("mcap", 9), ("sqlite3", 8)):
        with bag_io.BagWriter(tmp_path / storage, storage) as w:
            w.write("/s", bag_io.STRING, messages.string_msg(w.store, "x"), 5)
        meta = bag_io.read_metadata(tmp_path / storage)
        assert meta["version"] == version
        assert meta["storage_identifier"] == storage
        (t,) = meta["topics_with_message_count"]
        qos = t["topic_metadata"]["offered_qos_profiles"]
        # v8 (Humble) stores QoS as a YAML string, v9 (Jazzy+) as a list: both never empty
        assert isinstance(qos, str if version == 8 else list) and qos
        assert meta["files"][0]["message_count"] == 1


def test_writer_closes_on_error_leaving_a_readable_bag(tmp_path):
    path = tmp_path / "b"
    with pytest.raises(RuntimeError), bag_io.BagWriter(path, "mcap") as w:
        w.write("/s", bag_io.STRING, messages.string_msg(w.store, "kept"), 5)
        raise RuntimeError("boom")
    got = read_bag(path)
    assert [m.data for _, m in got["/s"]] == ["kept"]


def test_writer_refuses_existing_output(tmp_path):
    from gapcam.errors import GapcamError

    (tmp_path / "b").mkdir()
    with pytest.raises(GapcamError, match="already exists"):
        bag_io.BagWriter(tmp_path / "b", "mcap")


def test_decision_msg_path_is_the_package_source():
    p = bag_io.decision_msg_path()
    assert p.name == "LaneChangeDecision.msg" and "gapcam_msgs" in p.parts
    assert "sensor_msgs/RegionOfInterest cam_box" in p.read_text()
