"""The environment every process that touches DDS needs on a development or CI machine.

See shared/ROS_PIP.md: discovery restricted to this machine, a writable log directory, a domain id
of its own per test session (parallel runs must not see each other), and a Fast DDS profile with a
large shared-memory segment (without it best-effort images above ~512 KB silently vanish between
processes) plus UDP bound to 127.0.0.1. ``scripts/ros_env.sh`` sets the same for a shell.
On a vehicle the platform's own DDS configuration applies instead; nothing here is used there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cam_node.paths import repo_root


def profile_path() -> Path:
    """``ros2_ws/fastdds_localhost.xml`` of this checkout."""
    root = repo_root()
    if root is None:
        raise RuntimeError("the localhost Fast DDS profile lives in the repository checkout")
    return root / "ros2_ws" / "fastdds_localhost.xml"


def domain_id_for(pid: int | None = None) -> int:
    """A domain id in 1..100 derived from a process id, so concurrent sessions rarely collide."""
    return 1 + (os.getpid() if pid is None else pid) % 100


def localhost_env(
    domain_id: int | None = None,
    log_dir: str | Path | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with the DDS settings above applied."""
    env = dict(os.environ if base is None else base)
    if log_dir is None:
        log_dir = Path(tempfile.gettempdir()) / f"gapcam-ros-log-{os.getuid()}"
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "ROS_LOG_DIR": str(log_dir),
            "ROS_DOMAIN_ID": str(domain_id_for() if domain_id is None else domain_id),
            "FASTDDS_DEFAULT_PROFILES_FILE": str(profile_path()),
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("ROS_LOCALHOST_ONLY", None)  # ignored by Kilted, deprecated since Jazzy
    return env


def apply_localhost_env(**kwargs) -> dict[str, str]:
    """Apply :func:`localhost_env` to this process (before ``rclpy.init``); returns it."""
    env = localhost_env(**kwargs)
    os.environ.update(env)
    return env
