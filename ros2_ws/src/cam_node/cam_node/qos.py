"""QoS of the node's topics (the image_pipeline habit of one helper instead of literals)."""

from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data


def image_input_qos(reliability: str, depth: int) -> QoSProfile:
    """Camera input: sensor data (best effort, volatile) by default, so the node never asks a
    driver to resend a stale frame; ``reliable`` for publishers that offer nothing else."""
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=qos_profile_sensor_data.reliability,
        durability=qos_profile_sensor_data.durability,
    )
    if reliability == "reliable":
        qos.reliability = ReliabilityPolicy.RELIABLE
    return qos


def output_qos(depth: int) -> QoSProfile:
    """Outputs are reliable: a reliable publisher matches both reliable subscribers (rviz's
    default, ``ros2 bag record``) and best-effort ones, a best-effort one only the latter."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE
    )
