"""The node's names, as the outside world sees them: topics and ``/diagnostics`` keys.

The live node (rclpy) and bag replay (rosbags) both publish under these names, and launch,
record and rviz configs are tested against them, so a viewer layout or a dashboard fits both.
The ``/diagnostics`` key/value list is built here (:func:`diagnostic_values`) and turned into a
``DiagnosticArray`` here (:func:`diagnostic_array`), whichever message classes the caller uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The node's name; replay writes under ``<camera ns>/cam_node/`` what the node publishes there.
NODE_NAME = "cam_node"
#: The input, relative to the node (remapped to the camera); ``+ /compressed`` for JPEG/PNG.
INPUT_TOPIC = "image"
COMPRESSED_SUFFIX = "/compressed"
#: Outputs, relative to the node (``~/``).
DECISION_TOPIC = "decision"
OVERLAY_TOPIC = "cam_overlay"
OVERLAY_JPEG_TOPIC = OVERLAY_TOPIC + COMPRESSED_SUFFIX
CAM_TOPIC = "cam"
OUTPUTS: tuple[str, ...] = (DECISION_TOPIC, OVERLAY_TOPIC, OVERLAY_JPEG_TOPIC, CAM_TOPIC)
DIAGNOSTICS_TOPIC = "/diagnostics"

#: ``diagnostic_msgs/DiagnosticStatus`` levels.
DIAG_OK, DIAG_WARN, DIAG_ERROR = 0, 1, 2

#: Why a frame can be dropped; every cause is always reported (zeros included), so a dashboard
#: or a test can tell "no drops" from "not reported".
DROP_CAUSES: tuple[str, ...] = ("superseded", "stale", "decode_error", "inference_error")

#: Keys every ``/diagnostics`` status of the node and of replay carries, first and in this order
#: (rates in Hz, latencies in ms from receipt to decision).
DIAGNOSTIC_KEYS: tuple[str, ...] = (
    "rate_in_hz",
    "rate_out_hz",
    "latency_p50_ms",
    "latency_p99_ms",
    "frames_in",
    "decisions_out",
    *(f"drops_{c}" for c in DROP_CAUSES),
    "drops_total",
    "last_decision",
    "last_error",
    "input_topic",
    "input_transport",
    "backend",
    "precision",
    "model_id",
)


def status_name(node: str, replay: bool = False) -> str:
    """The status name of the node with fully qualified name ``node`` (``/rear_left/cam_node``);
    replay marks its own, so a monitor showing both can tell them apart."""
    return f"{node}: lane change" + (" (replay)" if replay else "")


def diagnostic_values(snapshot: Mapping[str, Any], **context: Any) -> list[tuple[str, str]]:
    """The status's key/value pairs: :data:`DIAGNOSTIC_KEYS` first, then anything else given.

    ``snapshot`` (counters, rates) and ``context`` (topic, backend, ...) together must hold every
    key of :data:`DIAGNOSTIC_KEYS` - a missing one is a bug, raised as ``KeyError``. Floats are
    written with three decimals.
    """
    merged = {**snapshot, **context}
    missing = [k for k in DIAGNOSTIC_KEYS if k not in merged]
    if missing:
        raise KeyError(f"diagnostics values lack {', '.join(missing)}")
    extra = [k for k in merged if k not in DIAGNOSTIC_KEYS]
    return [(k, _fmt(merged[k])) for k in (*DIAGNOSTIC_KEYS, *extra)]


def _fmt(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class StatusFields:
    """One ``DiagnosticStatus``, independent of the message library."""

    level: int
    name: str
    message: str
    hardware_id: str
    values: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class DiagnosticTypes:
    """The message classes of one library (rclpy's generated ones, or a rosbags type store)."""

    array: Callable[..., Any]
    status: Callable[..., Any]
    key_value: Callable[..., Any]
    level: Callable[[int], Any] = int  #: rclpy's ``byte`` fields want ``bytes``


def diagnostic_array(types: DiagnosticTypes, header: Any, statuses: Sequence[StatusFields]) -> Any:
    """``diagnostic_msgs/DiagnosticArray`` of ``statuses``, built with ``types``."""
    return types.array(
        header=header,
        status=[
            types.status(
                level=types.level(s.level),
                name=s.name,
                message=s.message,
                hardware_id=s.hardware_id,
                values=[types.key_value(key=k, value=v) for k, v in s.values],
            )
            for s in statuses
        ],
    )
