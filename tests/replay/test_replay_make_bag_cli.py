"""``gapcam make-bag`` contents and the ``gapcam replay`` / ``make-bag`` command lines."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from replay_helpers import read_bag

from gapcam.cli import main
from gapcam.replay import bag_io
from gapcam.replay.make_bag import EPOCH_NS
from gapcam.replay.messages import image_from_msg

CAMS = ("/rear_left", "/rear_right")


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_sample_bag_layout(sample_bag):
    meta = bag_io.read_metadata(sample_bag)
    types = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["type"]
        for t in meta["topics_with_message_count"]
    }
    for ns in CAMS:
        assert types[f"{ns}/image_raw"] == bag_io.IMAGE
        assert types[f"{ns}/image_raw/compressed"] == bag_io.COMPRESSED_IMAGE
    assert types["/gapcam/ground_truth"] == bag_io.STRING
    assert json.loads(meta["custom_data"]["gapcam.make_bag"])["fps"] == 15.0


def test_cameras_rates_stamps_and_transports(sample_bag):
    msgs = read_bag(sample_bag)
    for k, ns in enumerate(CAMS):
        raw, comp = msgs[f"{ns}/image_raw"], msgs[f"{ns}/image_raw/compressed"]
        assert len(raw) == len(comp) == 24
        stamps = np.array([bag_io.stamp_ns(m.header) for _, m in raw])
        assert stamps[0] == EPOCH_NS + k * (1_000_000_000 // 15) // 2  # right camera offset
        rate = 1e9 / np.diff(stamps).mean()
        assert 10 <= rate <= 30 and rate == pytest.approx(15.0, rel=1e-3)
        assert all(ts > bag_io.stamp_ns(m.header) for ts, m in raw)  # received after capture
        assert {m.header.frame_id for _, m in raw} == {f"{ns.strip('/')}_camera"}
        a = image_from_msg(bag_io.IMAGE, raw[5][1])
        b = image_from_msg(bag_io.COMPRESSED_IMAGE, comp[5][1])
        assert a.shape == (240, 320, 3) and cv2.PSNR(a, b) > 30  # same frame, JPEG'd
        assert comp[5][1].format == "bgr8; jpeg compressed bgr8"


def test_ground_truth_per_frame_with_a_vehicle_approaching_and_overtaking(sample_bag):
    msgs = read_bag(sample_bag)
    truth = [json.loads(m.data) for _, m in msgs["/gapcam/ground_truth"]]
    assert len(truth) == 48
    for ns in CAMS:
        frames = {bag_io.stamp_ns(m.header) for _, m in msgs[f"{ns}/image_raw"]}
        mine = [t for t in truth if t["frame_id"] == f"{ns.strip('/')}_camera"]
        assert {t["stamp_ns"] for t in mine} == frames
        assert [t["sequence"] for t in mine] == ["approach"] * 12 + ["overtake"] * 12
        labels = [t["label"] for t in mine]
        assert "blocked" in labels and "free" in labels  # the decision has something to change
        changes = sum(a != b for a, b in zip(labels, labels[1:], strict=False))
        assert changes >= 2


def test_make_bag_cli_sqlite3(tmp_path, capsys):
    out = tmp_path / "bag"
    code, stdout, _ = _run(
        [
            "make-bag",
            "--out",
            out,
            "--storage",
            "sqlite3",
            "--frames",
            "3",
            "--width",
            "64",
            "--height",
            "48",
            "--fps",
            "10",
            "--no-compressed",
            "--encoding",
            "rgb8",
        ],
        capsys,
    )
    assert code == 0 and "12 frames" in stdout and str(out) in stdout
    meta = bag_io.read_metadata(out)
    assert meta["storage_identifier"] == "sqlite3"
    msgs = read_bag(out)
    assert "/rear_left/image_raw/compressed" not in msgs
    assert msgs["/rear_left/image_raw"][0][1].encoding == "rgb8"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--fps", "60"], "10-30 Hz"),
        (["--no-raw", "--no-compressed"], "nothing to write"),
        (["--sequences", "teleport"], "unknown sequence kind"),
    ],
)
def test_make_bag_cli_errors(tmp_path, capsys, argv, message):
    code, _, err = _run(["make-bag", "--out", tmp_path / "b", "--frames", "2", *argv], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


def test_replay_cli(sample_bag, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = _run(
        [
            "replay",
            sample_bag,
            "--out",
            out,
            "--storage",
            "sqlite3",
            "--no-overlays",
            "--no-copy-images",
            "--topics",
            "/rear_right/image_raw/compressed",
            "--params",
            "ros2_ws/src/cam_node/config/cam_node.yaml",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, stdout
    assert "replayed 24 frames (/rear_right/image_raw 24)" in stdout
    assert "accuracy against ground truth" in stdout
    assert f"report: {out}_report/report.md" in stdout
    msgs = read_bag(out)
    assert set(msgs) == {"/rear_right/cam_node/decision", "/diagnostics", "/gapcam/ground_truth"}

    # --cam-threshold overrides the card's (0.65 for the shipped model): Zhou's 0.2 keeps more
    # of the map, so the boxes grow
    zhou = tmp_path / "zhou"
    argv = ["replay", sample_bag, "--out", zhou, "--topics", "/rear_right/image_raw/compressed"]
    flags = ["--no-overlays", "--no-copy-images", "--no-report", "--no-progress"]
    assert _run([*argv, *flags, "--cam-threshold", "0.2"], capsys)[0] == 0

    def area(bag):
        boxes = [m.cam_box for _, m in read_bag(bag)["/rear_right/cam_node/decision"]]
        return sum(b.width * b.height for b in boxes)

    assert area(zhou) > area(out)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--topics", "/nope"], "not in the bag: /nope"),
        (["--overlay-scale", "2"], "--overlay-scale 2.0: must be in (0, 1]"),
        (["--params", "missing.yaml"], "missing.yaml: no such parameter file"),
        (["--model", "missing.onnx"], "missing.onnx"),
    ],
)
def test_replay_cli_errors(sample_bag, tmp_path, capsys, argv, message):
    code, _, err = _run(["replay", sample_bag, "--out", tmp_path / "o", *argv], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_replay_cli_refuses_existing_output(sample_bag, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    code, _, err = _run(["replay", sample_bag, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "already exists" in err


def test_demo_job_makes_then_reuses_the_sample_bag(tmp_path, capsys):
    from gapcam.replay.demo_job import run_demo

    first = run_demo(tmp_path, frames_per_sequence=4, size=(160, 120))
    out = capsys.readouterr().out
    assert not first["sample_bag_reused"] and first["frames"] == 16
    assert (
        f"[demo] report: {first['report']}" in out and f"output bag: {first['output_bag']}" in out
    )
    assert (tmp_path / "replay_bag" / "metadata.yaml").is_file()
    second = run_demo(tmp_path, frames_per_sequence=4, size=(160, 120))
    assert second["sample_bag_reused"] and second["frames"] == 16
    assert read_bag(tmp_path / "replay_bag")  # replaced by the new replay, still readable


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_replay_process_stopped_by_a_signal_leaves_a_valid_bag(tmp_path, sig):
    """A real `gapcam replay` process, interrupted mid-way: exit 130, one line, readable bag."""
    import signal
    import subprocess
    import sys
    import time

    from gapcam.replay.messages import compressed_image_msg

    bag = tmp_path / "long"
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    with bag_io.BagWriter(bag, "mcap") as w:
        msg = compressed_image_msg(w.store, EPOCH_NS, "cam", frame)
        for i in range(3000):  # ~200 s of camera: far longer than the test waits
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(
                EPOCH_NS + i * 66_666_667, 10**9
            )
            w.write("/cam/image_raw/compressed", bag_io.COMPRESSED_IMAGE, msg, EPOCH_NS + i)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gapcam.cli",
            "replay",
            str(bag),
            "--out",
            str(out),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "out.mcap").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # some frames in
        proc.send_signal(getattr(signal, sig))
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "is a valid bag" in stderr
    got = read_bag(out)
    n = len(got["/cam/cam_node/decision"])
    assert 0 < n < 3000 and f"interrupted after {n} frames" in stderr
    assert bag_io.read_metadata(out)["message_count"] == sum(len(v) for v in got.values())
