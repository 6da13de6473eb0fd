"""Replay under hostile conditions (issue 12): repeated Ctrl-C, bags whose every frame is bad,
a truncated sqlite3 bag, a garbled ``metadata.yaml``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import hostile_images
import numpy as np
import pytest
from replay_helpers import read_bag, read_raw

from gapcam.cli import main
from gapcam.errors import GapcamError
from gapcam.replay import bag_io
from gapcam.replay.make_bag import make_bag
from gapcam.replay.replay import ReplayOptions, _StopOnSignal, replay_bag

REPO = Path(__file__).resolve().parents[2]
CAMS = ("/rear_left/image_raw", "/rear_right/image_raw")


# ---- signals -------------------------------------------------------------------------------


def test_second_signal_is_refused_third_forces():
    """In-process: the handler absorbs two signals (the flag is set), the third raises, and the
    handler from before is back afterwards (Python's default one, or SIG_IGN where a shell
    started the tests in the background)."""
    before = signal.getsignal(signal.SIGINT)
    with _StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.count == 1
        stop.closing()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.count == 2
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.fixture(scope="module")
def long_bag(tmp_path_factory) -> Path:
    """Long enough (2 x 240 frames) that a replay is still running 200 ms after it started."""
    path = tmp_path_factory.mktemp("long") / "long_mcap"
    make_bag(
        path,
        storage="mcap",
        sequences=["approach", "overtake", "approach", "overtake"],
        frames_per_sequence=60,
        size=(160, 120),
        fps=15.0,
        compressed=False,
    )
    return path


@pytest.mark.parametrize("gap_ms", [5, 50, 200])
def test_sigint_twice_leaves_a_readable_bag_and_a_report(long_bag, tmp_path, gap_ms):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gapcam.cli", "replay", str(long_bag), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        # Signal once frames are being written (a file, not a guess of how long start-up takes):
        # the mcap grows by whole chunks of copied images and decisions.
        deadline = time.monotonic() + 120
        while sum(f.stat().st_size for f in out.glob("*.mcap")) < 300_000:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "replay never wrote its output"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        time.sleep(gap_ms / 1000)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err
    # rosbags opens it: metadata.yaml is there and the mcap has its footer and summary
    assert (out / "metadata.yaml").is_file()
    got = read_raw(out)
    assert bag_io.read_metadata(out)["message_count"] == sum(len(v) for v in got.values())
    summary = json.loads((Path(f"{out}_report") / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (Path(f"{out}_report") / "report.md").is_file()
    for cam in CAMS:  # every frame read (and copied) was decided, held ones included
        ns = cam.rsplit("/", 1)[0]
        images, decisions = len(got.get(cam, [])), len(got.get(f"{ns}/cam_node/decision", []))
        assert images == decisions == summary["cameras"][cam]["frames"]
    assert 0 < summary["frames"] < 480


def test_signal_mid_replay_decides_the_held_frames(sample_bag, tmp_path, pipeline):
    """In-process SIGINT after 5 frames: the frames held for stamp order are still decided."""
    from gapcam.replay.replay import ReplayInterrupted

    seen = []

    def interrupt_after_five(record):
        seen.append(record)
        if len(seen) == 5:
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "out"
    with pytest.raises(ReplayInterrupted) as err:
        replay_bag(
            sample_bag,
            out,
            ReplayOptions(progress=False, reorder_window=4),
            pipeline=pipeline,
            on_frame=interrupt_after_five,
        )
    s = err.value.summary
    assert s.status == "interrupted" and s.frames > 5  # the held frames came after the 5th
    got = read_raw(out)
    for cam in CAMS:
        ns = cam.rsplit("/", 1)[0]
        assert len(got.get(cam, [])) == len(got.get(f"{ns}/cam_node/decision", []))
    assert Path(s.report_dir, "report.md").is_file()


# ---- nothing to replay -----------------------------------------------------------------------


def test_bag_of_undecodable_frames_fails_with_a_report(sample_bag, tmp_path, capsys):
    """Every frame a bomb or a corrupt JPEG: exit 2, one line, and the report still written."""
    src = read_bag(sample_bag)
    topic = f"{CAMS[0]}/compressed"
    cases = list(hostile_images.hostile_images().values())
    bad = tmp_path / "allbad"
    with bag_io.BagWriter(bad, "mcap") as w:
        for i, (ts, msg) in enumerate(src[topic]):
            msg.data = np.frombuffer(cases[i % len(cases)], np.uint8)
            w.write(topic, bag_io.COMPRESSED_IMAGE, msg, ts)
    out = tmp_path / "out"
    code = main(["replay", str(bad), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("gapcam: error:") and "no frame could be replayed" in last
    assert f"{len(src[topic])} skipped" in last and "Traceback" not in err
    summary = json.loads((Path(f"{out}_report") / "summary.json").read_text())
    assert summary["frames"] == 0 and summary["skipped"] == len(src[topic])
    assert bag_io.read_metadata(out)["message_count"] > 0  # copied images + diagnostics


def test_replay_max_pixels_option(sample_bag, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["replay", str(sample_bag), "--out", str(out), "--max-pixels", "1000"])
    assert code == 2 and "max_pixels 1000" in capsys.readouterr().err


# ---- damaged bags ----------------------------------------------------------------------------


def _truncate_copy(src: Path, dst: Path, keep: float) -> Path:
    shutil.copytree(src, dst)
    (f,) = [p for p in dst.iterdir() if p.suffix in (".mcap", ".db3")]
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])
    return f


def test_truncated_sqlite3_bag_recovers_complete_rows(
    sample_bag_sqlite, tmp_path, pipeline, capsys
):
    bad = tmp_path / "truncated"
    _truncate_copy(sample_bag_sqlite, bad, 0.6)
    out = tmp_path / "out"
    with pytest.raises(GapcamError) as err:
        replay_bag(bad, out, ReplayOptions(progress=False), pipeline=pipeline)
    msg = str(err.value)
    assert "incomplete sqlite3" in capsys.readouterr().err
    got = read_bag(out)
    n = sum(len(v) for k, v in got.items() if k.endswith("/decision"))
    assert n > 10 and f"truncated or corrupt after {n} frames" in msg
    # the same decisions as the intact bag's first frames
    full = replay_bag(
        sample_bag_sqlite, tmp_path / "full", ReplayOptions(progress=False), pipeline=pipeline
    )
    assert full.frames > n
    whole = read_bag(tmp_path / "full")
    for cam in CAMS:
        topic = f"{cam.rsplit('/', 1)[0]}/cam_node/decision"
        mine = [m.decision for _, m in got.get(topic, [])]
        assert mine == [m.decision for _, m in whole[topic]][: len(mine)]


def test_recovered_sqlite_reader_matches_rosbags_on_an_intact_file(sample_bag_sqlite):
    from gapcam.replay.sqlite_recover import RecoveredSqliteReader

    rec = RecoveredSqliteReader(next(sample_bag_sqlite.glob("*.db3")))
    assert rec.problem is None  # every page the header announces is there
    mine = [(c.topic, ts, bytes(d)) for c, ts, d in rec.messages()]
    theirs = [(t, ts, d) for t, items in read_raw(sample_bag_sqlite).items() for ts, d in items]
    assert sorted(mine) == sorted(theirs)
    assert rec.topics["/rear_left/image_raw"].msgtype == "sensor_msgs/msg/Image"
    rec.close()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe\x00garbled\x81\x82", "not UTF-8"),
        (b"rosbag2_bagfile_information: [unclosed\n", "not valid YAML"),
        (b"rosbag2_bagfile_information:\n  storage_identifier: mcap\n", "missing key(s) version"),
        (b"just a string\n", "no 'rosbag2_bagfile_information'"),
    ],
)
def test_garbled_metadata_yaml_is_named_with_the_fix(sample_bag, tmp_path, content, problem):
    bad = tmp_path / "bag"
    shutil.copytree(sample_bag, bad)
    (bad / "metadata.yaml").write_bytes(content)
    with pytest.raises(GapcamError) as err:
        bag_io.open_reader(bad)
    msg = str(err.value)
    assert msg.startswith(f"{bad / 'metadata.yaml'}: cannot be read: {problem}")
    storage = next(bad.glob("*.mcap"))
    assert "pass that file instead" in msg and str(storage) in msg and "\n" not in msg
    reader = bag_io.open_reader(storage)  # the fix it names works
    assert reader.message_count > 0
    reader.close()


def test_signals_stay_absorbed_after_a_stop_only_when_asked():
    """`gapcam replay` exits right after an interrupted replay: a late Ctrl-C must not reach the
    interpreter's default handler (a traceback and exit -2 during shutdown); a library caller
    gets its own handlers back."""
    from gapcam.replay.replay import _StopOnSignal

    before, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        for absorb, expected in ((False, before), (True, signal.SIG_IGN)):
            with _StopOnSignal(absorb_after_stop=absorb) as stop:
                os.kill(os.getpid(), signal.SIGINT)
                assert stop.requested
            assert signal.getsignal(signal.SIGINT) == expected
            signal.signal(signal.SIGINT, before)
        with _StopOnSignal(absorb_after_stop=True):  # no stop asked for: handlers given back
            pass
        assert signal.getsignal(signal.SIGINT) == before
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, before_term)
