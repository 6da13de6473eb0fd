"""Which topics of a bag are cameras, and what replay calls its outputs.

A bag often holds the same camera twice, raw (``.../image_raw``) and compressed
(``.../image_raw/compressed``, image_transport's naming). Replaying both would run every frame
through the network twice and feed one camera's smoother twice, so cameras are grouped by their
base topic and one transport is chosen per camera (raw by default: it is what the camera saw,
before lossy compression).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gapcam.errors import GapcamError
from gapcam.node_interface import (
    COMPRESSED_SUFFIX,
    DECISION_TOPIC,
    DIAGNOSTICS_TOPIC,
    NODE_NAME,
    OVERLAY_JPEG_TOPIC,
)
from gapcam.replay.bag_io import IMAGE, IMAGE_TYPES, TopicInfo

#: The node's name: replay publishes under ``<camera ns>/cam_node/`` exactly the topics the live
#: node does (``~/decision``, ``~/cam_overlay/compressed``), so one viewer layout fits both, and
#: topics under it are never taken for cameras when a replay output is replayed again.
OUTPUT_NS = NODE_NAME
__all__ = ["DIAGNOSTICS_TOPIC", "OUTPUT_NS", "Camera", "find_ground_truth", "select_cameras"]
GROUND_TRUTH_TOPIC = "/gapcam/ground_truth"
_IMAGE_LEAVES = (
    "image_raw",
    "image_rect",
    "image_rect_color",
    "image_color",
    "image",
    "image_mono",
)


@dataclass(frozen=True)
class Camera:
    """One camera stream selected for replay."""

    topic: str  #: the topic read (raw or compressed)
    msgtype: str
    count: int

    @property
    def base(self) -> str:
        """Topic without the image_transport suffix: the camera's key for smoothing."""
        return base_topic(self.topic)

    @property
    def namespace(self) -> str:
        """``/rear_left`` for ``/rear_left/image_raw`` (the camera's ROS namespace)."""
        return camera_namespace(self.topic)

    @property
    def decision_topic(self) -> str:
        return f"{_join(self.namespace, OUTPUT_NS)}/{DECISION_TOPIC}"

    @property
    def overlay_topic(self) -> str:
        return f"{_join(self.namespace, OUTPUT_NS)}/{OVERLAY_JPEG_TOPIC}"


def base_topic(topic: str) -> str:
    return topic.removesuffix(COMPRESSED_SUFFIX)


def camera_namespace(topic: str) -> str:
    base = base_topic(topic)
    head, _, leaf = base.rpartition("/")
    return (head or "/") if leaf in _IMAGE_LEAVES else base


def _join(ns: str, name: str) -> str:
    return f"{ns.rstrip('/')}/{name}"


def is_replay_output(topic: str) -> bool:
    return f"/{OUTPUT_NS}/" in topic


def select_cameras(
    topics: Sequence[TopicInfo], requested: Sequence[str] | None = None, prefer: str = "raw"
) -> list[Camera]:
    """Image topics to replay: ``requested`` (checked) or every camera found, one per base topic.

    Raises :class:`GapcamError` naming what is missing or of the wrong type, and listing the
    image topics the bag does have, so the user can fix the command in one go.
    """
    by_name = {t.name: t for t in topics}
    images = [t for t in topics if t.msgtype in IMAGE_TYPES and not is_replay_output(t.name)]
    available = ", ".join(t.name for t in images) or "none"
    if requested:
        missing = [r for r in requested if r not in by_name]
        if missing:
            raise GapcamError(
                f"topic(s) not in the bag: {', '.join(missing)}; image topics: {available}"
            )
        wrong = [
            f"{r} ({by_name[r].msgtype})"
            for r in requested
            if by_name[r].msgtype not in IMAGE_TYPES
        ]
        if wrong:
            raise GapcamError(
                f"not an image topic: {', '.join(wrong)}; replay reads sensor_msgs/Image and "
                f"CompressedImage (image topics: {available})"
            )
        chosen = [by_name[r] for r in dict.fromkeys(requested)]
        bases = [base_topic(t.name) for t in chosen]
        if len(set(bases)) != len(bases):
            raise GapcamError(
                "two transports of the same camera requested ("
                + ", ".join(t.name for t in chosen)
                + "); pass one per camera, or the smoothing would see every frame twice"
            )
    else:
        if not images:
            raise GapcamError(
                "no image topics (sensor_msgs/Image or CompressedImage) in the bag; topics: "
                + (", ".join(f"{t.name} ({t.msgtype})" for t in topics) or "none")
            )
        groups: dict[str, list[TopicInfo]] = {}
        for t in images:
            groups.setdefault(base_topic(t.name), []).append(t)
        want_raw = prefer == "raw"
        chosen = [
            sorted(g, key=lambda t: (t.msgtype == IMAGE) != want_raw)[0] for g in groups.values()
        ]
    empty = [t.name for t in chosen if t.count == 0]
    if empty and len(empty) == len(chosen):
        raise GapcamError(f"image topic(s) hold no messages: {', '.join(empty)}")
    return [Camera(t.name, t.msgtype, t.count) for t in sorted(chosen, key=lambda t: t.name)]


def find_ground_truth(topics: Sequence[TopicInfo], requested: str | None = None) -> str | None:
    """The ground-truth topic (``std_msgs/String`` JSON, see :mod:`gapcam.replay.make_bag`)."""
    names = {t.name: t for t in topics}
    if requested:
        if requested not in names:
            raise GapcamError(f"ground-truth topic {requested} not in the bag")
        return requested
    t = names.get(GROUND_TRUTH_TOPIC)
    return t.name if t is not None and t.msgtype == "std_msgs/msg/String" else None
