"""Fixtures for the cam_node tests over real DDS (see ros_harness.py).

The DDS environment (localhost discovery, a domain id of this test session, the shared-memory
Fast DDS profile, a log directory) is applied to this process at import, before rclpy starts, and
inherited by every node subprocess. The message package must be built first
(`bash scripts/build_msgs.sh .venv`, which `make setup` runs).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import gapcam_msgs.msg  # noqa: F401
except ImportError as exc:  # pragma: no cover - environment problem, explained once
    raise ImportError(
        "gapcam_msgs is not built into this environment: run `bash scripts/build_msgs.sh .venv`"
    ) from exc

from cam_node.ros_env import apply_localhost_env

# Before rclpy creates a participant; the domain id is derived from this pytest process.
_LOG_DIR = Path(tempfile.gettempdir()) / f"gapcam-test-ros-{os.getpid()}"
apply_localhost_env(log_dir=_LOG_DIR)

from ros_harness import (  # noqa: E402 - after the environment is set
    DEFAULT_YAML,
    Camera,
    Diagnostics,
    NodeProcess,
    RosHarness,
    node_args,
)

_ids = itertools.count()


@pytest.fixture(scope="session")
def ros() -> Iterator[RosHarness]:
    harness = RosHarness()
    yield harness
    harness.close()
    shutil.rmtree(_LOG_DIR, ignore_errors=True)  # node output is kept in pytest's tmp dirs


@pytest.fixture(scope="session")
def diagnostics(ros: RosHarness) -> Diagnostics:
    return ros.diagnostics


@pytest.fixture(scope="session")
def core(pipeline):
    """The core pipeline of the shipped model in this process (the reference for decisions)."""
    return pipeline


@pytest.fixture(scope="module")
def start_node(ros: RosHarness, tmp_path_factory) -> Iterator[Callable[..., NodeProcess]]:
    """Factory: start ``python -m cam_node`` (stopped at the end of the module)."""
    started: list[NodeProcess] = []
    logs = tmp_path_factory.mktemp("cam_node_logs")

    def start(
        namespace: str,
        image_topic: str,
        params_files: list[Path] | None = None,
        **overrides: Any,
    ) -> NodeProcess:
        files = [DEFAULT_YAML] if params_files is None else params_files
        # A frame waiting behind a slow CI machine must not be dropped as stale by default.
        overrides.setdefault("max_age_s", 30.0)
        overrides = {k: v for k, v in overrides.items() if v is not None}
        proc = NodeProcess(
            namespace=namespace,
            args=node_args(namespace, image_topic, files, overrides),
            log_path=logs / f"{namespace.strip('/').replace('/', '_')}_{next(_ids)}.log",
            env=dict(os.environ),
        ).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def make_camera(ros: RosHarness, core) -> Callable[..., Camera]:
    def make(node: NodeProcess, topic: str, **kw: Any) -> Camera:
        return Camera(ros=ros, node=node, topic=topic, pipeline=core, **kw)

    return make
