"""Replay throughput and memory on CPU (ONNX Runtime): the issue's two targets, measured.

1. Speed: two 1280x720 cameras at 15 Hz (JPEG, as ``record.yaml`` records them), replayed with
   and without overlays; frames/s and the real-time factor (recorded seconds / wall seconds;
   >= 1 means replay keeps up with the cameras).
2. Memory: a long replay (default 10,000 frames) with overlays; RSS and peak RSS (VmHWM) after
   1,000 and after all frames. Flat memory means the two differ by little.

Input bags are generated cheaply by writing a few pre-encoded frames over and over with
advancing header stamps, so the bench measures replay, not the scene generator.

    python bench/bench_replay.py                       # both parts, prints a table + JSON
    python bench/bench_replay.py --memory-frames 0     # speed only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2

from gapcam.bench import bench_image
from gapcam.replay import bag_io
from gapcam.replay.replay import ReplayOptions, replay_bag

CAMERAS = ("/rear_left/image_raw/compressed", "/rear_right/image_raw/compressed")
EPOCH_NS = 1_700_000_000 * 1_000_000_000


def write_bag(
    path: Path, frames: int, size: tuple[int, int], fps: float, distinct: int = 6
) -> None:
    """``frames`` JPEG frames in total, alternating between the two cameras at ``fps`` each."""
    store = bag_io.typestore()
    jpegs = []
    for i in range(distinct):
        ok, buf = cv2.imencode(".jpg", bench_image(*size, seed=i), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        jpegs.append(buf.reshape(-1))
    period = int(1e9 / fps)
    with bag_io.BagWriter(path, "mcap") as w:
        for k in range(frames):
            i, cam = divmod(k, len(CAMERAS))
            stamp = EPOCH_NS + i * period + cam * period // 2
            sec, nsec = divmod(stamp, 1_000_000_000)
            header = store.types["std_msgs/msg/Header"](
                stamp=store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                frame_id=CAMERAS[cam].split("/")[1],
            )
            msg = store.types[bag_io.COMPRESSED_IMAGE](
                header=header, format="jpeg", data=jpegs[(i + cam) % distinct]
            )
            w.write(CAMERAS[cam], bag_io.COMPRESSED_IMAGE, msg, stamp)


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def speed(args: argparse.Namespace, work: Path) -> list[dict]:
    bag = work / "speed_in"
    write_bag(bag, args.frames, (args.width, args.height), args.fps)
    rows = []
    for overlays in (False, True):
        out = work / f"speed_out_{int(overlays)}"
        s = replay_bag(
            bag,
            out,
            ReplayOptions(overlays=overlays, copy_images=args.copy_images, progress=False),
        )
        rows.append(
            {
                "part": "speed",
                "overlays": overlays,
                "frames": s.frames,
                "size": f"{args.width}x{args.height}",
                "cameras": len(CAMERAS),
                "camera_hz": args.fps,
                "wall_s": s.wall_s,
                "fps": s.fps,
                "realtime_factor": s.realtime_factor,
                "latency_mean_ms": round(
                    sum(c["latency_mean_ms"] for c in s.cameras.values()) / len(s.cameras), 2
                ),
            }
        )
    return rows


def memory(args: argparse.Namespace, work: Path) -> dict:
    bag = work / "memory_in"
    size = (args.memory_width, args.memory_height)
    write_bag(bag, args.memory_frames, size, args.fps)
    marks: dict[int, tuple[int, int]] = {}
    checkpoints = {1000, args.memory_frames}
    count = 0

    def on_frame(_record) -> None:
        nonlocal count
        count += 1
        if count in checkpoints:
            marks[count] = (_status_kb("VmRSS"), _status_kb("VmHWM"))

    start = time.perf_counter()
    s = replay_bag(
        bag,
        work / "memory_out",
        ReplayOptions(copy_images=args.copy_images, progress=False),
        on_frame=on_frame,
    )
    return {
        "part": "memory",
        "frames": s.frames,
        "size": f"{size[0]}x{size[1]}",
        "overlays": True,
        "wall_s": round(time.perf_counter() - start, 1),
        "fps": s.fps,
        "rss_mb": {str(k): round(v[0] / 1024, 1) for k, v in sorted(marks.items())},
        "peak_rss_mb": {str(k): round(v[1] / 1024, 1) for k, v in sorted(marks.items())},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=600, help="speed run: frames of both cameras")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=float, default=15.0, help="rate of each camera")
    p.add_argument("--memory-frames", type=int, default=10_000, help="0 skips the memory run")
    p.add_argument("--memory-width", type=int, default=640)
    p.add_argument("--memory-height", type=int, default=480)
    p.add_argument(
        "--copy-images",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="copy camera topics into the output bag (replay's default)",
    )
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_replay_") as tmp:
        work = Path(tmp)
        results = speed(args, work) if args.frames else []
        if args.memory_frames:
            results.append(memory(args, work))
    for r in results:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
