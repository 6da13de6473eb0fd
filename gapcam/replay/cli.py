"""``gapcam replay`` and ``gapcam make-bag``: argparse sub-commands registered by :mod:`gapcam.cli`.

Heavy imports (rosbags, ONNX Runtime) happen inside the command functions so that building the
parser - and ``gapcam --help`` - stays instant. User mistakes raise
:class:`~gapcam.errors.GapcamError`; the main CLI prints its one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from gapcam.cli_options import add_max_pixels
from gapcam.errors import GapcamError
from gapcam.shipped import default_model

EXIT_INTERRUPTED = 130


def _default_model() -> str:
    return str(default_model())


def add_replay_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``gapcam replay IN_BAG --out OUT_BAG ...``."""
    from gapcam.backends import BACKEND_CHOICES
    from gapcam.cam_threshold import threshold_arg
    from gapcam.node_settings import DEFAULT_OVERLAY
    from gapcam.replay.bag_io import DEFAULT_DISTRO, DISTROS, STORAGES

    p = subparsers.add_parser(
        "replay",
        help="run a rosbag2 through the node's pipeline: output bag + report",
        description=(
            "Replay camera topics of a rosbag2 (mcap or sqlite3) through the same code as the ROS "
            "node and write decisions, CAM overlays and diagnostics to a new bag, plus a report "
            "in <OUT_BAG>_report/."
        ),
    )
    p.add_argument("in_bag", metavar="IN_BAG", help="rosbag2 directory or .mcap/.db3 file")
    p.add_argument("--out", required=True, metavar="OUT_BAG", help="output bag directory (new)")
    p.add_argument(
        "--topics",
        nargs="+",
        metavar="TOPIC",
        help="image topics to replay (default: every camera found, one transport each)",
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument("--model", help="ONNX model with its card (default: the shipped model)")
    model.add_argument("--engine", help="TensorRT engine (.plan); implies --backend tensorrt")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.add_argument(
        "--params",
        action="append",
        metavar="YAML",
        help="node parameter file(s) (ros__parameters, e.g. cam_node.yaml): smoothing, CAM and "
        "overlay settings as on the robot; repeat to layer files like the launch file does",
    )
    p.add_argument("--storage", choices=STORAGES, default="mcap", help="output storage")
    p.add_argument("--distro", choices=DISTROS, default=DEFAULT_DISTRO, help="message definitions")
    p.add_argument(
        "--prefer",
        choices=("raw", "compressed"),
        default="raw",
        help="transport to read when a camera is recorded both raw and compressed",
    )
    p.add_argument(
        "--copy-images",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="copy the replayed camera topics into the output bag",
    )
    p.add_argument(
        "--overlays",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write JPEG CAM overlays (<ns>/cam_node/cam_overlay/compressed)",
    )
    p.add_argument(
        "--overlay-scale",
        type=float,
        help="overlay size relative to the input, (0, 1] (default: the node's overlay.scale, "
        f"{DEFAULT_OVERLAY.scale})",
    )
    p.add_argument(
        "--cam-threshold",
        type=threshold_arg,
        help="CAM box threshold, a fraction of the map's maximum (default: the node's "
        "cam_threshold: the model card's, 0.2 without one)",
    )
    p.add_argument("--ground-truth", metavar="TOPIC", help="ground-truth topic (std_msgs/String)")
    p.add_argument(
        "--fallback-class",
        help="low-confidence fallback class (default: the card's; '' for none: the top-1)",
    )
    p.add_argument("--reorder-window", type=int, default=8, help="frames held for stamp order")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    add_max_pixels(p, default=None)
    p.add_argument("--no-report", dest="report", action="store_false", help="skip the report")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_replay)
    return p


def add_make_bag_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``gapcam make-bag --out DIR ...``."""
    from gapcam.replay.bag_io import STORAGES
    from gapcam.replay.make_bag import DEFAULT_SEQUENCES

    p = subparsers.add_parser(
        "make-bag",
        help="write a synthetic two-camera sample rosbag2 with ground truth",
        description=(
            "Synthetic rear-left/rear-right camera sequences (raw + compressed) with per-frame "
            "ground truth on /gapcam/ground_truth."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="bag directory to create")
    p.add_argument("--storage", choices=STORAGES, default="mcap")
    p.add_argument(
        "--sequences", nargs="+", default=list(DEFAULT_SEQUENCES), help="generator sequence kinds"
    )
    p.add_argument("--frames", type=int, default=60, help="frames per sequence and camera")
    p.add_argument("--fps", type=float, default=15.0, help="camera rate, 10-30 Hz")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoding", default="bgr8", help="raw image encoding (bgr8, rgb8, mono8, ...)")
    p.add_argument("--raw", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--compressed", action=argparse.BooleanOptionalAction, default=True)
    p.set_defaults(func=cmd_make_bag)
    return p


def cmd_replay(a: argparse.Namespace) -> int:
    from gapcam.replay.params import load_node_params
    from gapcam.replay.replay import ReplayInterrupted, ReplayOptions, replay_bag

    if a.overlay_scale is not None and not 0.0 < a.overlay_scale <= 1.0:
        raise GapcamError(f"--overlay-scale {a.overlay_scale}: must be in (0, 1]")
    backend = a.backend
    if a.engine:
        model = a.engine
        backend = "tensorrt" if backend == "auto" else backend
    else:
        model = a.model or _default_model()
    opts = ReplayOptions(
        model=model,
        backend=backend,
        topics=a.topics,
        prefer=a.prefer,
        storage=a.storage,
        distro=a.distro,
        copy_images=a.copy_images,
        overlays=a.overlays,
        ground_truth_topic=a.ground_truth,
        reorder_window=a.reorder_window,
        report=a.report,
        progress=a.progress and sys.stderr.isatty(),
        max_frames=a.max_frames,
        absorb_signals_after_stop=True,  # the command ends right after an interrupted replay
    )
    if a.params:
        opts = load_node_params(a.params, opts)
    if a.overlay_scale is not None:
        look = replace(opts.settings.overlay, scale=a.overlay_scale)
        opts = replace(opts, settings=replace(opts.settings, overlay=look))
    if a.cam_threshold is not None:
        opts = replace(opts, settings=replace(opts.settings, cam_threshold=a.cam_threshold))
    if a.max_pixels is not None:
        opts = replace(opts, settings=replace(opts.settings, max_pixels=a.max_pixels))
    if a.fallback_class is not None:
        opts = replace(opts, settings=replace(opts.settings, fallback_class=a.fallback_class))
    try:
        s = replay_bag(a.in_bag, a.out, opts)
    except ReplayInterrupted as exc:
        s = exc.summary
        print(
            f"gapcam replay: interrupted after {s.frames} frames; {s.output_bag} is a valid bag "
            f"with those frames" + (f", report in {s.report_dir}" if s.report_dir else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(format_summary(s))
    return 0


def format_summary(s) -> str:  # noqa: ANN001 - ReplaySummary, imported lazily
    cams = ", ".join(f"{c} {v['frames']}" for c, v in s.cameras.items())
    lines = [
        f"replayed {s.frames} frames ({cams}) in {s.wall_s:.1f} s: {s.fps:.1f} frames/s, "
        f"{s.realtime_factor:.2f}x real time ({s.recorded_s:.1f} s recorded)"
        + (f"; {s.skipped} skipped" if s.skipped else ""),
    ]
    if s.accuracy is not None:
        lines.append(f"accuracy against ground truth: {s.accuracy:.4f}")
    if s.ground_truth_note:
        lines.append(s.ground_truth_note)
    lines.append(f"output bag: {s.output_bag}")
    if s.report_dir:
        lines.append(f"report: {Path(s.report_dir) / 'report.md'}")
    return "\n".join(lines)


def cmd_make_bag(a: argparse.Namespace) -> int:
    from gapcam.replay.make_bag import make_bag

    info = make_bag(
        a.out,
        storage=a.storage,
        sequences=a.sequences,
        frames_per_sequence=a.frames,
        fps=a.fps,
        size=(a.width, a.height),
        seed=a.seed,
        raw=a.raw,
        compressed=a.compressed,
        encoding=a.encoding,
    )
    labels = ", ".join(f"{k} {v}" for k, v in sorted(info["labels"].items()))
    print(
        f"wrote {info['path']} ({info['storage']}): {info['frames']} frames from "
        f"{len(info['cameras'])} cameras, {info['duration_s']:.1f} s; labels: {labels}"
    )
    return 0
