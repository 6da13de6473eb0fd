"""Left and right rear cameras at once, as rear_cameras.launch.py runs them (one node each, the
parameters of config/cam_node.yaml + config/rear_cameras.yaml)."""

from __future__ import annotations

import time

import pytest
from ros_harness import CONFIG, Camera, Diagnostics, scene

from gapcam.node_settings import DEFAULT_OVERLAY

SIDES = ("rear_left", "rear_right")


@pytest.fixture(scope="module")
def cams(start_node, make_camera) -> dict[str, Camera]:
    files = [CONFIG / "cam_node.yaml", CONFIG / "rear_cameras.yaml"]
    cams = {}
    for side in SIDES:
        node = start_node(f"/{side}", f"/{side}/image_raw", files)
        cams[side] = make_camera(node, f"/{side}/image_raw", frame_id=f"{side}_camera_optical")
    for cam in cams.values():
        cam.wait_ready()
    return cams


def test_both_cameras_at_camera_rate(cams: dict[str, Camera], diagnostics: Diagnostics) -> None:
    frames = {
        side: [scene(10 * k + i, (640, 480)) for i in range(3)] for k, side in enumerate(SIDES)
    }
    before = {side: cam.wait_accounting(diagnostics) for side, cam in cams.items()}
    last = {}
    for i in range(45):  # 1.5 s at 30 Hz, both cameras
        for side, cam in cams.items():
            last[side] = cam.send(frames[side][i % 3])
        time.sleep(1 / 30)
    for side, cam in cams.items():
        cam.wait_decision(last[side])
        n = cam.verify()  # every decision: own stamps, own frame id, own smoother, core values
        # How many are decided is this machine's speed (bench/bench_cam_node.py measures it);
        # each of the 45 frames is decided or counted as superseded, whatever the speed.
        after = cam.wait_accounting(diagnostics)
        assert int(after["frames_in"]) - int(before[side]["frames_in"]) == 45, (side, after)
        assert int(after["decisions_out"]) - int(before[side]["decisions_out"]) == n >= 1
    for side, cam in cams.items():
        v = diagnostics.latest(cam.node.name)
        assert v["_hardware_id"] == f"{side}_camera_optical"
        assert int(v["decisions_out"]) == len(cam.decisions)


def test_rear_cameras_yaml_applies_per_namespace(cams: dict[str, Camera], ros) -> None:
    for cam in cams.values():
        got = ros.get_parameters(cam.node.name, ["threads", "overlay.alpha"])
        assert got == {"threads": 1, "overlay.alpha": DEFAULT_OVERLAY.alpha}
