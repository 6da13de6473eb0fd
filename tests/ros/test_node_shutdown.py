"""cam_node ends cleanly on SIGINT/SIGTERM, however often and whenever they come (exit 0, no
traceback), and a node that cannot start says which one it is.

In a terminal Ctrl-C reaches every process of the group and `ros2 launch` forwards one more: each
node gets two signals a few milliseconds apart. The node runs as `python -m cam_node` over real
DDS (see ros_harness.py); tests/ros/test_colcon_workspace.py does the same with two nodes from a
colcon install tree in one process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cam_node import launch_plan
from ros_harness import REPO, NodeProcess, node_args, scene, wait_for


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for ``signum`` (Linux: SigCgt of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def _signal_twice(proc: subprocess.Popen, signum: int, gap_s: float = 0.03) -> int:
    proc.send_signal(signum)
    time.sleep(gap_s)
    if proc.poll() is None:
        proc.send_signal(signum)
    return proc.wait(timeout=30)


def _clean_exit(node: NodeProcess, rc: int | None) -> None:
    log = node.log()
    assert rc == 0, f"exit {rc}:\n{log[-3000:]}"
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_two_signals_while_processing_exit_0(
    signum: int, start_node, make_camera, tmp_path: Path
) -> None:
    ns = f"/stop_{signum.name.lower()}"
    node = start_node(ns, f"{ns}/image_raw")
    cam = make_camera(node, f"{ns}/image_raw")
    cam.wait_ready()
    cam.send_and_wait(scene(1))
    assert cam.verify() == 1
    for seed in range(2, 6):  # frames in flight when the signals land
        cam.send(scene(seed))
    rc = _signal_twice(node.proc, signum)
    _clean_exit(node, rc)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_two_signals_during_start_up_exit_0(signum: int, tmp_path: Path) -> None:
    """Signals as soon as the executable's handlers are in, while rclpy, OpenCV, ONNX Runtime and
    the model are still loading (what Ctrl-C right after `ros2 launch` does)."""
    node = NodeProcess(
        namespace="/early",
        args=node_args("/early", "/early/image_raw", [], {}),
        log_path=tmp_path / "early.log",
        env=dict(os.environ),
    ).start()
    # SIGTERM is not caught by Python by default: once it is, cam_node.shutdown is installed.
    wait_for(
        lambda: _catches(node.proc.pid, signal.SIGTERM) or node.proc.poll() is not None,
        30,
        "the stop handlers",
    )
    rc = _signal_twice(node.proc, signum, gap_s=0.01)
    node._log.close()
    _clean_exit(node, rc)


def test_node_that_cannot_start_names_its_namespace_and_fails_the_launch(tmp_path: Path) -> None:
    """`backend:=bogus`: exit 2, one FATAL line under `rear_left.cam_node`, and the launch plan
    turns that exit into a launch failure."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "cam_node",
            "--ros-args",
            "-r",
            "__ns:=/rear_left",
            "-p",
            "backend:=bogus",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out, out
    assert "[FATAL]" in lines[0] and "[rear_left.cam_node]" in lines[0] and "bogus" in lines[0]
    node = launch_plan.NodePlan(
        namespace="rear_left", image="/rear_left/image_raw", params_files=()
    )
    error = launch_plan.node_exit_error(node, res.returncode, shutting_down=False)
    assert error is not None and "/rear_left/cam_node exited with code 2" in error
