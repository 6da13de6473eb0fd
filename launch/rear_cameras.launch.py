"""Left and right rear-side cameras: ``ros2 launch cam_node rear_cameras.launch.py``.

One cam_node per camera in namespaces ``rear_left`` / ``rear_right`` (inputs
``/rear_left/image_raw`` and ``/rear_right/image_raw`` unless ``rear_left_image:=...``), parameters
from config/cam_node.yaml then config/rear_cameras.yaml. ``rviz:=true`` opens
config/rear_cameras.rviz (both overlays, decisions drawn on them); ``record:=true`` runs
``ros2 bag record -s mcap`` on the topics of config/record.yaml, following the remaps.

Thin on purpose: ``cam_node.launch_plan.rear_cameras`` (tested directly) decides what starts. It
refuses with one line, before any node starts, when rviz2 or ``ros2 bag`` is requested but not
installed; a node that cannot start ends the launch with exit code 1.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from cam_node import launch_plan
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

CAMERAS = ("rear_left", "rear_right")


def _node(plan: launch_plan.NodePlan) -> Node:
    def on_exit(event, context):
        error = launch_plan.node_exit_error(plan, event.returncode, context.is_shutdown)
        if error:
            raise RuntimeError(error)  # ros2 launch: one ERROR line, stops the rest, exits 1

    return Node(
        package=launch_plan.PACKAGE,
        executable=launch_plan.EXECUTABLE,
        name=launch_plan.NODE_NAME,
        namespace=plan.namespace,
        parameters=[
            *plan.params_files,
            {k: ParameterValue(v, value_type=str) for k, v in plan.overrides.items()},
        ],
        remappings=plan.remappings,
        output="screen",
        emulate_tty=True,
        on_exit=on_exit,
    )


def _actions(context):
    share = Path(get_package_share_directory(launch_plan.PACKAGE))
    # Raises LaunchRefused (one line, exit 1) before any process starts when a tool is missing.
    plan = launch_plan.rear_cameras(context.launch_configurations, CAMERAS, share)
    actions = [_node(n) for n in plan.nodes]
    if plan.rviz_config:
        actions.append(
            Node(
                package=launch_plan.RVIZ_PACKAGE,
                executable="rviz2",
                arguments=["-d", plan.rviz_config],
            )
        )
    if plan.record_cmd:
        actions.append(ExecuteProcess(cmd=plan.record_cmd, output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("rviz", default_value="false", description="open rviz2"),
        DeclareLaunchArgument("record", default_value="false", description="record an mcap bag"),
        DeclareLaunchArgument("bag", default_value="rear_cameras_bag", description="bag directory"),
        DeclareLaunchArgument(
            "input_transport",
            default_value="",
            description="raw or compressed (empty: the params files', raw by default)",
        ),
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description=".onnx or TensorRT .plan (empty: the shipped ONNX model)",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="",
            description="auto, onnxruntime or tensorrt (empty: the params files', auto)",
        ),
    ]
    for ns in CAMERAS:
        arguments.append(
            DeclareLaunchArgument(
                f"{ns}_image",
                default_value=launch_plan.default_image_topic(ns),
                description=f"{ns} camera topic",
            )
        )
    return LaunchDescription([*arguments, OpaqueFunction(function=_actions)])
