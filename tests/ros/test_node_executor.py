"""cam_node's ``executor`` parameter over real DDS: ``events`` (rclpy's C++ EventsExecutor, what
``auto`` picks here; opt-in) and ``single_threaded`` (the default, which every other module runs).

With ``events`` the behaviour is the same as with rclpy's SingleThreadedExecutor: decisions
equal to the core's in order, the newest-frame policy and its accounting, ``/diagnostics`` from
the timer at its period (wall and sim time), run-time parameters through the parameter services,
and a clean exit on SIGINT/SIGTERM. An earlier try of this executor published nothing (rclpy
9.1's ``spin()`` without a timeout runs no callback, see cam_node/executors.py); every test here
would fail that way.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from cam_node.executors import EXECUTORS, events_available, resolve, spin
from ros_harness import Camera, Diagnostics, scene

from gapcam.errors import GapcamError
from gapcam.node_interface import DIAGNOSTIC_KEYS

NS = "/events_cam"
TOPIC = f"{NS}/image_raw"


@pytest.fixture(scope="module")
def cam(start_node, make_camera) -> Camera:
    node = start_node(NS, TOPIC, executor="events")
    camera = make_camera(node, TOPIC, frame_id="rear_right_camera")
    camera.wait_ready()
    return camera


def test_the_node_runs_the_events_executor(cam: Camera, ros) -> None:
    assert ros.get_parameters(cam.node.name, ["executor"]) == {"executor": "events"}


def test_decisions_match_the_core_in_order(cam: Camera) -> None:
    stamps = [cam.send_and_wait(scene(seed)) for seed in range(4)]
    stamps.append(cam.send(scene(98, size=(1280, 720)), "rgb8"))  # 2.7 MB, shared memory
    d = cam.wait_decision(stamps[-1])
    assert d.header.frame_id == "rear_right_camera"
    assert (d.cam_box.x_offset + d.cam_box.width) <= 1280
    assert cam.verify() == len(stamps)


def test_newest_frame_policy_and_accounting(cam: Camera, diagnostics: Diagnostics) -> None:
    frames = [scene(700 + i, size=(640, 480)) for i in range(4)]
    burst = cam.paced_then_burst(frames, paced=30, burst=10)
    assert burst == sorted(burst), "decisions out of order: a stale frame was processed late"
    cam.verify()
    cam.wait_accounting(diagnostics)


def test_diagnostics_come_from_the_timer_at_its_period(
    cam: Camera, diagnostics: Diagnostics, core
) -> None:
    cam.send_and_wait(scene(800))
    v = diagnostics.latest(cam.node.name)
    assert tuple(v)[: len(DIAGNOSTIC_KEYS)] == DIAGNOSTIC_KEYS
    assert v["model_id"] == core.backend.model_id and v["input_topic"] == TOPIC
    assert v["_hardware_id"] == "rear_right_camera"
    diagnostics.latest(cam.node.name)  # and the next one
    stamps = [t for t, _ in diagnostics.statuses(cam.node.name)]
    gaps = np.diff(stamps[-3:])
    assert len(gaps) == 2 and np.all(np.abs(gaps - 1.0) < 0.25), gaps
    cam.verify()


def test_run_time_parameters_go_through_the_services(cam: Camera, ros) -> None:
    results = ros.set_parameters(cam.node.name, {"overlay.alpha": 0.6})
    assert results[0].successful, results[0].reason
    assert ros.get_parameters(cam.node.name, ["overlay.alpha"]) == {"overlay.alpha": 0.6}
    refused = ros.set_parameters(cam.node.name, {"executor": "single_threaded"})
    assert not refused[0].successful  # read-only: fixed at start-up
    cam.send_and_wait(scene(801))
    cam.verify()


@pytest.mark.parametrize(
    ("executor", "signum"),
    [("events", signal.SIGINT), ("events", signal.SIGTERM), ("single_threaded", signal.SIGINT)],
)
def test_two_signals_while_processing_exit_0(
    executor: str, signum: int, start_node, make_camera, diagnostics: Diagnostics
) -> None:
    ns = f"/{executor}_stop_{signum.name.lower()}"
    node = start_node(ns, f"{ns}/image_raw", executor=executor)
    camera = make_camera(node, f"{ns}/image_raw")
    camera.wait_ready()
    camera.send_and_wait(scene(1))
    assert camera.verify() == 1
    assert diagnostics.latest(node.name)["decisions_out"] == "1"
    assert f"{executor} executor" in node.log()  # the start-up line says which one runs
    for seed in range(2, 6):  # frames in flight when the signals land
        camera.send(scene(seed))
    node.proc.send_signal(signum)
    time.sleep(0.03)
    if node.proc.poll() is None:
        node.proc.send_signal(signum)
    rc = node.proc.wait(timeout=30)
    log = node.log()
    assert rc == 0, f"exit {rc}:\n{log[-3000:]}"
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]


def test_an_unknown_executor_is_one_fatal_line(start_node) -> None:
    node = start_node("/events_bad", "/events_bad/image_raw", executor="threaded")
    assert node.proc.wait(timeout=60) == 2
    fatal = [ln for ln in node.log().splitlines() if "FATAL" in ln]
    assert len(fatal) == 1 and "executor must be one of auto, events, single_threaded" in fatal[0]
    assert "Traceback" not in node.log()


def test_spin_refuses_an_unknown_kind() -> None:
    assert EXECUTORS == ("auto", "events", "single_threaded")
    with pytest.raises(GapcamError, match="executor must be one of"):
        spin(None, "threaded")  # type: ignore[arg-type]


def test_auto_is_events_where_rclpy_has_it() -> None:
    assert events_available()  # the Kilted wheels this project installs ship it
    assert resolve("auto") == "events" and resolve("single_threaded") == "single_threaded"


def test_sim_time_timers_follow_the_clock_topic(start_node, ros, diagnostics) -> None:
    """Bag playback runs the node on ``/clock`` (use_sim_time): the events executor's timers must
    follow ROS time, so the diagnostics stamps are sim time, one sim second apart."""
    from rosgraph_msgs.msg import Clock

    node = start_node("/events_sim", "/events_sim/image_raw", executor="events", use_sim_time=True)
    pub = ros.node.create_publisher(Clock, "/clock", 10)
    sim_ns = 5_000 * 1_000_000_000  # far from wall time: a wall-clock timer would be obvious
    try:
        end = time.monotonic() + 60
        while len(diagnostics.statuses(node.name)) < 4 and time.monotonic() < end:
            node.check_alive()
            sim_ns += 20_000_000  # 20 ms of sim time every 20 ms
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(sim_ns, 1_000_000_000)
            pub.publish(msg)
            time.sleep(0.02)
    finally:
        ros.node.destroy_publisher(pub)
    stamps = [t for t, _ in diagnostics.statuses(node.name)]
    assert len(stamps) >= 4, f"too few diagnostics on sim time: {stamps}"
    assert all(5_000 <= t <= sim_ns / 1e9 for t in stamps), stamps
    # The first status follows the jump from time 0 to 5,000 s whenever the timer sees it; from
    # then on the period holds in sim seconds.
    assert np.all(np.abs(np.diff(stamps[1:]) - 1.0) < 0.25), stamps
