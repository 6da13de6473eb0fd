"""One camera: ``ros2 launch cam_node cam_node.launch.py image:=/camera/image_raw``.

Thin on purpose: every setting is in config/cam_node.yaml (tested against the node's declared
parameters) and what to start is decided by ``cam_node.launch_plan.cam_node`` (tested directly);
this file declares the arguments and turns the plan into launch actions. A node that cannot start
(bad parameter, missing model: exit 2 after one FATAL line) ends the launch with exit code 1.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from cam_node import launch_plan
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


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
    plan = launch_plan.cam_node(context.launch_configurations, share)
    return [_node(n) for n in plan.nodes]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "image",
                default_value="/camera/image_raw",
                description="camera topic (sensor_msgs/Image; <image>/compressed if compressed)",
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace of the node and its outputs"
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value="",
                description="YAML parameters (empty: the package's config/cam_node.yaml)",
            ),
            DeclareLaunchArgument(
                "input_transport",
                default_value="",
                description="raw or compressed (empty: the params file's, raw by default)",
            ),
            DeclareLaunchArgument(
                "model_path",
                default_value="",
                description=".onnx or TensorRT .plan (empty: the params file's, the shipped model)",
            ),
            DeclareLaunchArgument(
                "backend",
                default_value="",
                description="auto, onnxruntime or tensorrt (empty: the params file's, auto)",
            ),
            OpaqueFunction(function=_actions),
        ]
    )
