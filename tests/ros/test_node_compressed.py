"""Compressed (JPEG) input with reliable QoS over real DDS."""

from __future__ import annotations

import time

import cv2
import pytest
from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data
from ros_harness import Camera, Diagnostics, scene, wait_for
from sensor_msgs.msg import CompressedImage

NS = "/jpeg_cam"
TOPIC = f"{NS}/image_raw"


@pytest.fixture(scope="module")
def cam(start_node, make_camera) -> Camera:
    node = start_node(
        NS, TOPIC, input_transport="compressed", **{"qos.reliability": "reliable", "qos.depth": 2}
    )
    camera = make_camera(node, TOPIC, compressed=True, reliable_input=True, frame_id="jpeg_cam")
    camera.wait_ready()
    return camera


def test_subscribes_to_image_transport_compressed_name_reliably(cam: Camera, ros) -> None:
    infos = wait_for(
        lambda: ros.node.get_subscriptions_info_by_topic(f"{TOPIC}/compressed"), 5.0, "sub info"
    )
    assert [i.qos_profile.reliability for i in infos] == [ReliabilityPolicy.RELIABLE]
    # A best-effort publisher is incompatible with a reliable subscription: never matched.
    pub = ros.node.create_publisher(CompressedImage, f"{TOPIC}/compressed", qos_profile_sensor_data)
    time.sleep(1.0)
    assert pub.get_subscription_count() == 0
    ros.node.destroy_publisher(pub)


def test_jpeg_frames_decide_like_the_core(cam: Camera) -> None:
    for seed in range(5):
        cam.send_and_wait(scene(seed, (640, 480)), jpeg_quality=70 + 5 * seed)
    assert cam.verify() == 5


def test_camera_rate_reliable(cam: Camera, diagnostics: Diagnostics) -> None:
    before = cam.wait_accounting(diagnostics)
    sent = []
    for i in range(30):  # 30 Hz for 1 s
        sent.append(cam.send(scene(40 + i % 3, (640, 480))))
        time.sleep(1 / 30)
    cam.wait_decision(sent[-1])
    n = cam.verify()
    # Reliable input loses nothing: each frame is decided or counted as superseded by a newer
    # one (how many of each is this machine's speed, which bench/ measures).
    after = cam.wait_accounting(diagnostics)
    assert int(after["frames_in"]) - int(before["frames_in"]) == 30, (before, after)
    assert int(after["decisions_out"]) - int(before["decisions_out"]) == n >= 1


def test_corrupt_jpeg_is_reported_and_the_node_stays_alive(
    cam: Camera, diagnostics: Diagnostics
) -> None:
    before = int(diagnostics.latest(cam.node.name)["drops_decode_error"])
    ok, buf = cv2.imencode(".jpg", scene(7, (320, 240)))
    data = buf.tobytes()
    bad = []
    for payload in (data[: len(data) // 2], b"\xff\xd8garbage\xff\xd9", b""):
        msg = CompressedImage(format="jpeg", data=payload)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        bad.append(msg)
    cam.publish_one_by_one(bad, diagnostics)  # a burst would be merged into its newest frame
    cam.send_and_wait(scene(8, (320, 240)))
    cam.node.check_alive()
    cam.verify()
    v = diagnostics.wait_until(
        cam.node.name, lambda v: int(v["drops_decode_error"]) == before + 3, 5.0, "3 decode errors"
    )
    assert "JPEG" in v["last_error"] or "compressed image" in v["last_error"]
