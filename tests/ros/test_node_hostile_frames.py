"""Hostile frames over real DDS (issue 12): decompression bombs, a PNG past OpenCV's own limit and
JPEGs that libjpeg only warns about get no decision, are counted as ``decode_error`` on
/diagnostics (never ``inference_error``), do not flood the log, and the node keeps deciding."""

from __future__ import annotations

import time

import hostile_images
import pytest
from ros_harness import Camera, Diagnostics, scene
from sensor_msgs.msg import CompressedImage, Image

NS = "/hostile_cam"
TOPIC = f"{NS}/image_raw"


@pytest.fixture(scope="module")
def cam(start_node, make_camera) -> Camera:
    node = start_node(
        NS,
        TOPIC,
        input_transport="compressed",
        error_throttle_s=60.0,
        **{"qos.reliability": "reliable", "qos.depth": 10, "diagnostics.period_s": 0.2},
    )
    camera = make_camera(node, TOPIC, compressed=True, reliable_input=True, frame_id="hostile")
    camera.wait_ready()
    return camera


def _counts(diagnostics: Diagnostics, cam: Camera) -> tuple[int, int]:
    v = diagnostics.latest(cam.node.name)
    return int(v["drops_decode_error"]), int(v["drops_inference_error"])


def _publish(cam: Camera, payload: bytes, fmt: str) -> int:
    stamp = cam.next_stamp()
    msg = CompressedImage(format=fmt, data=payload)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    msg.header.frame_id = "hostile"
    cam.publish_raw(msg)
    return stamp


def test_hostile_frames_get_no_decision_and_count_as_decode_errors(
    cam: Camera, diagnostics: Diagnostics
) -> None:
    cam.send_and_wait(scene(1))
    decode0, inference0 = _counts(diagnostics, cam)
    stamps = []
    cases = hostile_images.hostile_images()
    for i, (name, payload) in enumerate(cases.items()):
        stamps.append(_publish(cam, payload, "png" if name.startswith("png") else "jpeg"))
        # one at a time, so none is superseded by the next: each must be counted
        diagnostics.wait_until(
            cam.node.name,
            lambda v, n=i + 1: int(v["drops_decode_error"]) == decode0 + n,
            20.0,
            f"decode error #{i + 1} ({name})",
        )
        cam.node.check_alive()
    # The node still decides, like the core, on the next good frame.
    cam.send_and_wait(scene(2))
    cam.verify()
    assert all(cam.decision_for(s) is None for s in stamps)
    decode, inference = _counts(diagnostics, cam)
    assert decode == decode0 + len(cases) and inference == inference0
    # One throttled log line, not one per frame and no raw libjpeg/libpng lines on stderr.
    log = cam.node.log()
    assert log.count("bad frame dropped") == 1, log[-3000:]
    raw = [ln for ln in log.splitlines() if ln.startswith(("Corrupt JPEG", "libpng", "Premature"))]
    assert raw == []


def test_max_pixels_parameter_refuses_frames_at_run_time(
    cam: Camera, diagnostics: Diagnostics, ros
) -> None:
    decode0, _ = _counts(diagnostics, cam)
    w, h = 320, 240
    assert ros.set_parameters(cam.node.name, {"max_pixels": w * h - 1})[0].successful
    try:
        stamp = cam.send(scene(3, (w, h)))
        v = diagnostics.wait_until(
            cam.node.name,
            lambda v: int(v["drops_decode_error"]) == decode0 + 1,
            20.0,
            "the frame over max_pixels refused",
        )
        assert "max_pixels" in v["last_error"]
        assert cam.decision_for(stamp) is None
        cam.sent.pop(stamp)
    finally:
        assert ros.set_parameters(cam.node.name, {"max_pixels": w * h})[0].successful
    cam.send_and_wait(scene(4, (w, h)))
    cam.verify()


def test_raw_frame_claiming_a_huge_size_is_refused(start_node, make_camera, diagnostics) -> None:
    """A raw ``Image`` whose header claims 20000x20000 (with a small buffer): decode error."""
    ns, topic = "/hostile_raw", "/hostile_raw/image_raw"
    node = start_node(ns, topic, **{"qos.reliability": "reliable", "diagnostics.period_s": 0.2})
    raw = make_camera(node, topic, reliable_input=True, frame_id="raw")
    raw.wait_ready()
    raw.send_and_wait(scene(5))
    before = int(diagnostics.latest(node.name)["drops_decode_error"])
    msg = Image(height=20000, width=20000, encoding="bgr8", step=60000, data=bytes(1000))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
    raw.publish_raw(msg)
    v = diagnostics.wait_until(
        node.name, lambda v: int(v["drops_decode_error"]) == before + 1, 20.0, "raw bomb refused"
    )
    assert "max_pixels" in v["last_error"] and int(v["drops_inference_error"]) == 0
    raw.send_and_wait(scene(6))
    node.check_alive()
