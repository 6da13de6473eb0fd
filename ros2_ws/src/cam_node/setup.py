"""ament_python package ``cam_node``: the node, plus the repository's launch files, configs and
shipped model installed to ``share/cam_node`` so that ``ros2 launch cam_node ...`` works.

colcon (and pip) run this with the package directory as the working directory, so the paths are
relative to it; the launch files and the model live at the repository's top level.
"""

from glob import glob

from setuptools import find_packages, setup

package_name = "cam_node"
share = f"share/{package_name}"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (share, ["package.xml"]),
        (f"{share}/config", sorted(glob("config/*.yaml") + glob("config/*.rviz"))),
        (f"{share}/launch", sorted(glob("../../../launch/*.launch.py"))),
        (f"{share}/models", sorted(glob("../../../models/lane_change.*"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gapcam maintainers",
    maintainer_email="gapcam-maintainers@example.com",
    description="Lane-change decision and CAM overlays from a camera topic (thin rclpy node).",
    license="Apache-2.0",
    entry_points={"console_scripts": [f"cam_node = {package_name}.node:main"]},
)
