"""``gapcam`` command line: data, train, export, predict, evaluate, bench (+ replay, make-bag,
fleet, compare).

User mistakes end with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from gapcam.backends import BACKEND_CHOICES
from gapcam.cam import DEFAULT_CAM_THRESHOLD
from gapcam.cli_options import add_max_pixels
from gapcam.errors import GapcamError
from gapcam.shipped import default_model

EXIT_USER_ERROR = 2


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise GapcamError(
            "training and export need PyTorch: pip install 'gapcam[train]' (torch==2.13.0)"
        ) from exc


def cmd_data(a: argparse.Namespace) -> int:
    from gapcam.synth import generate_dataset

    out = generate_dataset(a.out, a.n, a.seed, size=(a.size, a.size), workers=a.workers)
    print(f"wrote {a.n} images to {out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    _need_torch()
    from gapcam.training.train import TrainConfig, train

    cfg = TrainConfig(
        epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, threads=a.threads
    )
    report = train(a.data, a.out, cfg)
    print(
        f"saved {a.out}: val accuracy {report['val_accuracy']:.4f} "
        f"({report['val_images']} images), {report['wall_time_s']} s"
    )
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    _need_torch()
    from gapcam.training.export import export_onnx

    metrics = json.loads(Path(a.metrics).read_text()) if a.metrics else None
    card = export_onnx(a.checkpoint, a.out, with_features=not a.no_features, metrics=metrics)
    print(f"wrote {a.out} and its card ({card.model_id}); self-checks passed")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from gapcam.predict import predict

    written, failed = predict(
        a.inputs,
        a.model,
        a.out,
        backend=a.backend,
        cam_class=a.cam_class,
        cam_threshold=a.cam_threshold,
        max_pixels=a.max_pixels,
    )
    print(f"wrote {written} overlays and {Path(a.out) / 'predictions.jsonl'}")
    if failed:
        print(f"gapcam: error: {failed} image(s) could not be read (see above)", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from gapcam.evaluate import evaluate

    m = evaluate(a.data, a.model, a.out, backend=a.backend, cam_threshold=a.cam_threshold)
    loc = (
        f", cam_pointing {m['cam_pointing']:.4f}, cam_iou50 {m['cam_iou50']:.4f} "
        f"({m['cam_images']} blocked images)"
        if m["cam_pointing"] is not None
        else ""
    )
    print(f"accuracy {m['accuracy']:.4f} on {m['images']} images{loc}; wrote {a.out}/metrics.json")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from gapcam.bench import format_bench, run_bench

    res = run_bench(
        a.model,
        width=a.width,
        height=a.height,
        iterations=a.iterations,
        backend=a.backend,
        cam_threshold=a.cam_threshold,
    )
    print(format_bench(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default=str(default_model()), help="ONNX model (card beside it) or .plan"
    )
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.add_argument(
        "--cam-threshold",
        type=float,
        default=DEFAULT_CAM_THRESHOLD,
        help="CAM box: keep pixels >= this fraction of the map's maximum (Zhou et al.: 0.2)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gapcam",
        description="GAP classifier + Class Activation Maps for lane-change decisions",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="generate a synthetic rear-side camera data set")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=224, help="square image size in pixels")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train the reference network on an ImageFolder")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (.pt)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a checkpoint to ONNX + model card (with self-checks)")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="ONNX path; the card is written beside it")
    p.add_argument("--no-features", action="store_true", help="omit the 'features' output")
    p.add_argument("--metrics", help="metrics.json from `gapcam evaluate` to record in the card")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify images, write CAM overlays + predictions.jsonl")
    p.add_argument("inputs", nargs="+", help="image files or directories")
    p.add_argument("--out", required=True)
    p.add_argument("--cam-class", default="predicted", help="'predicted', 'eigen' or a class name")
    _model_args(p)
    add_max_pixels(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy + CAM localisation on a labelled folder")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    _model_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="per-stage timings and pipeline/inference ratio")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--json", help="also write the figures to this JSON file")
    _model_args(p)
    p.set_defaults(func=cmd_bench)

    _add_replay_commands(sub)
    _add_fleet_commands(sub)
    return parser


def _add_replay_commands(sub: argparse._SubParsersAction) -> None:
    from gapcam.replay.cli import add_make_bag_parser, add_replay_parser

    add_replay_parser(sub)
    add_make_bag_parser(sub)


# ---- fleet replay and model comparison (gapcam.fleet) -------------------------------------------
def _add_fleet_commands(sub: argparse._SubParsersAction) -> None:
    from gapcam.fleet.cli import add_compare_parser, add_fleet_parser

    add_fleet_parser(sub)
    add_compare_parser(sub)


# -------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except GapcamError as exc:
        print(f"gapcam: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("gapcam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
