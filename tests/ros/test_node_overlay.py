"""Overlays over real DDS: computed only while subscribed, rate-limited, correct size/encoding/content."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from ros_harness import Camera, Diagnostics, scene, wait_for
from sensor_msgs.msg import CompressedImage, Image

from gapcam.node_settings import DEFAULT_OVERLAY
from gapcam.overlay import cam_mono8

NS = "/overlay_cam"
TOPIC = f"{NS}/image_raw"
OUT = f"{NS}/cam_node"
SIZE = (320, 240)


@pytest.fixture(scope="module")
def cam(start_node, make_camera) -> Camera:
    node = start_node(NS, TOPIC, **{"overlay.max_rate_hz": 100.0, "overlay.scale": 0.5})
    camera = make_camera(node, TOPIC, frame_id="cam_optical")
    camera.wait_ready()
    return camera


def _counter(v: dict, key: str) -> int:
    return int(v.get(key, 0))


def _subscribe(ros, msg_type, topic):
    col = ros.collect(msg_type, topic)
    wait_for(lambda: col.sub.get_publisher_count() > 0, 10.0, f"{topic} to match")
    return col


def _wait_image_subscribers(diagnostics: Diagnostics, cam: Camera, n: int, since: float) -> None:
    """Until the node itself counts ``n`` subscribers of its image outputs (``/diagnostics``):
    our side of a match says nothing about the node's."""
    diagnostics.wait_until(
        cam.node.name,
        lambda v: int(v["image_subscribers"]) == n,
        20.0,
        f"image_subscribers == {n}",
        after=since,
    )


def _by_stamp(col, stamp: int):
    for m in col.msgs:
        if m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec == stamp:
            return m
    return None


def test_lazy_then_rendered_then_lazy_again(cam: Camera, ros, diagnostics: Diagnostics) -> None:
    for seed in range(5):
        cam.send_and_wait(scene(seed, SIZE))
    v = diagnostics.latest(cam.node.name)
    assert _counter(v, "overlays_rendered") == 0 and _counter(v, "cam_published") == 0
    assert _counter(v, "overlay_skipped_no_subscriber") >= 5

    since = time.time()
    overlay = _subscribe(ros, Image, f"{OUT}/cam_overlay")
    jpeg = _subscribe(ros, CompressedImage, f"{OUT}/cam_overlay/compressed")
    heat = _subscribe(ros, Image, f"{OUT}/cam")
    _wait_image_subscribers(diagnostics, cam, 3, since)
    stamps = []
    for seed in range(10, 14):
        stamps.append(cam.send(scene(seed, SIZE)))
        cam.wait_decision(stamps[-1])
        time.sleep(0.02)  # max 100 Hz
    cam.verify()
    for stamp in stamps:
        wait_for(
            lambda s=stamp: _by_stamp(overlay, s) and _by_stamp(jpeg, s) and _by_stamp(heat, s),
            10.0,
            "overlays",
        )
        out = cam.outputs[stamp]
        image = cam.sent[stamp].image
        h, w = image.shape[:2]

        o = _by_stamp(overlay, stamp)
        assert o.encoding == "bgr8" and (o.width, o.height) == (w // 2, h // 2)
        assert o.step == o.width * 3 and o.header.frame_id == "cam_optical"
        got = np.frombuffer(o.data, np.uint8).reshape(o.height, o.width, 3)
        want = cam.reference.render(
            image, out, alpha=DEFAULT_OVERLAY.alpha, scale=DEFAULT_OVERLAY.scale
        )
        # Same pixels below the text panel (its caption prints this machine's latency; at this
        # 160x120 overlay size the panel takes the top ~60% of the rows).
        ph = int(want.shape[0] * 0.75)
        assert np.abs(got[ph:].astype(int) - want[ph:].astype(int)).max() <= 1

        j = _by_stamp(jpeg, stamp)
        assert j.format == "jpeg"
        dec = cv2.imdecode(np.frombuffer(j.data, np.uint8), cv2.IMREAD_COLOR)
        assert dec.shape == got.shape and np.abs(dec.astype(int) - got.astype(int)).mean() < 12

        c = _by_stamp(heat, stamp)
        assert c.encoding == "mono8" and (c.width, c.height) == (w, h)
        np.testing.assert_array_equal(
            np.frombuffer(c.data, np.uint8).reshape(h, w), cam_mono8(out.result.cam, (w, h))
        )
    v = diagnostics.latest(cam.node.name)
    assert _counter(v, "overlays_rendered") >= len(stamps)
    assert _counter(v, "cam_published") >= len(stamps)

    since = time.time()
    for col in (overlay, jpeg, heat):
        ros.destroy(col)
    _wait_image_subscribers(diagnostics, cam, 0, since)
    rendered = _counter(diagnostics.latest(cam.node.name), "overlays_rendered")
    for seed in range(20, 24):
        cam.send_and_wait(scene(seed, SIZE))
    cam.verify()
    v = diagnostics.latest(cam.node.name)
    assert _counter(v, "overlays_rendered") == rendered


def test_overlay_rate_is_limited(cam: Camera, ros, diagnostics: Diagnostics) -> None:
    (res,) = ros.set_parameters(cam.node.name, {"overlay.max_rate_hz": 2.0})
    assert res.successful, res.reason
    since = time.time()
    overlay = _subscribe(ros, Image, f"{OUT}/cam_overlay")
    _wait_image_subscribers(diagnostics, cam, 1, since)
    before = _counter(diagnostics.latest(cam.node.name), "overlay_skipped_rate")
    start = time.monotonic()
    for i in range(20):  # 20 Hz for 1 s
        last = cam.send(scene(30 + i % 4, SIZE))
        time.sleep(0.05)
    cam.wait_decision(last)
    wait_for(lambda: len(overlay) >= 1, 10.0, "the first overlay")
    elapsed = time.monotonic() - start  # the node rendered at most 2 Hz x this + 1
    n = len(overlay)
    assert 1 <= n <= 2.0 * elapsed + 1, f"{n} overlays in {elapsed:.1f} s at max 2 Hz"
    v = diagnostics.latest(cam.node.name)
    assert _counter(v, "overlay_skipped_rate") > before
    cam.verify()
    ros.destroy(overlay)
