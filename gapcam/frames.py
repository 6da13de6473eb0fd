"""Camera frames out of rosbag2 recordings, for labelling (``gapcam frames``) and calibration.

Reads every camera topic the node reads (raw ``sensor_msgs/Image`` in any encoding the node
accepts, or ``CompressedImage``; :func:`gapcam.replay.topics.select_cameras` finds them and
:func:`gapcam.replay.messages.image_from_msg` decodes them with the node's own conversion), and
picks frames either every N-th per camera or as a diverse subset without near-duplicates
(:func:`gapcam.frame_selection.select_diverse`, the calibration selection).

Output is an ImageFolder-ready tree: ``DIR/unlabelled/`` or, with a model, ``DIR/<predicted
class>/`` plus ``DIR/contact_<class>.png`` per class (CAM overlays, so a person only moves the
mistakes), and ``DIR/frames.jsonl`` (bag, topic, stamp, file, and the prediction) so every label
can be traced back to its drive. Compressed JPEG frames keep their recorded bytes; raw frames are
written as lossless PNG.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from gapcam.errors import GapcamError
from gapcam.frame_selection import DEDUP_THRESHOLD, Selection, select_diverse
from gapcam.imageio import DEFAULT_MAX_PIXELS
from gapcam.replay import bag_io
from gapcam.replay.messages import image_from_msg
from gapcam.replay.topics import select_cameras

#: Folder of the frames when no model pre-sorts them.
UNLABELLED = "unlabelled"
#: Trace of every written frame (bag, topic, stamp, file, prediction); JSON lines.
MANIFEST = "frames.jsonl"
#: Width of the copies the selection features are computed from (frame_features works at 64x64).
THUMB_WIDTH = 128


@dataclass(frozen=True)
class Candidate:
    bag: int  #: index into the bag list
    topic: str
    stamp_ns: int
    frame_id: str


def camera_topics(bag: Path, topics: Sequence[str] | None) -> list[Any]:
    """The camera topics of ``bag`` (all, or those named), with their message counts."""
    reader = bag_io.open_reader(bag)
    try:
        return select_cameras(bag_io.list_topics(reader), topics)
    finally:
        reader.close()


def iter_frames(
    bag: Path, topics: Sequence[str] | None, stride: int = 1
) -> Iterator[tuple[str, str, Any, int]]:
    """(topic, msgtype, message, stamp_ns) of every ``stride``-th frame of each camera."""
    reader = bag_io.open_reader(bag)
    try:
        types = {c.topic: c.msgtype for c in select_cameras(bag_io.list_topics(reader), topics)}
        store = bag_io.typestore()
        seen = dict.fromkeys(types, 0)
        conns = [c for c in reader.connections if c.topic in types]
        for conn, ts, raw in bag_io.iter_messages(reader, conns):
            k = seen[conn.topic]
            seen[conn.topic] += 1
            if k % stride:
                continue
            msg = store.deserialize_cdr(raw, types[conn.topic])
            yield conn.topic, types[conn.topic], msg, bag_io.stamp_ns(msg.header) or ts
    finally:
        reader.close()


def diverse_candidates(
    bags: Sequence[Path],
    topics: Sequence[str] | None,
    count: int,
    *,
    max_candidates: int = 2000,
    dedup_threshold: float = DEDUP_THRESHOLD,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[Candidate], Selection, dict[str, Any]]:
    """Choose ``count`` diverse frames from ``bags``: returns (chosen candidates in bag and stamp
    order, the selection, what was done for a manifest).

    Two steps, bounded memory: every camera is thinned by one uniform stride to at most
    ``max_candidates`` frames in total (every part of every bag contributes), then
    :func:`select_diverse` picks from small copies of those.
    """
    if count <= 0:
        raise GapcamError("--count must be positive")
    total = sum(c.count for bag in bags for c in camera_topics(bag, topics))
    stride = max(1, -(-total // max_candidates))  # the same stride for every camera and bag
    candidates: list[Candidate] = []
    thumbs: list[np.ndarray] = []
    bar = tqdm(total=total // stride, desc="scan", unit="frame", disable=not progress)
    for b, bag in enumerate(bags):
        for topic, msgtype, msg, stamp in iter_frames(bag, topics, stride):
            bar.update(1)
            try:
                image = image_from_msg(msgtype, msg, what=topic, max_pixels=max_pixels)
            except GapcamError:
                continue  # a broken frame is no material
            h, w = image.shape[:2]
            size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
            thumbs.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            candidates.append(Candidate(b, topic, stamp, msg.header.frame_id))
    bar.close()
    if not candidates:
        raise GapcamError("no decodable camera frames in " + ", ".join(map(str, bags)))
    selection = select_diverse(thumbs, count, dedup_threshold=dedup_threshold)
    chosen = sorted(selection.indices, key=lambda i: (candidates[i].bag, candidates[i].stamp_ns))
    info = {
        **selection.method,
        "temporal_thinning": f"every {stride}. frame of each camera (<= {max_candidates})",
        "frames_in_bags": total,
    }
    return [candidates[i] for i in chosen], selection, info


def frame_stem(bag_index: int, topic: str, stamp_ns: int) -> str:
    return f"bag{bag_index}_{topic.strip('/').replace('/', '_')}_{stamp_ns}"


def write_frame(folder: Path, stem: str, msgtype: str, msg: Any, image: np.ndarray) -> Path:
    """The recorded JPEG bytes of a compressed frame, a lossless PNG of any other."""
    folder.mkdir(parents=True, exist_ok=True)
    if msgtype == bag_io.COMPRESSED_IMAGE and bytes(msg.data[:2]) == b"\xff\xd8":
        path = folder / f"{stem}.jpg"
        path.write_bytes(bytes(msg.data))
    else:
        path = folder / f"{stem}.png"
        if not cv2.imwrite(str(path), image):
            raise GapcamError(f"{path}: could not write the frame")
    return path


def extract_frames(
    bags: Sequence[str | Path],
    out_dir: str | Path,
    *,
    every: int | None = None,
    count: int | None = None,
    topics: Sequence[str] | None = None,
    model: str | Path | None = None,
    backend: str = "auto",
    max_candidates: int = 2000,
    sheet_size: int = 48,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """Write frames of ``bags`` into ``out_dir`` (see the module docstring); returns a summary
    (frames per folder, manifest path, contact sheets)."""
    if (every is None) == (count is None):
        raise GapcamError("give exactly one of --every N or --count N")
    if every is not None and every <= 0:
        raise GapcamError("--every must be positive")
    bag_paths = [Path(b) for b in bags]
    for b in bag_paths:
        if not b.exists():
            raise GapcamError(f"{b}: bag not found")
    out = Path(out_dir)
    if (out / MANIFEST).exists():
        raise GapcamError(
            f"{out}: already holds extracted frames ({MANIFEST}); choose a new --out folder"
        )
    pipe = None
    if model is not None:
        from gapcam.pipeline import Pipeline

        pipe = Pipeline.from_model(model, backend)
    selection_info: dict[str, Any]
    if count is not None:
        chosen, _, selection_info = diverse_candidates(
            bag_paths,
            topics,
            count,
            max_candidates=max_candidates,
            progress=progress,
            max_pixels=max_pixels,
        )
        wanted = {(c.bag, c.topic, c.stamp_ns) for c in chosen}
        stride = 1
    else:
        wanted = None
        stride = int(every)
        selection_info = {"method": f"every {every}. frame of each camera"}
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    sheets: dict[str, list[tuple[np.ndarray, str]]] = {}
    bar = tqdm(desc="frames", unit="frame", disable=not progress, total=len(wanted or ()) or None)
    for b, bag in enumerate(bag_paths):
        for topic, msgtype, msg, stamp in iter_frames(bag, topics, stride):
            if wanted is not None and (b, topic, stamp) not in wanted:
                continue
            try:
                image = image_from_msg(msgtype, msg, what=topic, max_pixels=max_pixels)
            except GapcamError as exc:
                bar.write(f"skipped a frame of {topic} at {stamp}: {exc}")
                continue
            rec: dict[str, Any] = {"bag": str(bag), "topic": topic, "stamp_ns": int(stamp)}
            folder = UNLABELLED
            if pipe is not None:
                r = pipe.analyze(image)
                folder = r.raw_decision
                rec["predicted"] = r.raw_decision
                rec["probabilities"] = {k: round(v, 4) for k, v in r.probability_map().items()}
                if len(sheets.setdefault(folder, [])) < sheet_size:
                    sheets[folder].append(
                        (pipe.render(image, r), f"{Path(topic).parent.name} {r.confidence:.2f}")
                    )
            path = write_frame(out / folder, frame_stem(b, topic, stamp), msgtype, msg, image)
            rec["file"] = path.relative_to(out).as_posix()
            records.append(rec)
            bar.update(1)
    bar.close()
    if not records:
        raise GapcamError("no decodable camera frames in " + ", ".join(map(str, bag_paths)))
    with (out / MANIFEST).open("w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    sheet_files = []
    if sheets:
        from gapcam.overlay import contact_sheet

        for cls, tiles in sorted(sheets.items()):
            p = out / f"contact_{cls}.png"
            cv2.imwrite(
                str(p),
                contact_sheet(
                    [t[0] for t in tiles], columns=6, tile_width=224, captions=[t[1] for t in tiles]
                ),
            )
            sheet_files.append(p.name)
    per_folder: dict[str, int] = {}
    for rec in records:
        k = rec["file"].split("/")[0]
        per_folder[k] = per_folder.get(k, 0) + 1
    (out / "frames_selection.json").write_text(
        json.dumps(
            {
                "bags": [str(b) for b in bag_paths],
                "topics": sorted({r["topic"] for r in records}),
                "selection": selection_info,
                "model": str(model) if model else None,
                "model_id": pipe.backend.model_id if pipe else None,
                "frames": per_folder,
            },
            indent=2,
        )
        + "\n"
    )
    return {"frames": per_folder, "manifest": str(out / MANIFEST), "sheets": sheet_files}
