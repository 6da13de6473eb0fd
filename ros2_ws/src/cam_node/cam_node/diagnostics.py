"""``/diagnostics`` status of one node (``diagnostic_updater`` is not on PyPI, and one status
with key/value pairs is all ``rqt_runtime_monitor`` and the aggregator need)."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

#: Drops that mean something is wrong (superseded frames are the normal newest-frame policy).
_BAD_DROPS = ("drops_stale", "drops_decode_error", "drops_inference_error")


def level_and_message(
    snap: dict, previous: dict | None, idle_for_s: float | None
) -> tuple[bytes, str]:
    """OK / WARN / ERROR and a one-line summary, from this and the previous snapshot."""
    prev = previous or {}
    new_bad = {k: int(snap[k]) - int(prev.get(k, 0)) for k in _BAD_DROPS}
    new_out = int(snap["decisions_out"]) - int(prev.get("decisions_out", 0))
    if any(new_bad.values()):
        what = ", ".join(f"{n} {k.removeprefix('drops_')}" for k, n in new_bad.items() if n)
        level = DiagnosticStatus.ERROR if new_out == 0 else DiagnosticStatus.WARN
        return level, f"dropped frames: {what}; last error: {snap['last_error']}"
    if idle_for_s is None:
        return DiagnosticStatus.WARN, "no camera frames received yet (check the `image` remapping)"
    if idle_for_s > 3.0:
        return DiagnosticStatus.WARN, f"no camera frames for {idle_for_s:.0f} s"
    return DiagnosticStatus.OK, (
        f"{snap['rate_out_hz']:.1f} Hz, p50 {snap['latency_p50_ms']:.1f} ms, "
        f"decision {snap['last_decision'] or '-'}"
    )


def diagnostic_array(
    header: Header,
    name: str,
    hardware_id: str,
    level: bytes,
    message: str,
    values: dict,
) -> DiagnosticArray:
    status = DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()],
    )
    return DiagnosticArray(header=header, status=[status])


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
