"""Helpers shared by the replay tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path


def read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(bag timestamp, deserialised rosbags message)] of a whole bag."""
    from gapcam.replay import bag_io

    store = bag_io.typestore()
    reader = bag_io.open_reader(path)
    try:
        out: dict[str, list[tuple[int, object]]] = {}
        for conn, ts, raw in reader.messages():
            out.setdefault(conn.topic, []).append((ts, store.deserialize_cdr(raw, conn.msgtype)))
        return out
    finally:
        reader.close()


def read_raw(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """topic -> [(bag timestamp, CDR bytes)]."""
    from gapcam.replay import bag_io

    reader = bag_io.open_reader(path)
    try:
        out: dict[str, list[tuple[int, bytes]]] = {}
        for conn, ts, raw in reader.messages():
            out.setdefault(conn.topic, []).append((ts, bytes(raw)))
        return out
    finally:
        reader.close()
