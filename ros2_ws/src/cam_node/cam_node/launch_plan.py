"""What the launch files start, decided by plain functions (tested directly, without ``launch``).

``launch``/``launch_ros`` are not installable on the development machines, so
``launch/*.launch.py`` only declare their arguments and turn the plan made here into launch
actions at launch time: which nodes (namespace, parameter files, remaps, overrides), the rviz2
configuration, the ``ros2 bag record`` command and its topics (from the real remaps), whether a
requested tool is missing (checked before anything starts), and whether a node's exit must fail
the launch. No rclpy, no launch imports here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PACKAGE = "cam_node"
EXECUTABLE = "cam_node"  #: lib/cam_node/cam_node, the console script of setup.py
NODE_NAME = "cam_node"

#: Launch arguments that set the node parameter of the same name; empty keeps the params file's.
PARAMETER_ARGUMENTS = ("input_transport", "model_path", "backend")
#: Every argument of cam_node.launch.py (checked against its DeclareLaunchArgument calls).
CAM_NODE_ARGUMENTS = ("image", "namespace", "params_file", *PARAMETER_ARGUMENTS)
#: Every argument of rear_cameras.launch.py besides ``<camera>_image`` per camera.
REAR_CAMERAS_ARGUMENTS = ("rviz", "record", "bag", *PARAMETER_ARGUMENTS)

RVIZ_PACKAGE = "rviz2"  #: started as ``lib/rviz2/rviz2`` (launch_ros looks it up in the index)
#: ``ros2 bag record -s mcap`` needs the ros2 CLI, its bag verbs and the mcap storage plugin.
RECORD_PACKAGES = ("ros2bag", "rosbag2_storage_mcap")


class LaunchRefused(Exception):
    """A requested tool is missing or an argument is wrong; nothing has been started."""


def image_argument(camera: str) -> str:
    """The launch argument that remaps ``camera``'s image topic (``rear_left_image``)."""
    return f"{camera}_image"


def default_image_topic(camera: str) -> str:
    """The camera topic a namespace reads unless its ``<camera>_image`` argument says otherwise."""
    return f"/{camera}/image_raw"


@dataclass(frozen=True)
class NodePlan:
    """One cam_node process, as ``launch_ros.actions.Node`` starts it."""

    namespace: str  #: "" for the root namespace, else without slashes at the ends ("rear_left")
    image: str  #: the topic the node's relative ``image`` topic is remapped to
    params_files: tuple[str, ...]
    overrides: dict[str, str] = field(default_factory=dict)  #: parameter -> value (strings)

    @property
    def fully_qualified_name(self) -> str:
        return f"/{self.namespace}/{NODE_NAME}" if self.namespace else f"/{NODE_NAME}"

    @property
    def remappings(self) -> list[tuple[str, str]]:
        return [("image", self.image)]

    def ros_args(self) -> list[str]:
        """The command-line arguments of the executable, as ``ros2 launch`` gives them."""
        args = ["--ros-args", "-r", f"__node:={NODE_NAME}"]
        if self.namespace:
            args += ["-r", f"__ns:=/{self.namespace}"]
        for f in self.params_files:
            args += ["--params-file", f]
        for name, value in self.overrides.items():
            args += ["-p", f"{name}:={value}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


@dataclass(frozen=True)
class LaunchPlan:
    nodes: list[NodePlan]
    rviz_config: str | None = None  #: ``rviz2 -d`` this file, when rviz:=true
    record_cmd: list[str] | None = None  #: the ``ros2 bag record`` command, when record:=true


def flag(name: str, value: str) -> bool:
    """A true/false launch argument, read as ``IfCondition`` reads it."""
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise LaunchRefused(f"{name}:={value!r}: expected true or false")


def _namespace(value: str) -> str:
    return value.strip("/")


def _overrides(args: Mapping[str, str]) -> dict[str, str]:
    return {name: args[name] for name in PARAMETER_ARGUMENTS if args.get(name, "")}


def _require(args: Mapping[str, str], names: Sequence[str]) -> None:
    missing = [n for n in names if n not in args]
    if missing:
        raise LaunchRefused(f"launch arguments not declared: {', '.join(missing)}")


def cam_node(args: Mapping[str, str], share: Path) -> LaunchPlan:
    """cam_node.launch.py: one node reading ``image:=``, parameters from ``params_file:=``."""
    _require(args, CAM_NODE_ARGUMENTS)
    params = args["params_file"] or str(share / "config" / "cam_node.yaml")
    node = NodePlan(
        namespace=_namespace(args["namespace"]),
        image=args["image"],
        params_files=(params,),
        overrides=_overrides(args),
    )
    return LaunchPlan(nodes=[node])


def rear_cameras(
    args: Mapping[str, str],
    cameras: Sequence[str],
    share: Path,
) -> LaunchPlan:
    """rear_cameras.launch.py: one node per camera, rviz2 and the recorder on request.

    Raises :class:`LaunchRefused` (one line) when ``rviz:=true`` or ``record:=true`` asks for a
    tool that is not installed, so that the launch stops before any node has started.
    """
    _require(args, [*REAR_CAMERAS_ARGUMENTS, *(image_argument(c) for c in cameras)])
    rviz, record = flag("rviz", args["rviz"]), flag("record", args["record"])
    problem = missing_tools(rviz=rviz, record=record)
    if problem:
        raise LaunchRefused(problem)
    config = share / "config"
    params = (str(config / "cam_node.yaml"), str(config / "rear_cameras.yaml"))
    nodes = [
        NodePlan(
            namespace=camera,
            image=args[image_argument(camera)] or default_image_topic(camera),
            params_files=params,
            overrides=_overrides(args),
        )
        for camera in cameras
    ]
    record_cmd = None
    if record:
        topics = record_topics(nodes, yaml.safe_load((config / "record.yaml").read_text()))
        record_cmd = ["ros2", "bag", "record", "-s", "mcap", "-o", args["bag"], *topics]
    rviz_config = str(config / "rear_cameras.rviz") if rviz else None
    return LaunchPlan(nodes=nodes, rviz_config=rviz_config, record_cmd=record_cmd)


def record_topics(nodes: Sequence[NodePlan], record: Mapping[str, list[str]]) -> list[str]:
    """The topics of config/record.yaml for these nodes, following their real remaps.

    ``{ns}`` in a ``per_camera`` entry is the node's namespace; an entry under the camera's default
    topic (``/{ns}/image_raw/compressed``) follows the topic the node's ``image`` is remapped to
    (``rear_left_image:=/cam/left/image`` records ``/cam/left/image/compressed``).
    """
    topics: list[str] = []
    for node in nodes:
        default = default_image_topic(node.namespace)
        for template in record["per_camera"]:
            topic = template.format(ns=node.namespace)
            if topic == default or topic.startswith(default + "/"):
                topic = node.image.rstrip("/") + topic[len(default) :]
            topics.append(topic)
    topics += list(record.get("global") or [])
    return list(dict.fromkeys(topics))  # each once, in order


def package_installed(name: str) -> bool:
    """Whether ``name`` is in the ament index (what ``launch_ros`` and ``ros2`` look up)."""
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        if (
            Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / name
        ).is_file():
            return True
    return False


def missing_tools(*, rviz: bool, record: bool) -> str | None:
    """One line naming what ``rviz:=true`` / ``record:=true`` need and is not installed.

    Looked up where ``ros2 launch`` looks: the ament index (``AMENT_PREFIX_PATH``) and ``PATH``.
    """
    has = package_installed
    missing = []
    if rviz and not has(RVIZ_PACKAGE):
        missing.append(f"rviz:=true needs {RVIZ_PACKAGE} (apt install ros-$ROS_DISTRO-rviz2)")
    if record:
        lacking = [p for p in RECORD_PACKAGES if not has(p)]
        if shutil.which("ros2") is None:
            lacking.insert(0, "the ros2 command")
        if lacking:
            missing.append(
                f"record:=true needs {', '.join(lacking)} (apt install ros-$ROS_DISTRO-ros2bag"
                " ros-$ROS_DISTRO-rosbag2-storage-mcap)"
            )
    if not missing:
        return None
    return "; ".join(missing) + "; nothing started"


def node_exit_error(node: NodePlan, returncode: int | None, shutting_down: bool) -> str | None:
    """The line that fails the launch when a node ends by itself, or ``None``.

    A node that stops with 0, or while the launch is shutting down (Ctrl-C), is no error; one that
    cannot start (exit 2 after its FATAL line: bad parameter, missing model) or dies must not leave
    the launch running with a camera missing and exit 0.
    """
    if shutting_down or returncode == 0:
        return None
    return (
        f"{node.fully_qualified_name} exited with code {returncode} (see its FATAL/ERROR line "
        "above); stopping the launch"
    )
