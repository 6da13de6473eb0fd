"""gapcam: the ROS-free core of the GAP + CAM lane-change classifier.

Nothing imported from here pulls in rclpy or torch: the core must run on a Jetson next to
TensorRT, in a ROS node and in offline replay alike.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # one place for the version: pyproject.toml
    __version__ = version("gapcam")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
