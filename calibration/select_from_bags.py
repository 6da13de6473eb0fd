"""Select INT8 calibration frames from rosbag2 recordings and write a set ``engine-builder`` reads.

Why from bags: the frames that calibrate an INT8 engine should look like what the cameras on the
vehicle see (exposure, weather, time of day), and those are in the recordings. Why not every
frame: at 15-30 Hz consecutive frames are nearly identical, and a calibration set of 300 frames
from one minute of one drive covers one condition only.

How (two passes over the bags, bounded memory):

1. *Spread over time*: every camera's frames are thinned to at most ``--max-candidates`` in total
   by a uniform stride over each camera's messages, so every part of every bag contributes.
2. *Spread over conditions, no near-duplicates*: :func:`gapcam.frame_selection.select_diverse`
   (Lab thumbnail + HSV histogram features, near-duplicate removal, farthest-point sampling)
   picks ``--count`` frames from small copies of the candidates. Both steps are
   :func:`gapcam.frames.diverse_candidates`, the same code as ``gapcam frames --count``.
3. The chosen frames are written at full resolution - the original JPEG bytes of a compressed
   topic, lossless PNG for a raw one - with :func:`~engine_builder.calibration_set.write_manifest`
   (file sha256, the model's preprocessing, the selection method, the source bags and command),
   so ``engine-builder`` verifies and names exactly this data in an engine's metadata.

    python calibration/select_from_bags.py BAG [BAG ...] --out calibration/from_bags --count 256
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from engine_builder.calibration_set import (
    DEDUP_THRESHOLD,
    IMAGES_DIR,
    ImageEntry,
    ImageSet,
    load_image_set,
    write_manifest,
)
from gapcam.errors import GapcamError
from gapcam.frames import Candidate, diverse_candidates, frame_stem, iter_frames, write_frame
from gapcam.model_card import InputSpec, load_card_for_onnx, sha256_file
from gapcam.replay import bag_io
from gapcam.replay.messages import image_from_msg
from gapcam.replay.topics import find_ground_truth
from gapcam.shipped import default_model

REPO = Path(__file__).resolve().parents[1]


def _truth(bag: Path) -> dict[tuple[str, int], str]:
    """Ground-truth labels of a sample bag ((frame_id, stamp) -> label), if it has any."""
    import json

    reader = bag_io.open_reader(bag)
    try:
        topic = find_ground_truth(bag_io.list_topics(reader))
        if topic is None:
            return {}
        store = bag_io.typestore()
        conns = [c for c in reader.connections if c.topic == topic]
        out = {}
        for _, _, raw in reader.messages(connections=conns):
            d = json.loads(store.deserialize_cdr(raw, bag_io.STRING).data)
            out[(str(d["frame_id"]), int(d["stamp_ns"]))] = str(d["label"])
        return out
    finally:
        reader.close()


def select_from_bags(
    bags: Sequence[str | Path],
    out_dir: str | Path,
    spec: InputSpec,
    *,
    count: int,
    topics: Sequence[str] | None = None,
    max_candidates: int = 2000,
    dedup_threshold: float = DEDUP_THRESHOLD,
    name: str | None = None,
    command: str = "",
) -> ImageSet:
    """Choose ``count`` diverse frames from ``bags`` and write them with a manifest to ``out_dir``."""
    bags = [Path(b) for b in bags]
    chosen, _, selection = diverse_candidates(
        bags, topics, count, max_candidates=max_candidates, dedup_threshold=dedup_threshold
    )
    entries = _write_images(bags, chosen, Path(out_dir) / IMAGES_DIR)
    manifest = write_manifest(
        Path(out_dir),
        entries,
        spec,
        name=name or Path(out_dir).name,
        selection=selection,
        source={
            "kind": "rosbag2",
            "bags": [str(b) for b in bags],
            "topics": sorted({c.topic for c in chosen}),
            "command": command,
        },
        description="INT8 calibration frames selected from rosbag2 recordings",
    )
    return load_image_set(manifest, spec)


def _write_images(bags: list[Path], chosen: list[Candidate], images: Path) -> list[ImageEntry]:
    """Second pass: write the chosen frames at full resolution, in bag and stamp order."""
    images.mkdir(parents=True, exist_ok=True)
    for old in images.iterdir():
        if old.is_file():
            old.unlink()
    wanted: dict[int, dict[tuple[str, int], Candidate]] = {}
    for c in chosen:
        wanted.setdefault(c.bag, {})[(c.topic, c.stamp_ns)] = c
    entries: dict[Candidate, ImageEntry] = {}
    for b, keys in wanted.items():
        truth = _truth(bags[b])
        topics = sorted({t for t, _ in keys})
        for topic, msgtype, msg, stamp in iter_frames(bags[b], topics, 1):
            c = keys.get((topic, stamp))
            if c is None or c in entries:
                continue
            image = image_from_msg(msgtype, msg, what=topic)
            path = write_frame(images, frame_stem(b, topic, stamp), msgtype, msg, image)
            label = truth.get((c.frame_id, stamp))
            entries[c] = ImageEntry(path.name, sha256_file(path), label)
    return [entries[c] for c in chosen if c in entries]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Select diverse INT8 calibration frames from rosbag2 bags (mcap/sqlite3)."
    )
    p.add_argument("bags", nargs="+", metavar="BAG")
    p.add_argument("--out", required=True, help="set directory (manifest.json + images/)")
    p.add_argument("--count", type=int, default=256, help="frames to select")
    p.add_argument("--topics", nargs="+", help="camera topics (default: every camera found)")
    p.add_argument(
        "--model", default=str(default_model()), help="model whose preprocessing to record"
    )
    p.add_argument("--max-candidates", type=int, default=2000)
    p.add_argument("--dedup-threshold", type=float, default=DEDUP_THRESHOLD)
    p.add_argument("--name", help="set name (default: the output folder name)")
    a = p.parse_args(argv)
    command = "python calibration/select_from_bags.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])
    )
    try:
        spec = load_card_for_onnx(a.model).input
        s = select_from_bags(
            a.bags,
            a.out,
            spec,
            count=a.count,
            topics=a.topics,
            max_candidates=a.max_candidates,
            dedup_threshold=a.dedup_threshold,
            name=a.name,
            command=command,
        )
    except GapcamError as exc:  # EngineBuilderError is one too: one line, exit 2
        print(f"select_from_bags: error: {exc}", file=sys.stderr)
        return 2
    sel = s.manifest["selection"] if s.manifest else {}
    print(
        f"wrote {s.manifest_path}: {len(s.entries)} frames from {sel.get('candidates')} "
        f"candidates ({sel.get('near_duplicates_removed')} near-duplicates removed), "
        f"set hash {s.hash[:12]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
