"""``gapcam fleet`` and ``gapcam compare``: argparse sub-commands registered by :mod:`gapcam.cli`.

Exit status of both commands: 0 every bag replayed (or already complete from an earlier run);
1 some bag failed (corrupt, unreadable, no camera, or its worker died twice) - the others are
done and the report names it; 2 a usage error (nothing ran); 130 interrupted by Ctrl-C (every
finished bag's output is complete and valid, a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from gapcam.errors import GapcamError
from gapcam.shipped import default_model

EXIT_CODES = (
    "exit status: 0 all bags replayed (or complete from an earlier run); 1 some bag failed "
    "(named in the report, the others are done); 2 usage error; 130 interrupted (Ctrl-C; "
    "finished bags are valid and a rerun resumes)"
)
RAY_HELP = (
    "run the bags as Ray tasks (pip install 'gapcam[fleet]'): on the cluster at ADDRESS "
    "(e.g. ray://head:10001 or auto), or on a local Ray when no address is given. Put --ray "
    "after the inputs or write --ray=ADDRESS"
)


def _common(p: argparse.ArgumentParser) -> None:
    """Options of both commands: inputs, output, runner, and the replay settings that matter."""
    from gapcam.backends import BACKEND_CHOICES
    from gapcam.replay.bag_io import STORAGES

    p.add_argument("inputs", nargs="+", metavar="IN", help="bags, folders of bags, or bag lists")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--workers", type=int, default=2, help="local worker processes, or local Ray CPUs"
    )
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS", help=RAY_HELP)
    p.add_argument("--force", action="store_true", help="redo bags whose output is complete")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.add_argument(
        "--params",
        action="append",
        metavar="YAML",
        help="node parameter file(s) as for `gapcam replay --params`",
    )
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="image topics (default: all)")
    p.add_argument("--ground-truth", metavar="TOPIC", help="ground-truth topic (std_msgs/String)")
    p.add_argument("--storage", choices=STORAGES, default="mcap", help="output bag storage")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def add_fleet_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``gapcam fleet IN... --out DIR ...``."""
    p = subparsers.add_parser(
        "fleet",
        help="replay many bags in parallel (local processes or Ray): per-bag output + fleet report",
        description=(
            "Replay every bag through the node's pipeline, as `gapcam replay` does, one task per "
            "bag on local worker processes or Ray. Writes DIR/<bag>/replay (+ _report) per bag "
            "and DIR/fleet_report.md + DIR/fleet_summary.json. A second run skips complete bags."
        ),
        epilog=EXIT_CODES,
    )
    _common(p)
    p.add_argument("--model", help="ONNX model with its card (default: the shipped model)")
    p.add_argument(
        "--overlays",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write JPEG CAM overlays into each output bag",
    )
    p.add_argument(
        "--copy-images",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="copy the replayed camera topics into each output bag",
    )
    p.set_defaults(func=cmd_fleet)
    return p


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``gapcam compare IN... --model A --against B --out DIR``."""
    p = subparsers.add_parser(
        "compare",
        help="replay bags with two models; agreement, accuracy and the frames where they differ",
        description=(
            "Replay every bag with model A and model B (e.g. FP32 and its INT8 Q/DQ version) and "
            "report agreement of raw and published decisions, each model's accuracy where the "
            "bags carry ground truth, both timelines, and the disagreeing frames with the two CAM "
            "overlays side by side. Writes DIR/a/, DIR/b/ (fleet outputs), DIR/compare/ (images), "
            "DIR/compare_report.md and DIR/compare_summary.json."
        ),
        epilog=EXIT_CODES,
    )
    _common(p)
    p.add_argument("--model", help="model A (default: the shipped model)")
    p.add_argument("--against", required=True, metavar="MODEL", help="model B")
    p.add_argument(
        "--max-disagreements",
        type=int,
        default=24,
        metavar="N",
        help="disagreeing frames shown per bag (published disagreements first)",
    )
    p.set_defaults(func=cmd_compare)
    return p


def _options(a: argparse.Namespace, overlays: bool = True, copy_images: bool = True):  # noqa: ANN202
    from gapcam.replay.params import load_node_params
    from gapcam.replay.replay import ReplayOptions

    opts = ReplayOptions(
        backend=a.backend,
        topics=a.topics,
        storage=a.storage,
        ground_truth_topic=a.ground_truth,
        overlays=overlays,
        copy_images=copy_images,
        progress=False,
    )
    if a.params:
        opts = load_node_params(a.params, opts)
    return replace(opts, model=None)


def _runner(a: argparse.Namespace):  # noqa: ANN202
    if a.workers < 1:
        raise GapcamError(f"--workers {a.workers}: need at least 1")
    if a.ray is not None:
        from gapcam.fleet.ray_runner import RayRunner

        return RayRunner(a.ray or None, a.workers)
    from gapcam.fleet.local_runner import LocalRunner

    return LocalRunner(a.workers)


def _bags(a: argparse.Namespace):  # noqa: ANN202
    from gapcam.fleet.inputs import discover, name_bags

    return name_bags(discover(a.inputs))


def cmd_fleet(a: argparse.Namespace) -> int:
    from gapcam.fleet.driver import exit_status, run_fleet
    from gapcam.fleet.layout import REPORT_MD
    from gapcam.fleet.models import ModelSource

    bags = _bags(a)
    model = ModelSource.from_path(a.model or default_model())
    opts = _options(a, a.overlays, a.copy_images)
    run = run_fleet(bags, a.out, model, opts, _runner(a), force=a.force, progress=a.progress)
    ok = sum(r["status"] == "ok" for r in run.results)
    frames = sum(r.get("frames") or 0 for r in run.results if r["status"] == "ok")
    print(
        f"{ok} of {len(run.results)} bags replayed ({frames} frames) in {run.wall_s:.1f} s "
        f"with {run.runner}; report: {Path(a.out) / REPORT_MD}"
    )
    for r in run.failed:
        print(f"gapcam fleet: failed: {r['name']} ({r['input']}): {r['reason']}", file=sys.stderr)
    if run.interrupted:
        print(
            "gapcam fleet: interrupted; finished bags are valid, run again to resume",
            file=sys.stderr,
        )
    return exit_status(run)


def cmd_compare(a: argparse.Namespace) -> int:
    from gapcam.fleet.compare import REPORT_MD, run_compare
    from gapcam.fleet.models import ModelSource

    bags = _bags(a)
    model_a = ModelSource.from_path(a.model or default_model())
    model_b = ModelSource.from_path(a.against)
    s = run_compare(
        bags,
        a.out,
        model_a,
        model_b,
        _options(a),
        _runner(a),
        force=a.force,
        progress=a.progress,
        max_frames=a.max_disagreements,
    )

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    print(
        f"compared {s['bags_compared']} of {s['bags']} bags, {s['frames']} frames: agreement "
        f"published {f(s['agreement_published'])}, raw {f(s['agreement_raw'])}; accuracy A "
        f"{f(s['accuracy']['a'])}, B {f(s['accuracy']['b'])}; {s['disagreeing_frames']} "
        f"disagreeing frames; report: {Path(a.out) / REPORT_MD}"
    )
    if s["interrupted"]:
        print("gapcam compare: interrupted; run again to resume", file=sys.stderr)
        return 130
    if s["bags_failed"]:
        for d in s["per_bag"]:
            if d["status"] != "ok":
                print(f"gapcam compare: failed: {d['name']}: {d['reason']}", file=sys.stderr)
        return 1
    return 0
