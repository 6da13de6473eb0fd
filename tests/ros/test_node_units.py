"""The node's ROS-free part: the statistics and the summary behind /diagnostics."""

from __future__ import annotations

from cam_node.diagnostics import OfferedInput, level_and_message, unmatched_reason
from cam_node.stats import DROP_CAUSES, StreamStats

IMAGE = "sensor_msgs/msg/Image"


def test_stats_count_rates_and_percentiles() -> None:
    s = StreamStats(window_s=2.0)
    for i in range(10):
        s.frame_in()
        if i % 2:
            s.drop("superseded")
        else:
            s.decision_out(latency_ms=float(i), age_ms=float(i) + 1, label="free")
    s.drop("decode_error", "bad bytes")
    snap = s.snapshot()
    assert snap["frames_in"] == 10 and snap["decisions_out"] == 5
    assert snap["drops_superseded"] == 5 and snap["drops_decode_error"] == 1
    assert snap["drops_total"] == 6
    assert all(f"drops_{c}" in snap for c in DROP_CAUSES)
    assert snap["rate_in_hz"] == 5.0 and snap["rate_out_hz"] == 2.5
    assert snap["latency_p50_ms"] == 4.0 and 7.9 < snap["latency_p99_ms"] <= 8.0
    assert snap["last_error"] == "decode_error: bad bytes" and snap["last_decision"] == "free"


def test_diagnostics_say_whether_a_camera_publisher_is_matched() -> None:
    """Before any frame: no publisher points at the remapping, one publisher at the camera."""
    snap = StreamStats(window_s=2.0).snapshot()
    level, message = level_and_message(snap, None, None, 0, "")
    assert level == 1 and "no publisher on the input topic" in message
    level, message = level_and_message(snap, None, None, 1, "")
    assert level == 1 and message == "no camera frames received yet from 1 publisher(s)"
    level, message = level_and_message(snap, None, 12.0, 0, "/cam/driver offers incompatible QoS")
    assert level == 1
    assert message == "no camera frames received for 12 s: /cam/driver offers incompatible QoS"


def _offered(topic_type: str = IMAGE, compatible: bool = True, reason: str = "") -> OfferedInput:
    return OfferedInput("/cam/driver", topic_type, compatible, reason)


def test_unmatched_publishers_are_explained() -> None:
    assert unmatched_reason([], 0, IMAGE) == ""
    assert unmatched_reason([_offered()], 1, IMAGE) == ""  # matched
    assert unmatched_reason([_offered()], 0, IMAGE) == ""  # compatible: discovery in progress
    reason = "ERROR: Best effort publisher and reliable subscription;"
    assert unmatched_reason([_offered(compatible=False, reason=reason)], 0, IMAGE) == (
        "/cam/driver offers incompatible QoS (Best effort publisher and reliable subscription);"
        " see qos.*"
    )
    wrong = _offered("sensor_msgs/msg/CompressedImage")
    assert unmatched_reason([_offered(), wrong], 1, IMAGE) == (
        "/cam/driver publishes sensor_msgs/msg/CompressedImage, the node expects " + IMAGE
    )
