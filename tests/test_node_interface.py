"""Topic names, /diagnostics keys and the DiagnosticArray builder shared by node and replay."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gapcam.node_interface import (
    DIAGNOSTIC_KEYS,
    DROP_CAUSES,
    OUTPUTS,
    DiagnosticTypes,
    StatusFields,
    diagnostic_array,
    diagnostic_values,
    status_name,
)
from gapcam.replay import bag_io
from gapcam.replay.messages import diagnostic_array as bag_diagnostic_array
from gapcam.replay.topics import Camera
from gapcam.stamps import split_stamp, stamp_ns

SNAPSHOT = {k: 0 for k in DIAGNOSTIC_KEYS} | {"rate_in_hz": 14.9876, "last_error": ""}


def test_values_put_the_common_keys_first_and_format_floats():
    values = diagnostic_values(SNAPSHOT, model_id="m", source="gapcam replay")
    keys = [k for k, _ in values]
    assert tuple(keys[: len(DIAGNOSTIC_KEYS)]) == DIAGNOSTIC_KEYS and keys[-1] == "source"
    assert dict(values)["rate_in_hz"] == "14.988" and dict(values)["model_id"] == "m"
    assert all(f"drops_{c}" in keys for c in DROP_CAUSES)
    with pytest.raises(KeyError, match="latency_p50_ms"):
        diagnostic_values({k: v for k, v in SNAPSHOT.items() if k != "latency_p50_ms"})


def test_replay_writes_the_same_status_into_a_bag_message():
    store = bag_io.typestore(bag_io.DEFAULT_DISTRO)
    status = StatusFields(1, status_name("/rear_left/cam_node", replay=True), "m", "hw", [])
    msg = bag_diagnostic_array(store, 1_500_000_000, [status])
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, 500_000_000)
    assert msg.status[0].name == "/rear_left/cam_node: lane change (replay)"
    assert msg.status[0].level == 1
    plain = SimpleNamespace
    built = diagnostic_array(
        DiagnosticTypes(array=plain, status=plain, key_value=plain, level=lambda n: bytes([n])),
        "header",
        [StatusFields(2, "n", "text", "hw", [("k", "v")])],
    )
    assert built.status[0].level == b"\x02" and built.status[0].values[0].key == "k"


def test_replay_topics_are_the_nodes():
    cam = Camera("/rear_left/image_raw/compressed", bag_io.COMPRESSED_IMAGE, 1)
    assert cam.decision_topic == f"/rear_left/cam_node/{OUTPUTS[0]}"
    assert cam.overlay_topic == "/rear_left/cam_node/cam_overlay/compressed"
    assert cam.overlay_topic.endswith(OUTPUTS[2])


def test_stamps_round_trip_exactly():
    ns = 1_700_000_000_123_456_789
    sec, nsec = split_stamp(ns)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nsec))
    assert stamp_ns(header) == ns and nsec == 123_456_789
