"""One version for the distribution: pyproject.toml, the ROS packages and the installed metadata."""

from __future__ import annotations

import re
from pathlib import Path

import engine_builder
import gapcam

REPO = Path(__file__).resolve().parent.parent


def test_every_package_carries_the_pyproject_version():
    pyproject = (REPO / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE).group(1)
    assert gapcam.__version__ == version == engine_builder.__version__
    for xml in ("ros2_ws/src/cam_node/package.xml", "ros2_ws/src/gapcam_msgs/package.xml"):
        assert re.search(rf"<version>{re.escape(version)}</version>", (REPO / xml).read_text()), xml
    assert f'version="{version}"' in (REPO / "ros2_ws/src/cam_node/setup.py").read_text()
