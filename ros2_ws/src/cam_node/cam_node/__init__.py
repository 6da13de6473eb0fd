"""ROS 2 node publishing lane-change decisions and CAM overlays from a camera topic.

The node is a thin shell over the ROS-free core (:mod:`gapcam.stream`, :mod:`gapcam.ros_image`):
it converts messages to arrays, hands them to the core on a worker thread and converts the results
back. Everything that can be tested without ROS (the newest-frame slot, statistics) lives in small
modules here that do not import rclpy either.
"""

__version__ = "0.1.0"
