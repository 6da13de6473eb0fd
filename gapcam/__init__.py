"""gapcam: the ROS-free core of the GAP + CAM lane-change classifier.

Nothing imported from here pulls in rclpy or torch: the core must run on a Jetson next to
TensorRT, in a ROS node and in offline replay alike.
"""

__version__ = "0.1.0"
