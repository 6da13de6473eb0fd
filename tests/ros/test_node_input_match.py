"""The node says at once when a camera publisher is matched with its input, or lost, and why a
publisher that offers incompatible QoS never is (its event handlers run on the executor even
though the worker takes the frames)."""

from __future__ import annotations

import time

from rclpy.qos import qos_profile_sensor_data
from ros_harness import RELIABLE, wait_for
from sensor_msgs.msg import Image

NS = "/match_cam"
TOPIC = f"{NS}/image_raw"
#: The longest period: a status this test sees within it was published by a match event.
PERIOD_S = 60.0


def test_publisher_matched_and_lost_are_reported_at_once(start_node, ros) -> None:
    started = time.time()
    node = start_node(
        NS, TOPIC, **{"qos.reliability": "reliable", "diagnostics.period_s": PERIOD_S}
    )
    diag = ros.diagnostics
    wait_for(lambda: node.check_alive() or ros.node.count_subscribers(TOPIC) > 0, 60.0, "node")

    # best effort offered, reliable requested: never matched, and the node logs why
    since = time.time()
    incompatible = ros.node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    wait_for(lambda: "offering incompatible QoS" in node.log(), 20.0, "the incompatible-QoS log")
    assert diag.statuses(node.name) == []  # nothing matched, and the timer has not fired
    ros.node.destroy_publisher(incompatible)

    camera = ros.node.create_publisher(Image, TOPIC, RELIABLE)
    v = diag.wait_until(
        node.name, lambda v: v["input_publishers"] == "1", 20.0, "1 publisher", after=since
    )
    assert v["_level"] == 1 and v["_message"] == "no camera frames received yet from 1 publisher(s)"
    assert f"matched a publisher of {TOPIC}: 1 now" in node.log()

    ros.node.destroy_publisher(camera)
    v = diag.wait_until(
        node.name, lambda v: v["input_publishers"] == "0", 20.0, "0 publishers", after=v["_stamp"]
    )
    assert "no publisher on the input topic" in v["_message"]
    assert f"lost a publisher of {TOPIC}: 0 now" in node.log()
    assert v["_stamp"] < started + PERIOD_S, "the periodic status came first: the test was slow"
