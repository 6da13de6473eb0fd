"""Helpers shared by the fleet tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

import json
from pathlib import Path

from gapcam.replay import bag_io

#: The good bags of the ``bag_folder`` fixture (conftest.py); the folder also holds ``corrupt``.
GOOD = ("drive_a", "drive_b", "drive_c")


def decisions(bag: Path) -> dict[str, list[tuple]]:
    """decision topic -> [(bag time, every LaneChangeDecision field but latency_ms)]."""
    store = bag_io.typestore()
    reader = bag_io.open_reader(bag)
    out: dict[str, list[tuple]] = {}
    try:
        for conn, ts, raw in reader.messages():
            if conn.msgtype != bag_io.DECISION:
                continue
            m = store.deserialize_cdr(raw, conn.msgtype)
            fields = tuple(
                (k, _plain(getattr(m, k)))
                for k in m.__dataclass_fields__
                if k not in ("latency_ms", "__msgtype__")
            )
            out.setdefault(conn.topic, []).append((ts, fields))
    finally:
        reader.close()
    return out


def topic_counts(bag: Path) -> dict[str, int]:
    return {
        t["topic_metadata"]["name"]: t["message_count"]
        for t in bag_io.read_metadata(bag)["topics_with_message_count"]
    }


def _plain(v: object) -> object:
    if hasattr(v, "tolist"):
        return tuple(v.tolist())
    if hasattr(v, "__dataclass_fields__"):
        return tuple((k, _plain(getattr(v, k))) for k in v.__dataclass_fields__)
    if isinstance(v, list | tuple):
        return tuple(_plain(x) for x in v)
    return v


def assert_same_as_replay(out: Path, reference: dict[str, Path]) -> None:
    for name, ref in reference.items():
        got = out / name / "replay"
        assert decisions(got) == decisions(ref), name
        assert topic_counts(got) == topic_counts(ref), name
        assert (out / name / "replay_report" / "report.md").is_file()


def summary_of(out: Path) -> dict:
    return json.loads((out / "fleet_summary.json").read_text())


def labels(bag) -> dict[tuple[str, int], tuple[str, int]]:
    """(decision topic, stamp) -> (published label, raw class index) of an output bag."""
    out = {}
    for topic, msgs in decisions(bag).items():
        for ts, fields in msgs:
            f = dict(fields)
            out[(topic, ts)] = (f["decision_label"], f["raw_decision"])
    return out
