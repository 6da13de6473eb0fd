"""``builtin_interfaces/Time`` <-> integer nanoseconds, for rclpy and rosbags messages alike."""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def to_ns(sec: int, nanosec: int) -> int:
    """``builtin_interfaces/Time`` fields as integer nanoseconds (exact: no float seconds)."""
    return int(sec) * NS_PER_S + int(nanosec)


def stamp_ns(header: Any) -> int:
    """A ``std_msgs/Header``'s stamp as integer nanoseconds."""
    return to_ns(header.stamp.sec, header.stamp.nanosec)


def split_stamp(ns: int) -> tuple[int, int]:
    """Nanoseconds -> ``(sec, nanosec)`` as in ``builtin_interfaces/Time``."""
    return int(ns // NS_PER_S), int(ns % NS_PER_S)
