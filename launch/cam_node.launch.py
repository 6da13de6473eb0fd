"""One camera: ``ros2 launch cam_node cam_node.launch.py image:=/camera/image_raw``.

Thin on purpose: every setting is in config/cam_node.yaml (tested against the node's declared
parameters); arguments only choose the topic, namespace and transport, or another params file.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("cam_node"), "config", "cam_node.yaml"])
    image = LaunchConfiguration("image")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "image",
                default_value="/camera/image_raw",
                description="camera topic (sensor_msgs/Image)",
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace of the node and its outputs"
            ),
            DeclareLaunchArgument(
                "input_transport",
                default_value="raw",
                description="raw or compressed (subscribes to <image>/compressed)",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params,
                description="YAML parameters (defaults: config/cam_node.yaml)",
            ),
            Node(
                package="cam_node",
                executable="cam_node",
                name="cam_node",
                namespace=LaunchConfiguration("namespace"),
                parameters=[
                    LaunchConfiguration("params_file"),
                    {"input_transport": LaunchConfiguration("input_transport")},
                ],
                remappings=[("image", image)],
                output="screen",
                emulate_tty=True,
            ),
        ]
    )
