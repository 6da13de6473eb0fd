"""The node counts the camera publishers matched with its input on ``/diagnostics`` and says why
one on the topic is not matched (the camera subscription has no QoS event handlers: see
``cam_node.camera_input``)."""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from ros_harness import RELIABLE, wait_for
from sensor_msgs.msg import CompressedImage, Image

NS = "/match_cam"
TOPIC = f"{NS}/image_raw"


def test_publishers_matched_unmatched_and_lost_are_reported(start_node, ros) -> None:
    node = start_node(NS, TOPIC, **{"qos.reliability": "reliable", "diagnostics.period_s": 0.2})
    diag = ros.diagnostics
    wait_for(lambda: node.check_alive() or ros.node.count_subscribers(TOPIC) > 0, 60.0, "node")
    v = diag.latest(node.name, timeout=20.0)
    assert v["input_publishers"] == "0" and "no publisher on the input topic" in v["_message"]

    # best effort offered, reliable requested: never matched, and the node says why
    incompatible = ros.node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    v = diag.wait_until(node.name, lambda v: "QoS" in v["_message"], 20.0, "the QoS reason")
    assert v["input_publishers"] == "0" and v["_level"] == 1
    assert (
        "/gapcam_test offers incompatible QoS (Best effort publisher and reliable"
        in (v["_message"])
    )
    wait_for(lambda: "is not matched: /gapcam_test offers" in node.log(), 10.0, "the warning")
    ros.node.destroy_publisher(incompatible)

    # a publisher of another type on the same name (its own participant: Fast DDS refuses two
    # types on one topic name within one)
    context = rclpy.Context()
    rclpy.init(context=context)
    other = Node("jpeg_driver", namespace=NS, context=context)
    try:
        other.create_publisher(CompressedImage, TOPIC, RELIABLE)
        reason = (
            f"{NS}/jpeg_driver publishes sensor_msgs/msg/CompressedImage, "
            "the node expects sensor_msgs/msg/Image"
        )
        diag.wait_until(node.name, lambda v: reason in v["_message"], 20.0, "the type reason")
    finally:
        other.destroy_node()
        rclpy.try_shutdown(context=context)

    camera = ros.node.create_publisher(Image, TOPIC, RELIABLE)
    v = diag.wait_until(node.name, lambda v: v["input_publishers"] == "1", 20.0, "1 publisher")
    assert v["_message"] == "no camera frames received yet from 1 publisher(s)"

    since = time.time()
    ros.node.destroy_publisher(camera)
    v = diag.wait_until(
        node.name, lambda v: v["input_publishers"] == "0", 20.0, "0 publishers", after=since
    )
    assert "no publisher on the input topic" in v["_message"]
    warned = [ln.split("]: ")[-1] for ln in node.log().splitlines() if "is not matched" in ln]
    assert len(warned) >= 2 and len(set(warned)) == len(warned), warned  # not once per period
