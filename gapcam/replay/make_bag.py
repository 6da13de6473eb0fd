"""Synthetic sample bags: two rear-side cameras driving through generated traffic sequences.

Why synthetic: replay, the report, the demo and the live node check all need a bag with known
ground truth and with decisions that *change* (a vehicle approaching, then overtaking); recording
one needs a vehicle. The frames come from :func:`gapcam.synth.generate_sequence`.

Layout of the bag (rosbag2, mcap by default, sqlite3 on request):

- ``/rear_left/image_raw``, ``/rear_right/image_raw``: ``sensor_msgs/Image`` (``bgr8`` by
  default), frame ids ``rear_left_camera`` / ``rear_right_camera``;
- ``/rear_left/image_raw/compressed``, ``/rear_right/image_raw/compressed``:
  ``sensor_msgs/CompressedImage`` (JPEG, image_transport naming and format string);
- ``/gapcam/ground_truth``: ``std_msgs/String``, one JSON object per camera frame:
  ``{"topic", "frame_id", "stamp_ns", "label", "sequence", "seed", "frame", "blocking_box"}``;
  replay matches labels to frames by ``(frame_id, stamp_ns)``.

Header stamps advance at ``fps`` from a fixed epoch (the right camera half a period later, as two
free-running cameras would); each message's bag time is its stamp plus a small transport delay,
like a recorder's receive time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gapcam.errors import GapcamError
from gapcam.replay import bag_io, messages
from gapcam.replay.topics import GROUND_TRUTH_TOPIC

#: 2023-11-14T22:13:20Z: a fixed start so sample bags are byte-for-byte reproducible.
EPOCH_NS = 1_700_000_000 * 1_000_000_000
TRANSPORT_DELAY_NS = 3_000_000
DEFAULT_SEQUENCES = ("approach", "overtake")


@dataclass(frozen=True)
class CameraSpec:
    name: str  #: namespace, e.g. ``rear_left``
    side: str  #: ``left`` / ``right`` (which side the generator draws the adjacent lane on)

    @property
    def raw_topic(self) -> str:
        return f"/{self.name}/image_raw"

    @property
    def compressed_topic(self) -> str:
        return f"{self.raw_topic}/compressed"

    @property
    def frame_id(self) -> str:
        return f"{self.name}_camera"


CAMERAS = (CameraSpec("rear_left", "left"), CameraSpec("rear_right", "right"))


def _frames(
    cam: CameraSpec,
    sequences: Sequence[str],
    frames_per_sequence: int,
    fps: float,
    size: tuple[int, int],
    seed: int,
) -> Iterator[tuple[np.ndarray, dict[str, Any], str, int]]:
    """(image, meta, sequence kind, seed) for one camera, sequence after sequence."""
    from gapcam.synth import SEQUENCE_KINDS, generate_sequence

    unknown = [s for s in sequences if s not in SEQUENCE_KINDS]
    if unknown:
        raise GapcamError(
            f"unknown sequence kind(s) {', '.join(unknown)}; choose from {', '.join(SEQUENCE_KINDS)}"
        )
    for k, kind in enumerate(sequences):
        s = seed + 1000 * k + (0 if cam.side == "left" else 500)
        for image, meta in generate_sequence(
            kind, s, n_frames=frames_per_sequence, fps=fps, side=cam.side, size=size
        ):
            yield image, meta, kind, s


def make_bag(
    out: str | Path,
    *,
    storage: str = "mcap",
    sequences: Sequence[str] = DEFAULT_SEQUENCES,
    frames_per_sequence: int = 60,
    fps: float = 15.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    raw: bool = True,
    compressed: bool = True,
    encoding: str = "bgr8",
    jpeg_quality: int = 90,
    distro: str = bag_io.DEFAULT_DISTRO,
    cameras: Sequence[CameraSpec] = CAMERAS,
) -> dict[str, Any]:
    """Write the sample bag to ``out`` (a new directory); returns what was written."""
    if not 10.0 <= fps <= 30.0:
        raise GapcamError(f"fps {fps} out of range: sample cameras run at 10-30 Hz")
    if not (raw or compressed):
        raise GapcamError("nothing to write: enable raw and/or compressed images")
    if frames_per_sequence < 1 or not sequences:
        raise GapcamError("need at least one sequence with at least one frame")
    period = int(round(1e9 / fps))
    writer = bag_io.BagWriter(out, storage, distro=distro)
    store = writer.store
    labels: dict[str, int] = {}
    frames = 0
    try:
        writer.set_custom_data(
            "gapcam.make_bag",
            {"sequences": list(sequences), "fps": fps, "size": list(size), "seed": seed},
        )
        streams = [_frames(cam, sequences, frames_per_sequence, fps, size, seed) for cam in cameras]
        # cameras in lockstep, so the bag is written in (near) time order like a recording
        for i, step in enumerate(zip(*streams, strict=True)):
            for c, (cam, (image, meta, kind, s)) in enumerate(zip(cameras, step, strict=True)):
                stamp = EPOCH_NS + c * period // 2 + i * period
                bag_t = stamp + TRANSPORT_DELAY_NS
                if raw:
                    msg = messages.raw_image_msg(store, stamp, cam.frame_id, image, encoding)
                    writer.write(cam.raw_topic, bag_io.IMAGE, msg, bag_t)
                if compressed:
                    msg = messages.compressed_image_msg(
                        store, stamp, cam.frame_id, image, jpeg_quality
                    )
                    writer.write(cam.compressed_topic, bag_io.COMPRESSED_IMAGE, msg, bag_t)
                truth = {
                    "topic": cam.raw_topic,
                    "frame_id": cam.frame_id,
                    "stamp_ns": stamp,
                    "label": meta["label"],
                    "sequence": kind,
                    "seed": s,
                    "frame": meta.get("frame", i),
                    "blocking_box": meta.get("blocking_box"),
                }
                text = json.dumps(truth, default=_jsonable)
                writer.write(
                    GROUND_TRUTH_TOPIC, bag_io.STRING, messages.string_msg(store, text), stamp
                )
                labels[meta["label"]] = labels.get(meta["label"], 0) + 1
                frames += 1
    finally:
        writer.close()
    return {
        "path": str(out),
        "storage": storage,
        "frames": frames,
        "cameras": [c.raw_topic for c in cameras],
        "labels": labels,
        "duration_s": frames_per_sequence * len(sequences) / fps,
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
