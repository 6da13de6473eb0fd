"""cam_node with raw sensor_msgs/Image input over real DDS: decisions, encodings, drops, diagnostics.

One node process serves the whole module; every decision it publishes is checked against the core
(see ros_harness.Camera.verify), in the order the node published them.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from cam_node.os_thread import WORKER_THREAD
from rclpy.qos import ReliabilityPolicy
from ros_harness import Camera, Diagnostics, scene, wait_for
from sensor_msgs.msg import Image

from gapcam.node_interface import DIAGNOSTIC_KEYS
from gapcam.ros_image import SUPPORTED_ENCODINGS, encode_bgr

NS = "/raw_cam"
TOPIC = f"{NS}/image_raw"


@pytest.fixture(scope="module")
def cam(start_node, make_camera) -> Camera:
    node = start_node(NS, TOPIC)
    camera = make_camera(node, TOPIC, frame_id="rear_left_camera")
    camera.wait_ready()
    return camera


def test_decisions_carry_the_input_header_and_match_the_core(cam: Camera) -> None:
    stamps = []
    for seed in range(6):
        stamp = cam.send(scene(seed))
        d = cam.wait_decision(stamp)
        assert (d.header.stamp.sec, d.header.stamp.nanosec) == divmod(stamp, 1_000_000_000)
        assert d.header.frame_id == "rear_left_camera"
        stamps.append(stamp)
    # A full-resolution frame (2.7 MB) crosses processes too (shared-memory transport).
    stamps.append(cam.send(scene(99, size=(1280, 720)), "rgb8"))
    d = cam.wait_decision(stamps[-1])
    assert (d.cam_box.x_offset + d.cam_box.width) <= 1280
    assert cam.verify() == len(stamps)


def test_the_worker_thread_is_named_for_profilers(cam: Camera) -> None:
    """``top -H``, ``perf`` and bench/bench_cam_node.py tell the worker from DDS's threads."""
    names = []
    for task in Path(f"/proc/{cam.node.proc.pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            names.append((task / "comm").read_text().strip())
    # OpenCV starts its pool threads from the worker (the name is inherited): they do its work
    assert names.count(WORKER_THREAD) >= 1, names
    assert any(n.startswith("dds.") for n in names), names  # the bench's "DDS" group


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_every_encoding_with_row_padding(cam: Camera, encoding: str) -> None:
    pad = 0 if encoding == "bgr8" else 8  # padded rows (step > width * bpp) everywhere else
    i = SUPPORTED_ENCODINGS.index(encoding)
    cam.send_and_wait(scene(200 + i), encoding, step_pad=pad)
    assert cam.verify() == 1


def test_camera_rate_always_newest_frame(cam: Camera, diagnostics: Diagnostics) -> None:
    """30 Hz for 1.5 s, then a burst: decisions keep stamp order, none is late, the last frame of
    the burst is always processed, and every frame is either decided or counted as dropped."""
    frames = [scene(300 + i, size=(640, 480)) for i in range(4)]
    before = cam.wait_accounting(diagnostics)
    burst = cam.paced_then_burst(frames, paced=45, burst=12)
    assert burst == sorted(burst), "decisions out of order: a stale frame was processed late"
    cam.verify()
    diag = cam.wait_accounting(diagnostics)
    # How many are decided depends on this machine's speed (bench/ measures that); that none
    # is lost unaccounted does not: each of the 57 is decided or counted as superseded.
    assert int(diag["frames_in"]) - int(before["frames_in"]) == 57, (before, diag)
    decided = int(diag["decisions_out"]) - int(before["decisions_out"])
    superseded = int(diag["drops_superseded"]) - int(before["drops_superseded"])
    assert decided == len(burst) and decided + superseded == 57, (before, diag)
    print(f"rate test: {decided} of 57 decided, {superseded} superseded")


def test_stale_frames_are_dropped_and_counted(cam: Camera, diagnostics: Diagnostics) -> None:
    before = int(diagnostics.latest(cam.node.name)["drops_stale"])
    old = cam.send(scene(400), stamp_ns=time.time_ns() - 60 * 1_000_000_000)  # max_age_s is 30
    # Alone: a newer frame right behind it would replace it in the keep-last-1 reader.
    diag = diagnostics.wait_until(
        cam.node.name, lambda v: int(v["drops_stale"]) == before + 1, 5.0, "the stale drop"
    )
    assert "stale" in diag["last_error"] and diag["_level"] in (1, 2)  # WARN or ERROR
    assert cam.send_and_wait(scene(401)) is not None
    assert cam.decision_for(old) is None
    cam.verify()


def _broken(frame_id: str, **fields) -> Image:
    msg = Image(**fields)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


def test_bad_input_is_reported_and_the_node_stays_alive(
    cam: Camera, diagnostics: Diagnostics
) -> None:
    first = diagnostics.latest(cam.node.name)
    before, since = int(first["drops_decode_error"]), first["_stamp"]
    good = encode_bgr(scene(500), "bgr8")
    bad = [
        _broken("bad", **{**good, "encoding": "32FC1"}),  # unknown encoding
        _broken("bad", **{**good, "data": good["data"][: len(good["data"]) // 2]}),  # truncated
        _broken("bad", **{**good, "step": good["width"]}),  # step too small for bgr8
        _broken("bad", **{**good, "encoding": "yuv422", "width": 7, "step": 14}),  # odd 4:2:2
    ]
    cam.publish_one_by_one(bad, diagnostics)  # a burst would be merged into its newest frame
    cam.send_and_wait(scene(501))  # still deciding
    cam.node.check_alive()
    cam.verify()
    diag = diagnostics.wait_until(
        cam.node.name,
        lambda v: int(v["drops_decode_error"]) == before + len(bad),
        5.0,
        f"{len(bad)} decode errors",
        after=since,  # the status that counted them may have gone out while we were busy
    )
    assert "decode_error" in diag["last_error"] and diag["_level"] in (1, 2)
    assert "decode_error" in diag["_message"]
    # The error was logged, throttled (error_throttle_s = 5): one line for the burst of four.
    lines = [ln for ln in cam.node.log().splitlines() if "bad frame dropped" in ln]
    assert len(lines) == 1, lines
    assert "unsupported image encoding '32FC1'" in lines[0]


def test_diagnostics_at_one_hertz(cam: Camera, diagnostics: Diagnostics, core) -> None:
    mid = None
    frames = [scene(600 + k) for k in range(3)]  # rendered first: rendering is not the camera
    start = time.monotonic()
    for i in range(30):  # 10 Hz for 3 s; the status read is the first after 1.2 s: mid-stream
        cam.send(frames[i % 3])
        if i == 12:
            mid = time.time()
        # paced on the clock, so a slow send on a loaded machine does not lower the rate sent
        time.sleep(max(0.0, start + 0.1 * (i + 1) - time.monotonic()))
    v = diagnostics.latest(cam.node.name, after=mid)
    assert v["backend"] == "onnxruntime" and v["precision"] == "fp32"
    assert v["model_id"] == core.backend.model_id
    assert v["input_topic"] == TOPIC and v["_hardware_id"] == "rear_left_camera"
    for key in (
        "rate_in_hz", "rate_out_hz", "latency_p50_ms", "latency_p99_ms", "age_p50_ms",
        "drops_superseded", "drops_stale", "drops_decode_error", "drops_inference_error",
        "last_error", "last_decision",
    ):  # fmt: skip
        assert key in v, key
    # Rates are counts over the node's 2 s window: structure, not this machine's speed (under
    # load the sender's 0.1 s sleeps run long, so only the upper bound is a fact).
    rate_in, rate_out = float(v["rate_in_hz"]), float(v["rate_out_hz"])
    window_s = 2.0  # StreamStats(window_s=max(2.0, diagnostics.period_s))
    assert (rate_in * window_s).is_integer() and (rate_out * window_s).is_integer(), v
    assert 0.0 < rate_in <= 10.0 + 1 / window_s, v  # never more than was sent (10 Hz)
    assert 0.0 < rate_out <= rate_in + 1 / window_s, v  # a decision needs a frame
    assert tuple(v)[: len(DIAGNOSTIC_KEYS)] == DIAGNOSTIC_KEYS  # the order replay writes too
    assert 0.0 < float(v["latency_p50_ms"]) <= float(v["latency_p99_ms"])
    stamps = [t for t, _ in diagnostics.statuses(cam.node.name)]
    gaps = np.diff(stamps[-4:])
    assert len(gaps) >= 2 and np.all(np.abs(gaps - 1.0) < 0.25), gaps
    cam.verify()


def test_input_qos_is_sensor_data(cam: Camera, ros) -> None:
    infos = wait_for(
        lambda: [
            i for i in ros.node.get_subscriptions_info_by_topic(TOPIC) if i.node_name == "cam_node"
        ],
        5.0,
        "cam_node's subscription info",
    )
    assert infos[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
