"""Left and right rear-side cameras: ``ros2 launch cam_node rear_cameras.launch.py``.

One cam_node per camera in namespaces ``rear_left`` / ``rear_right`` (inputs
``/rear_left/image_raw`` and ``/rear_right/image_raw`` by default), parameters from
config/cam_node.yaml then config/rear_cameras.yaml. ``rviz:=true`` opens config/rear_cameras.rviz
(both overlays, decisions drawn on them); ``record:=true`` runs ``ros2 bag record -s mcap`` on the
topics listed in config/record.yaml.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

CAMERAS = ("rear_left", "rear_right")


def generate_launch_description() -> LaunchDescription:
    config = Path(get_package_share_directory("cam_node")) / "config"
    params = [str(config / "cam_node.yaml"), str(config / "rear_cameras.yaml")]
    record = yaml.safe_load((config / "record.yaml").read_text())
    topics = [t.format(ns=ns) for ns in CAMERAS for t in record["per_camera"]] + record["global"]

    actions = [
        DeclareLaunchArgument("rviz", default_value="false", description="open rviz2"),
        DeclareLaunchArgument("record", default_value="false", description="record an mcap bag"),
        DeclareLaunchArgument("bag", default_value="rear_cameras_bag", description="bag directory"),
        DeclareLaunchArgument(
            "input_transport", default_value="raw", description="raw or compressed"
        ),
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description=".onnx or TensorRT .plan (empty: the shipped ONNX model)",
        ),
        DeclareLaunchArgument(
            "backend", default_value="auto", description="auto, onnxruntime or tensorrt"
        ),
    ]
    overrides = {
        name: LaunchConfiguration(name) for name in ("input_transport", "model_path", "backend")
    }
    for ns in CAMERAS:
        actions.append(
            DeclareLaunchArgument(
                f"{ns}_image", default_value=f"/{ns}/image_raw", description=f"{ns} camera topic"
            )
        )
        actions.append(
            Node(
                package="cam_node",
                executable="cam_node",
                name="cam_node",
                namespace=ns,
                parameters=[*params, overrides],
                remappings=[("image", LaunchConfiguration(f"{ns}_image"))],
                output="screen",
                emulate_tty=True,
            )
        )
    actions.append(
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", str(config / "rear_cameras.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
        )
    )
    actions.append(
        ExecuteProcess(
            cmd=["ros2", "bag", "record", "-s", "mcap", "-o", LaunchConfiguration("bag"), *topics],
            condition=IfCondition(LaunchConfiguration("record")),
            output="screen",
        )
    )
    return LaunchDescription(actions)
