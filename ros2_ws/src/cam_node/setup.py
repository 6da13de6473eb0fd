"""ament_python package ``cam_node``: the node, plus the repository's launch files, configs and
shipped model installed to ``share/cam_node`` so that ``ros2 launch cam_node ...`` works.

colcon runs this with the package directory as the working directory (``--symlink-install``: its
build directory, where colcon links every data file below), so every data file must be named by a
path inside the package: ``launch`` and ``models`` here are symbolic links to the repository's
top-level ``launch/`` and ``models/`` (a ``../../../launch`` path would make colcon create
``launch/`` and ``models/`` beside the workspace). The package therefore builds from a clone of the
whole repository only; ``ros2_ws/`` copied alone stops here with one line instead of installing
a package without launch files or model.
"""

import os
import sys
from glob import glob

from setuptools import Distribution, find_packages, setup

package_name = "cam_node"
share = f"share/{package_name}"
missing: list[str] = []


def required(*patterns: str) -> list[str]:
    """The files matching ``patterns``; a pattern matching nothing is noted in ``missing``."""
    found = []
    for pattern in patterns:
        matches = sorted(glob(pattern))
        if not matches:
            missing.append(pattern)
        found += matches
    return found


class RefusingDistribution(Distribution):
    """Used when data files are missing: metadata queries still answer (colcon asks before it
    builds), every build or install command stops with one line instead of installing a package
    without launch files or model."""

    def run_commands(self) -> None:
        sys.exit(
            f"cam_node setup.py: no {', '.join(missing)} in {os.getcwd()}: the package builds from"
            " a clone of the whole gapcam repository (launch/ and models/ are at its top level,"
            " linked from ros2_ws/src/cam_node); put the clone in the workspace's src/, not"
            " ros2_ws/ alone"
        )


data_files = [
    ("share/ament_index/resource_index/packages", required(f"resource/{package_name}")),
    (share, required("package.xml")),
    (f"{share}/config", required("config/*.yaml", "config/*.rviz")),
    (f"{share}/launch", required("launch/*.launch.py")),
    (f"{share}/models", required("models/lane_change.onnx", "models/lane_change.json")),
]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=data_files,
    distclass=RefusingDistribution if missing else Distribution,
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gapcam maintainers",
    maintainer_email="gapcam-maintainers@example.com",
    description="Lane-change decision and CAM overlays from a camera topic (thin rclpy node).",
    license="Apache-2.0",
    # The executable ros2 launch runs: lib/cam_node/cam_node (setup.cfg puts scripts there).
    entry_points={"console_scripts": [f"cam_node = {package_name}.__main__:main"]},
)
