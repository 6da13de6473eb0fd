"""Replay on real rosbag2 files: same decisions as the node's code path, output bag contents,
ordering, ground truth, and what happens with bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from replay_helpers import read_bag, read_raw

from gapcam.errors import GapcamError
from gapcam.node_interface import DIAGNOSTIC_KEYS
from gapcam.replay import bag_io
from gapcam.replay.messages import image_from_msg
from gapcam.replay.replay import ReplayInterrupted, ReplayOptions, replay_bag
from gapcam.stamps import split_stamp
from gapcam.stream import StreamProcessor, decision_fields

CAMS = ("/rear_left/image_raw", "/rear_right/image_raw")


def _expected(bag: Path, pipeline, topics=CAMS, smoothing=None):
    """Decisions computed directly with StreamProcessor, frames sorted by header stamp."""
    msgs = read_bag(bag)
    proc = StreamProcessor(pipeline, smoothing)
    expected = {}
    for topic in topics:
        msgtype = bag_io.IMAGE if not topic.endswith("compressed") else bag_io.COMPRESSED_IMAGE
        frames = sorted((bag_io.stamp_ns(m.header), m) for _, m in msgs[topic])
        outs = []
        for stamp, m in frames:
            out = proc.process(topic, image_from_msg(msgtype, m), stamp, m.header.frame_id)
            outs.append((stamp, decision_fields(out), out.result.box))
        expected[topic] = outs
    return expected


def _ns(topic: str) -> str:
    return topic.rsplit("/", 1)[0]


def test_decisions_equal_the_node_code_path(replayed, sample_bag, pipeline):
    summary, out = replayed
    expected = _expected(sample_bag, pipeline)
    got = read_bag(out)
    assert summary.status == "complete" and summary.skipped == 0
    for topic in CAMS:
        decisions = got[f"{_ns(topic)}/cam_node/decision"]
        exp = expected[topic]
        assert len(decisions) == len(exp) == summary.cameras[topic]["frames"] > 0
        for (ts, msg), (stamp, fields, box) in zip(decisions, exp, strict=True):
            assert ts == stamp == bag_io.stamp_ns(msg.header)  # stamps from the input header
            assert msg.decision == fields["decision"]
            assert msg.raw_decision == fields["raw_decision"]
            assert msg.decision_label == fields["decision_label"]
            assert list(msg.class_names) == fields["class_names"]
            np.testing.assert_allclose(msg.probabilities, fields["probabilities"], rtol=1e-6)
            np.testing.assert_allclose(
                msg.smoothed_probabilities, fields["smoothed_probabilities"], rtol=1e-6
            )
            assert msg.model_id == fields["model_id"]
            x0, y0 = (0, 0) if box is None else box[:2]
            assert (msg.cam_box.x_offset, msg.cam_box.y_offset) == (x0, y0)


def test_output_bag_has_overlays_images_diagnostics_and_truth(replayed, sample_bag):
    summary, out = replayed
    got = read_bag(out)
    src = read_raw(sample_bag)
    copied = read_raw(out)
    for topic in CAMS:
        n = summary.cameras[topic]["frames"]
        overlays = got[f"{_ns(topic)}/cam_node/cam_overlay/compressed"]
        assert len(overlays) == n
        img = cv2.imdecode(np.asarray(overlays[0][1].data, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (120, 160, 3)  # the node's default overlay.scale 0.5 of 320x240
        assert overlays[0][1].format == "jpeg"
        # the camera topic is copied byte for byte (the raw transport was replayed)
        assert [d for _, d in copied[topic]] == [d for _, d in src[topic]]
        assert f"{topic}/compressed" not in copied
    diags = [m for _, m in got["/diagnostics"]]
    names = {s.name for m in diags for s in m.status}
    assert names == {f"{_ns(t)}/cam_node: lane change (replay)" for t in CAMS}
    keys = [kv.key for kv in diags[-1].status[0].values]
    assert tuple(keys[: len(DIAGNOSTIC_KEYS)]) == DIAGNOSTIC_KEYS  # the node's keys, in order
    last = {kv.key: kv.value for kv in diags[-1].status[0].values}
    assert int(last["decisions_out"]) == summary.cameras[last["input_topic"]]["frames"]
    assert int(last["frames_in"]) == int(last["decisions_out"]) + int(last["drops_total"])
    assert float(last["rate_in_hz"]) > 0 and last["input_transport"] == "raw"
    assert len(got["/gapcam/ground_truth"]) == len(src["/gapcam/ground_truth"])
    # every output message is stamped with an input header stamp
    stamps = {bag_io.stamp_ns(m.header) for t in CAMS for _, m in read_bag(sample_bag)[t]}
    for topic, items in got.items():
        if topic != "/gapcam/ground_truth":
            assert {ts for ts, _ in items} <= stamps, topic


def test_metadata_records_provenance(replayed):
    _, out = replayed
    meta = bag_io.read_metadata(out)
    assert meta["storage_identifier"] == "mcap" and meta["version"] == 9
    custom = meta["custom_data"]
    assert custom["gapcam.model_id"].startswith("lane_change@")
    assert custom["gapcam.cameras"] == ",".join(CAMS)


def test_ground_truth_accuracy_and_report(replayed):
    summary, out = replayed
    labelled = [r for r in summary.records if r.truth is not None]
    assert len(labelled) == summary.frames
    classes = ("blocked", "free", "undefined")
    acc = sum(classes[r.decision] == r.truth for r in labelled) / len(labelled)
    assert summary.accuracy == pytest.approx(acc, abs=1e-4)
    report = Path(summary.report_dir)
    assert report == out.parent / f"{out.name}_report"
    text = (report / "report.md").read_text()
    assert f"**{summary.accuracy:.4f}**" in text
    for name in (
        "confusion.png",
        "latency.png",
        "timeline_rear_left_image_raw.png",
        "timeline_rear_right_image_raw.png",
    ):
        img = cv2.imread(str(report / name))
        assert img is not None and img.shape[0] > 100, name
        assert f"({name})" in text
    data = json.loads((report / "summary.json").read_text())
    assert data["frames"] == summary.frames and data["status"] == "complete"
    rows = (report / "frames.csv").read_text().splitlines()
    assert len(rows) == summary.frames + 1


def test_contact_sheet_for_every_shown_decision_change(replayed):
    summary, _ = replayed
    report = Path(summary.report_dir)
    text = (report / "report.md").read_text()
    changes = {c: v["decision_changes"] for c, v in summary.cameras.items()}
    for cam, n in changes.items():
        slug = cam.strip("/").replace("/", "_")
        assert (report / f"changes_{slug}.jpg").exists() == (n > 0)
        if n:
            assert f"`{cam}`: {n} change(s)" in text
    # recompute the changes from the records: the report counts exactly those
    for cam in changes:
        decisions = [r.decision for r in summary.records if r.camera == cam]
        assert changes[cam] == sum(a != b for a, b in zip(decisions, decisions[1:], strict=False))


def test_sqlite3_in_and_out_with_compressed_transport(sample_bag_sqlite, tmp_path, pipeline):
    out = tmp_path / "out"
    topics = [f"{t}/compressed" for t in CAMS]
    summary = replay_bag(
        sample_bag_sqlite,
        out,
        ReplayOptions(storage="sqlite3", topics=topics, copy_images=False, progress=False),
        pipeline=pipeline,
    )
    assert sorted(p.name for p in out.iterdir()) == ["metadata.yaml", "out.db3"]
    meta = bag_io.read_metadata(out)
    assert meta["version"] == 8 and meta["storage_identifier"] == "sqlite3"
    qos = meta["topics_with_message_count"][0]["topic_metadata"]["offered_qos_profiles"]
    assert isinstance(qos, str) and "reliability: 1" in qos  # Humble's QoS format
    got = read_bag(out)
    assert not any(t in got for t in topics)  # --no-copy-images
    expected = _expected(sample_bag_sqlite, pipeline, topics)
    for topic in topics:
        dec = got[f"{_ns(topic.removesuffix('/compressed'))}/cam_node/decision"]
        assert [m.decision for _, m in dec] == [f["decision"] for _, f, _ in expected[topic]]
    assert summary.realtime_factor > 0


def test_out_of_order_stamps_are_replayed_in_stamp_order(sample_bag, tmp_path, pipeline):
    """Swap neighbouring frames in the bag (receive order != stamp order): replay sorts them."""
    src = read_raw(sample_bag)
    shuffled = tmp_path / "shuffled"
    topic = CAMS[0]
    items = src[topic]
    order = list(range(len(items)))
    for i in range(0, len(order) - 1, 3):
        order[i], order[i + 1] = order[i + 1], order[i]
    with bag_io.BagWriter(shuffled, "mcap") as w:
        base_ts = items[0][0]
        for k, i in enumerate(order):  # bag time increases, header stamps do not
            w.write_raw(topic, bag_io.IMAGE, items[i][1], base_ts + k)
    out = tmp_path / "out"
    summary = replay_bag(shuffled, out, ReplayOptions(progress=False), pipeline=pipeline)
    got = read_bag(out)[f"{_ns(topic)}/cam_node/decision"]
    stamps = [bag_io.stamp_ns(m.header) for _, m in got]
    assert stamps == sorted(stamps) and len(stamps) == len(items)
    exp = _expected(sample_bag, pipeline, (topic,))[topic]
    assert [m.decision for _, m in got] == [f["decision"] for _, f, _ in exp]
    assert summary.cameras[topic]["out_of_order"] == 0
    # a window of 0 processes in bag order and counts the late frames instead
    out0 = tmp_path / "out0"
    s0 = replay_bag(
        shuffled, out0, ReplayOptions(progress=False, reorder_window=0), pipeline=pipeline
    )
    assert s0.cameras[topic]["out_of_order"] == sum(1 for i in range(0, len(order) - 1, 3))


def _truncate_copy(src: Path, dst: Path, keep: float) -> Path:
    shutil.copytree(src, dst)
    (f,) = [p for p in dst.iterdir() if p.suffix in (".mcap", ".db3")]
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])
    return f


def test_truncated_mcap_is_replayed_up_to_the_cut(sample_bag, tmp_path, pipeline, capsys):
    """A recorder that died leaves an mcap without footer: rosbags cannot open it, replay reads
    the complete messages, says what happened in one line and writes a valid partial output."""
    bad = tmp_path / "truncated"
    _truncate_copy(sample_bag, bad, 0.6)
    out = tmp_path / "out"
    with pytest.raises(GapcamError) as err:
        replay_bag(bad, out, ReplayOptions(progress=False), pipeline=pipeline)
    msg = str(err.value)
    assert "\n" not in msg and "truncated or corrupt after" in msg and str(out) in msg
    assert "incomplete mcap" in capsys.readouterr().err
    got = read_bag(out)  # the partial output opens with rosbags and holds whole messages only
    n = sum(len(v) for k, v in got.items() if k.endswith("/decision"))
    assert 0 < n < 48 and f"after {n} frames" in msg
    # the frames it did replay are decided exactly as from the intact bag
    full = _expected(sample_bag, pipeline)
    for topic in CAMS:
        dec = [m.decision for _, m in got.get(f"{_ns(topic)}/cam_node/decision", [])]
        assert dec == [f["decision"] for _, f, _ in full[topic]][: len(dec)]
    assert "**truncated**" in (Path(f"{out}_report") / "report.md").read_text()


def test_recovered_reader_matches_rosbags_on_an_intact_file(sample_bag):
    from gapcam.replay.mcap_recover import RecoveredMcapReader

    rec = RecoveredMcapReader(next(sample_bag.glob("*.mcap")))
    assert rec.problem is None  # walked up to the data-end record
    mine = [(c.topic, ts, data) for c, ts, data in rec.messages()]
    theirs = [(t, ts, d) for t, items in read_raw(sample_bag).items() for ts, d in items]
    assert sorted(mine) == sorted(theirs)
    topics = rec.topics
    assert topics["/rear_left/image_raw"].msgtype == "sensor_msgs/msg/Image"
    assert "MSG: std_msgs/Header" in topics["/rear_left/image_raw"].msgdef.data


def test_corrupt_sqlite3_bag(sample_bag_sqlite, tmp_path, pipeline):
    bad = tmp_path / "corrupt"
    shutil.copytree(sample_bag_sqlite, bad)
    db = next(bad.glob("*.db3"))
    data = bytearray(db.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 4096] = b"\xff" * 4096  # smash some pages
    db.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(GapcamError) as err:
        replay_bag(bad, out, ReplayOptions(progress=False), pipeline=pipeline)
    msg = str(err.value)
    assert "\n" not in msg and "database disk image is malformed" in msg
    got = read_bag(out)  # what was replayed before the bad pages is a valid bag
    n = sum(len(v) for k, v in got.items() if k.endswith("/decision"))
    assert 0 < n < 48 and f"truncated or corrupt after {n} frames" in msg


def test_interrupted_replay_leaves_a_readable_bag(sample_bag, tmp_path, pipeline):
    out = tmp_path / "out"
    seen = []

    def stop_after_five(record):
        seen.append(record)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(ReplayInterrupted) as err:
        replay_bag(
            sample_bag,
            out,
            ReplayOptions(progress=False),
            pipeline=pipeline,
            on_frame=stop_after_five,
        )
    assert err.value.summary.status == "interrupted" and err.value.summary.frames == 5
    got = read_bag(out)
    assert sum(len(v) for k, v in got.items() if k.endswith("/decision")) == 5
    assert bag_io.read_metadata(out)["message_count"] == sum(len(v) for v in got.values())


def test_corrupt_frames_are_skipped_and_reported(sample_bag, tmp_path, pipeline):
    """A truncated JPEG inside an intact bag: skipped and counted (as the node does), not fatal."""
    src = read_bag(sample_bag)
    topic = f"{CAMS[0]}/compressed"
    bad = tmp_path / "badframes"
    with bag_io.BagWriter(bad, "mcap") as w:
        for i, (ts, msg) in enumerate(src[topic]):
            if i == 3:
                msg.data = msg.data[: len(msg.data) // 2]
            w.write(topic, bag_io.COMPRESSED_IMAGE, msg, ts)
    out = tmp_path / "out"
    summary = replay_bag(bad, out, ReplayOptions(progress=False), pipeline=pipeline)
    assert summary.skipped == 1 and summary.frames == len(src[topic]) - 1
    diags = [s for _, m in read_bag(out)["/diagnostics"] for s in m.status]
    assert any(s.level == 1 and "skipped" in s.message for s in diags)
    assert "truncated JPEG" in {kv.key: kv.value for kv in diags[-1].values}["last_error"]


def test_missing_and_wrong_topics_fail_before_writing(sample_bag, tmp_path, pipeline):
    out = tmp_path / "out"
    with pytest.raises(GapcamError, match=r"not in the bag: /front/image_raw; image topics: "):
        replay_bag(sample_bag, out, ReplayOptions(topics=["/front/image_raw"]), pipeline=pipeline)
    with pytest.raises(GapcamError, match=r"not an image topic: /gapcam/ground_truth"):
        replay_bag(
            sample_bag, out, ReplayOptions(topics=["/gapcam/ground_truth"]), pipeline=pipeline
        )
    with pytest.raises(GapcamError, match="no such bag"):
        replay_bag(tmp_path / "nope", out, ReplayOptions(), pipeline=pipeline)
    not_a_bag = tmp_path / "empty"
    not_a_bag.mkdir()
    with pytest.raises(GapcamError, match="not a rosbag2 directory"):
        replay_bag(not_a_bag, out, ReplayOptions(), pipeline=pipeline)
    assert not out.exists()


def test_bag_without_images_and_unknown_types(tmp_path, pipeline):
    """A bag of a custom message type only: a clear message naming the topics and types."""
    bag = tmp_path / "custom"
    msgdef = "int32 value\n"
    with bag_io.BagWriter(bag, "mcap") as w:
        w.write_raw(
            "/speed",
            "acme_msgs/msg/Speed",
            b"\x00\x01\x00\x00\x07\x00\x00\x00",
            1,
            msgdef=msgdef,
            digest="RIHS01_" + "0" * 64,
        )
    with pytest.raises(GapcamError, match=r"no image topics .* /speed \(acme_msgs/msg/Speed\)"):
        replay_bag(bag, tmp_path / "out", ReplayOptions(), pipeline=pipeline)
    with pytest.raises(GapcamError, match="unknown message type"):
        bag_io.BagWriter(tmp_path / "w", "mcap").connection("/x", "acme_msgs/msg/Nope")


def test_header_stamps_survive_split(replayed):
    summary, _ = replayed
    r = summary.records[0]
    sec, nsec = split_stamp(r.stamp_ns)
    assert sec * 1_000_000_000 + nsec == r.stamp_ns
