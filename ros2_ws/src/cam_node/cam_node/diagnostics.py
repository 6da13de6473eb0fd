"""``/diagnostics`` status of one node (``diagnostic_updater`` is not on PyPI, and one status
with key/value pairs is all ``rqt_runtime_monitor`` and the aggregator need)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from gapcam import node_interface
from gapcam.node_interface import DIAG_ERROR, DIAG_OK, DIAG_WARN, StatusFields

#: rclpy's message classes for the core's builder (``byte`` fields take ``bytes``).
_TYPES = node_interface.DiagnosticTypes(
    array=DiagnosticArray,
    status=DiagnosticStatus,
    key_value=KeyValue,
    level=lambda level: bytes([level]),
)

#: Drops that mean something is wrong (superseded frames are the normal newest-frame policy).
_BAD_DROPS = ("drops_stale", "drops_decode_error", "drops_inference_error")


@dataclass(frozen=True)
class OfferedInput:
    """A publisher of the input topic as the ROS graph lists it, checked against the node."""

    node: str  #: its node's fully qualified name
    topic_type: str  #: e.g. ``sensor_msgs/msg/Image``
    qos_compatible: bool  #: rclpy ``qos_check_compatible`` said it can reach the node
    qos_reason: str  #: rclpy's explanation when it cannot


def unmatched_reason(offered: Sequence[OfferedInput], matched: int, expected_type: str) -> str:
    """Why publishers of the input topic are not matched with the node ("" when there is no sign
    of a problem: none unmatched, or only discovery still in progress).

    A replacement for rclpy's incompatible-QoS warning, which the camera subscription cannot have
    (see ``cam_node.camera_input``), computed from the graph once per diagnostics period.
    """
    if len(offered) <= matched:
        return ""
    for p in offered:
        if p.topic_type != expected_type:
            return f"{p.node} publishes {p.topic_type}, the node expects {expected_type}"
    for p in offered:
        if not p.qos_compatible:
            reason = p.qos_reason.removeprefix("ERROR:").strip().rstrip(";.")
            return f"{p.node} offers incompatible QoS ({reason or 'unknown policy'}); see qos.*"
    return ""


def level_and_message(
    snap: dict, previous: dict | None, idle_for_s: float | None, publishers: int, unmatched: str
) -> tuple[int, str]:
    """OK / WARN / ERROR and a one-line summary, from this and the previous snapshot, the number
    of camera publishers matched with the input and :func:`unmatched_reason`."""
    prev = previous or {}
    new_bad = {k: int(snap[k]) - int(prev.get(k, 0)) for k in _BAD_DROPS}
    new_out = int(snap["decisions_out"]) - int(prev.get("decisions_out", 0))
    if any(new_bad.values()):
        what = ", ".join(f"{n} {k.removeprefix('drops_')}" for k, n in new_bad.items() if n)
        level = DIAG_ERROR if new_out == 0 else DIAG_WARN
        return level, f"dropped frames: {what}; last error: {snap['last_error']}"
    if publishers == 0:
        what = "yet" if idle_for_s is None else f"for {idle_for_s:.0f} s"
        why = unmatched or (
            "no publisher on the input topic (check the `image` remapping and input_transport)"
        )
        return DIAG_WARN, f"no camera frames received {what}: {why}"
    if idle_for_s is None:
        return DIAG_WARN, f"no camera frames received yet from {publishers} publisher(s)"
    if idle_for_s > 3.0:
        return DIAG_WARN, f"no camera frames for {idle_for_s:.0f} s"
    return DIAG_OK, (
        f"{snap['rate_out_hz']:.1f} Hz, p50 {snap['latency_p50_ms']:.1f} ms, "
        f"decision {snap['last_decision'] or '-'}"
    )


def diagnostic_array(header: Header, status: StatusFields) -> DiagnosticArray:
    """One status as an rclpy ``DiagnosticArray``."""
    return node_interface.diagnostic_array(_TYPES, header, [status])
