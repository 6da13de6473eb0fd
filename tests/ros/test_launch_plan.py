"""cam_node.launch_plan: what the launch files start, tested without `launch` (not on PyPI).

The plans are made from the package's real config directory and the launch files' real defaults
(read from their DeclareLaunchArgument calls); tool checks look at a real ament index and PATH.
"""

from __future__ import annotations

import ast
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml
from cam_node import launch_plan
from cam_node.launch_plan import LaunchRefused, NodePlan

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
SHARE = REPO / "ros2_ws" / "src" / "cam_node"  # laid out like share/cam_node (config/, models/)
RECORD = yaml.safe_load((SHARE / "config" / "record.yaml").read_text())


def _launch_module(name: str) -> ast.Module:
    return ast.parse((LAUNCH / name).read_text())


def cameras() -> tuple[str, ...]:
    for node in ast.walk(_launch_module("rear_cameras.launch.py")):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CAMERAS":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("rear_cameras.launch.py defines no CAMERAS")


def defaults(name: str) -> dict[str, str]:
    """The launch configurations `ros2 launch <name>` starts with when given no argument."""
    out = {}
    for call in ast.walk(_launch_module(name)):
        if not (
            isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument"
        ):
            continue
        default = next(k.value for k in call.keywords if k.arg == "default_value")
        if isinstance(call.args[0], ast.JoinedStr):  # f"{ns}_image", default_image_topic(ns)
            for ns in cameras():
                out[launch_plan.image_argument(ns)] = launch_plan.default_image_topic(ns)
        else:
            out[ast.literal_eval(call.args[0])] = ast.literal_eval(default)
    return out


def _ament_prefix(root: Path, packages: list[str]) -> Path:
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for p in packages:
        (index / p).write_text("")
    return root


@pytest.fixture()
def ros_tools(tmp_path: Path, monkeypatch) -> Path:
    """An ament prefix with rviz2, ros2bag and the mcap plugin registered, `ros2` on PATH."""
    prefix = _ament_prefix(tmp_path / "ros", ["rviz2", "ros2bag", "rosbag2_storage_mcap"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ros2 = bin_dir / "ros2"
    ros2.write_text("#!/bin/sh\n")
    ros2.chmod(ros2.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(prefix), "/nonexistent"]))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return prefix


def test_rear_cameras_starts_one_node_per_camera_with_both_params_files() -> None:
    plan = launch_plan.rear_cameras(defaults("rear_cameras.launch.py"), cameras(), SHARE)
    assert [n.namespace for n in plan.nodes] == ["rear_left", "rear_right"]
    assert [n.fully_qualified_name for n in plan.nodes] == [
        "/rear_left/cam_node",
        "/rear_right/cam_node",
    ]
    for node in plan.nodes:
        assert node.image == f"/{node.namespace}/image_raw"
        assert [Path(f).name for f in node.params_files] == ["cam_node.yaml", "rear_cameras.yaml"]
        assert all(Path(f).is_file() for f in node.params_files)
        assert node.overrides == {}  # empty arguments keep the params files' values
        assert node.remappings == [("image", node.image)]
        rear = yaml.safe_load(Path(node.params_files[1]).read_text())
        assert node.fully_qualified_name in rear  # the per-camera section applies to it
    assert plan.rviz_config is None and plan.record_cmd is None


def test_arguments_reach_the_nodes() -> None:
    args = defaults("rear_cameras.launch.py") | {
        "model_path": "/data/engines/lane_change.fp16.plan",
        "backend": "tensorrt",
        "input_transport": "compressed",
        "rear_right_image": "/cam/right/image",
    }
    left, right = launch_plan.rear_cameras(args, cameras(), SHARE).nodes
    want = {
        "input_transport": "compressed",
        "model_path": "/data/engines/lane_change.fp16.plan",
        "backend": "tensorrt",
    }
    assert left.overrides == want and right.overrides == want
    assert (left.image, right.image) == ("/rear_left/image_raw", "/cam/right/image")
    assert right.ros_args() == [
        "--ros-args",
        "-r",
        "__node:=cam_node",
        "-r",
        "__ns:=/rear_right",
        "--params-file",
        right.params_files[0],
        "--params-file",
        right.params_files[1],
        "-p",
        "input_transport:=compressed",
        "-p",
        "model_path:=/data/engines/lane_change.fp16.plan",
        "-p",
        "backend:=tensorrt",
        "-r",
        "image:=/cam/right/image",
    ]


def test_cam_node_launch_one_node_with_its_arguments() -> None:
    args = defaults("cam_node.launch.py")
    (node,) = launch_plan.cam_node(args, SHARE).nodes
    assert node == NodePlan(
        namespace="",
        image="/camera/image_raw",
        params_files=(str(SHARE / "config" / "cam_node.yaml"),),
    )
    assert node.fully_qualified_name == "/cam_node"
    args |= {"namespace": "/front/", "params_file": "/tmp/p.yaml", "backend": "onnxruntime"}
    (node,) = launch_plan.cam_node(args, SHARE).nodes
    assert node.namespace == "front" and node.params_files == ("/tmp/p.yaml",)
    assert node.overrides == {"backend": "onnxruntime"}
    assert node.ros_args()[3:5] == ["-r", "__ns:=/front"]


def test_record_follows_the_real_remaps(ros_tools: Path) -> None:
    args = defaults("rear_cameras.launch.py") | {
        "record": "true",
        "rear_left_image": "/cam/left/image",
        "bag": "drive1",
    }
    plan = launch_plan.rear_cameras(args, cameras(), SHARE)
    cmd = plan.record_cmd
    assert cmd[:7] == ["ros2", "bag", "record", "-s", "mcap", "-o", "drive1"]
    topics = cmd[7:]
    assert "/cam/left/image/compressed" in topics
    assert "/rear_left/image_raw/compressed" not in topics  # not what that node reads
    assert "/rear_right/image_raw/compressed" in topics  # default remap
    for ns in cameras():
        assert f"/{ns}/cam_node/decision" in topics
        assert f"/{ns}/cam_node/cam_overlay/compressed" in topics
    assert topics[-1] == "/diagnostics" and len(topics) == len(set(topics))
    # Same topics as record.yaml gives the standalone recorder when nothing is remapped.
    plain = launch_plan.record_topics(
        launch_plan.rear_cameras(defaults("rear_cameras.launch.py"), cameras(), SHARE).nodes,
        RECORD,
    )
    assert (
        plain
        == [t.format(ns=ns) for ns in cameras() for t in RECORD["per_camera"]] + RECORD["global"]
    )


@pytest.mark.parametrize(
    "request_,needed",
    [({"rviz": "true"}, "rviz2"), ({"record": "true"}, "ros2"), ({"record": "1"}, "ros2bag")],
)
def test_missing_tool_refuses_before_any_node(
    request_: dict, needed: str, tmp_path: Path, monkeypatch
) -> None:
    """An ament index and PATH without rviz2 / `ros2 bag` (as on the development machines)."""
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(_ament_prefix(tmp_path / "ros", ["rclpy"])))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    args = defaults("rear_cameras.launch.py") | request_
    with pytest.raises(LaunchRefused) as err:
        launch_plan.rear_cameras(args, cameras(), SHARE)
    msg = str(err.value)
    assert "\n" not in msg and needed in msg and msg.endswith("nothing started")
    assert "apt install" in msg


def test_tools_found_in_the_ament_index_and_on_path(ros_tools: Path) -> None:
    prefix = ros_tools
    args = defaults("rear_cameras.launch.py") | {"rviz": "true", "record": "true"}
    plan = launch_plan.rear_cameras(args, cameras(), SHARE)
    assert plan.rviz_config == str(SHARE / "config" / "rear_cameras.rviz")
    assert Path(plan.rviz_config).is_file()
    assert plan.record_cmd[0] == "ros2"
    # Without the mcap storage plugin `ros2 bag record -s mcap` would fail after the nodes started.
    (prefix / "share/ament_index/resource_index/packages/rosbag2_storage_mcap").unlink()
    with pytest.raises(LaunchRefused, match="rosbag2_storage_mcap"):
        launch_plan.rear_cameras(args, cameras(), SHARE)


def test_flags_are_read_like_ifcondition() -> None:
    assert launch_plan.flag("rviz", "True") and not launch_plan.flag("rviz", "0")
    with pytest.raises(LaunchRefused, match="rviz:='yes': expected true or false"):
        launch_plan.rear_cameras(
            defaults("rear_cameras.launch.py") | {"rviz": "yes"}, cameras(), SHARE
        )


def test_undeclared_argument_is_named() -> None:
    args = defaults("rear_cameras.launch.py")
    del args["rear_right_image"]
    with pytest.raises(LaunchRefused, match="not declared: rear_right_image"):
        launch_plan.rear_cameras(args, cameras(), SHARE)


def test_node_exit_fails_the_launch_unless_asked_to_stop() -> None:
    node = launch_plan.rear_cameras(defaults("rear_cameras.launch.py"), cameras(), SHARE).nodes[0]
    error = launch_plan.node_exit_error(node, 2, shutting_down=False)
    assert error is not None and "/rear_left/cam_node exited with code 2" in error
    assert launch_plan.node_exit_error(node, -11, shutting_down=False) is not None
    assert launch_plan.node_exit_error(node, 0, shutting_down=False) is None
    assert launch_plan.node_exit_error(node, -2, shutting_down=True) is None
