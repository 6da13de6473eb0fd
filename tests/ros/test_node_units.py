"""The node's ROS-free part: the statistics behind /diagnostics."""

from __future__ import annotations

from cam_node.stats import DROP_CAUSES, StreamStats


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
    """Before any frame: no publisher points at the remapping/QoS, one publisher at the camera."""
    from cam_node.diagnostics import level_and_message

    snap = StreamStats(window_s=2.0).snapshot()
    level, message = level_and_message(snap, None, None, publishers=0)
    assert level == 1 and "no publisher on the input topic" in message
    assert "qos.reliability" in message
    level, message = level_and_message(snap, None, None, publishers=1)
    assert level == 1 and message == "no camera frames received yet from 1 publisher(s)"
    level, message = level_and_message(snap, None, 12.0, publishers=0)
    assert level == 1 and message.startswith("no camera frames received for 12 s: no publisher")
