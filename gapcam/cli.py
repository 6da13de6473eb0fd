"""``gapcam`` command line: data, train, export, cam-threshold, predict, evaluate, bench (+ replay,
make-bag, fleet, compare).

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
from gapcam.cam_threshold import threshold_arg
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

    indices = None
    if a.validation_only:
        from gapcam.labels import LANE_CHANGE_CLASSES
        from gapcam.synth.dataset import class_plan
        from gapcam.training.validation_split import DEFAULT_VAL_FRACTION, validation_indices

        seed = a.seed if a.train_seed is None else a.train_seed
        plan = class_plan(a.n, a.seed)
        indices = validation_indices(
            plan, tuple(sorted(LANE_CHANGE_CLASSES)), seed, DEFAULT_VAL_FRACTION
        )
    out = generate_dataset(
        a.out, a.n, a.seed, size=(a.size, a.size), workers=a.workers, indices=indices
    )
    print(f"wrote {a.n if indices is None else len(indices)} images to {out}")
    return 0


def cmd_cam_threshold(a: argparse.Namespace) -> int:
    from gapcam.cam_threshold import write_cam_threshold
    from gapcam.dataset import scan_folder

    card = write_cam_threshold(a.model, scan_folder(a.data).samples)
    if card is None:
        raise GapcamError(
            f"{a.data}: no 'blocked' images with a ground-truth box (labels.jsonl blocking_box); "
            "the card keeps its threshold"
        )
    m = card.metrics
    print(
        f"cam_threshold {card.cam_threshold:g} written to the card of {a.model}: IoU >= 0.5 on "
        f"{m['cam_threshold_val_iou50']:.4f} of {m['cam_threshold_images']} boxes "
        f"(mean IoU {m['cam_threshold_val_mean_iou']:.4f})"
    )
    return 0


# ---------------------------------------------------------------- train / export (issue 11)
def _floats3(text: str, flag: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise GapcamError(f"{flag} needs three comma-separated numbers r,g,b (got {text!r})")
    return vals  # type: ignore[return-value]


def _input_spec(a: argparse.Namespace, base):  # noqa: ANN001, ANN202 - InputSpec, lazily imported
    """``base`` with the --input-size/--mean/--std/--color-order flags applied."""
    import dataclasses

    changes: dict = {}
    if a.input_size is not None:
        w, _, h = a.input_size.lower().partition("x")
        try:
            changes["width"], changes["height"] = int(w), int(h or w)
        except ValueError:
            raise GapcamError(f"--input-size takes N or WxH (got {a.input_size!r})") from None
        if min(changes["width"], changes["height"]) < 8:
            raise GapcamError("--input-size must be at least 8 pixels")
    if a.mean is not None:
        changes["mean"] = _floats3(a.mean, "--mean")
    if a.std is not None:
        changes["std"] = _floats3(a.std, "--std")
        if min(changes["std"]) <= 0:
            raise GapcamError("--std values must be > 0")
    if a.color_order is not None:
        changes["color_order"] = a.color_order
    return dataclasses.replace(base, **changes)


def cmd_train(a: argparse.Namespace) -> int:
    _need_torch()
    from gapcam.training.architectures import default_input
    from gapcam.training.train import TrainConfig, train

    cfg = TrainConfig(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr if a.lr is not None else (1e-3 if a.pretrained and a.freeze is None else 3e-3),
        seed=a.seed,
        threads=a.threads,
        arch=a.arch,
        pretrained=a.pretrained,
        trainable_blocks=a.freeze,
    )
    spec = _input_spec(a, default_input(a.arch, a.pretrained))
    report = train(
        a.data, a.out, cfg, spec, name=a.name or "lane_change", fallback_class=a.fallback_class
    )
    print(
        f"saved {a.out}: val accuracy {report['val_accuracy']:.4f} "
        f"({report['val_images']} images), {report['wall_time_s']} s"
    )
    if a.export:
        card = _export(a, a.out, a.export)
        print(f"wrote {a.export} and its card ({card.model_id}); self-checks passed")
    return 0


def _export(a: argparse.Namespace, checkpoint: str, out: str, with_features: bool = True):  # noqa: ANN202
    from gapcam.training.export import export_onnx

    metrics = json.loads(Path(a.metrics).read_text()) if getattr(a, "metrics", None) else None
    return export_onnx(
        checkpoint,
        out,
        with_features=with_features,
        metrics=metrics,
        name=a.name,
        fallback_class=a.fallback_class,
    )


def cmd_export(a: argparse.Namespace) -> int:
    _need_torch()
    from gapcam.training.export import export_onnx, load_checkpoint

    spec = None
    if any(v is not None for v in (a.input_size, a.mean, a.std, a.color_order)):
        _, ckpt = load_checkpoint(a.checkpoint)
        from gapcam.training.export import _spec_from

        spec = _input_spec(a, _spec_from(ckpt["input"]))
    if a.metrics and not Path(a.metrics).is_file():
        raise GapcamError(f"{a.metrics}: metrics file not found")
    metrics = json.loads(Path(a.metrics).read_text()) if a.metrics else None
    card = export_onnx(
        a.checkpoint,
        a.out,
        with_features=not a.no_features,
        metrics=metrics,
        name=a.name,
        fallback_class=a.fallback_class,
        spec=spec,
    )
    print(f"wrote {a.out} and its card ({card.model_id}); self-checks passed")
    return 0


def _preprocessing_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--input-size", help=f"N or WxH in pixels ({what})")
    p.add_argument("--mean", help="r,g,b as fractions of 255 (e.g. 0.485,0.456,0.406)")
    p.add_argument("--std", help="r,g,b as fractions of 255 (e.g. 0.229,0.224,0.225)")
    p.add_argument("--color-order", choices=("RGB", "BGR"))
    p.add_argument("--name", help="model name in the card (default: lane_change)")
    p.add_argument(
        "--fallback-class",
        help="class published when confidence is low (default: none, the top-1 is published)",
    )


def _add_train_export_parsers(sub: argparse._SubParsersAction) -> None:
    from gapcam.training_options import ARCHITECTURES

    p = sub.add_parser("train", help="train a GAP classifier on an ImageFolder (seeded)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (.pt)")
    p.add_argument("--arch", choices=ARCHITECTURES, default="small")
    p.add_argument(
        "--pretrained", action="store_true", help="start from ImageNet weights (efficientnet_lite0)"
    )
    p.add_argument(
        "--freeze",
        type=int,
        metavar="N",
        help="train only the last N blocks + head (efficientnet_lite0; 0 = head only)",
    )
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, help="peak learning rate (default 3e-3; 1e-3 fine-tuning)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--export", metavar="ONNX", help="also export to this ONNX (+ card) at the end")
    _preprocessing_args(p, "default: 128 small, 224 efficientnet_lite0")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a checkpoint to ONNX + model card (with self-checks)")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="ONNX path; the card is written beside it")
    p.add_argument("--no-features", action="store_true", help="omit the 'features' output")
    p.add_argument("--metrics", help="metrics.json from `gapcam evaluate` to record in the card")
    _preprocessing_args(p, "default: as trained")
    p.set_defaults(func=cmd_export)


# ---------------------------------------------------------------- end of train / export


# ---------------------------------------------------------------- frames (issue 11)
def cmd_frames(a: argparse.Namespace) -> int:
    from gapcam.frames import extract_frames

    every = a.every
    if every is None and a.count is None:
        every = 15
    res = extract_frames(
        a.bags,
        a.out,
        every=every,
        count=a.count,
        topics=a.topics,
        model=a.model,
        backend=a.backend,
        max_candidates=a.max_candidates,
        max_pixels=a.max_pixels,
    )
    folders = ", ".join(f"{k}: {v}" for k, v in sorted(res["frames"].items()))
    sheets = f"; contact sheets {', '.join(res['sheets'])}" if res["sheets"] else ""
    print(
        f"wrote {sum(res['frames'].values())} frames to {a.out} ({folders}); {res['manifest']}{sheets}"
    )
    return 0


def _add_frames_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "frames", help="camera frames from rosbag2 bags into an ImageFolder tree for labelling"
    )
    p.add_argument("bags", nargs="+", metavar="BAG")
    p.add_argument("--out", required=True, help="output folder (ImageFolder layout)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--every", type=int, metavar="N", help="every N-th frame per camera (15)")
    how.add_argument(
        "--count", type=int, metavar="N", help="N diverse frames, near-duplicates removed"
    )
    p.add_argument("--topics", nargs="+", help="camera topics (default: every camera found)")
    p.add_argument(
        "--model", help="pre-sort into DIR/<predicted class>/ with a contact sheet per class"
    )
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.add_argument("--max-candidates", type=int, default=2000, help="frames scanned for --count")
    add_max_pixels(p)
    p.set_defaults(func=cmd_frames)


# ---------------------------------------------------------------- end of frames


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

    m = evaluate(
        a.data,
        a.model,
        a.out,
        backend=a.backend,
        cam_threshold=a.cam_threshold,
        loc_class=a.loc_class,
    )
    loc = (
        f", cam_pointing {m['cam_pointing']:.4f}, cam_iou50 {m['cam_iou50']:.4f} "
        f"({m['cam_images']} {m['cam_localisation_class']} images)"
        if m["cam_pointing"] is not None
        else ""
    )
    print(f"accuracy {m['accuracy']:.4f} on {m['images']} images{loc}; wrote {a.out}/metrics.json")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from gapcam.bench import NODE_OVERLAY_SCALE, format_bench, run_bench

    res = run_bench(
        a.model,
        width=a.width,
        height=a.height,
        iterations=a.iterations,
        backend=a.backend,
        cam_threshold=a.cam_threshold,
        overlay_scale=NODE_OVERLAY_SCALE if a.overlay_scale is None else a.overlay_scale,
    )
    print(format_bench(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


# ---------------------------------------------------------------- import / card (any GAP model)
def cmd_import(a: argparse.Namespace) -> int:
    from gapcam.onnx_import import import_model, read_labels
    from gapcam.onnx_import.importer import parse_triple

    classes = read_labels(a.labels) if a.labels else [c.strip() for c in a.classes.split(",")]
    res = import_model(
        a.model,
        a.out,
        classes,
        mean=parse_triple(a.mean, "mean"),
        std=parse_triple(a.std, "std"),
        name=a.name,
        color_order=a.color_order,
        fallback_class=a.fallback_class,
        with_features=not a.no_features,
        layout=a.layout,
        output=a.output,
    )
    c = res.checks
    print(
        f"wrote {res.onnx_path} and its card ({res.card.model_id}) in {res.seconds:.1f} s: "
        f"head {res.head.describe()}, {res.card.output.num_classes} classes, CAM "
        f"{res.head.cam_height}x{res.head.cam_width}"
        + (", batch made dynamic" if res.made_batch_dynamic else "")
        + f"; self-checks passed (logits {c['logits_vs_source']:.1e}, GAP identity "
        f"{c['gap_identity']:.1e}, batch of 2 {c['batch_of_2']:.1e})"
    )
    return 0


def cmd_card(a: argparse.Namespace) -> int:
    from gapcam.model_card import load_card_for_onnx

    print(load_card_for_onnx(a.model).describe())
    return 0


def _add_import_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="turn your own ONNX classifier (GAP + linear head) into a gapcam model + card",
        description="Find the GAP + linear head, fuse the CAM (a 1x1 convolution with the "
        "classifier's weights) and write OUT.onnx + OUT.json after self-checks.",
    )
    p.add_argument("model", help="source ONNX model (never modified)")
    p.add_argument("--out", required=True, help="output .onnx; its card is written beside it")
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", help="class names in logit order, comma separated")
    names.add_argument("--labels", help="text file with one class name per line, logit order")
    p.add_argument("--name", help="model name in the card (default: the output file stem)")
    p.add_argument(
        "--mean", required=True, help="r,g,b mean as fractions of 255 (ImageNet: 0.485,0.456,0.406)"
    )
    p.add_argument(
        "--std", required=True, help="r,g,b std as fractions of 255 (ImageNet: 0.229,0.224,0.225)"
    )
    p.add_argument("--color-order", choices=("RGB", "BGR"), default="RGB")
    p.add_argument(
        "--fallback-class",
        help="class published when confidence is low (default: none, the top-1 is published)",
    )
    p.add_argument("--no-features", action="store_true", help="omit the 'features' output")
    p.add_argument(
        "--layout", choices=("NCHW", "NHWC"), help="input layout (default: read from the graph)"
    )
    p.add_argument("--output", help="the classifier output when the model has several")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("card", help="print what a model expects (input, classes, outputs)")
    p.add_argument("model", help="ONNX model with its card beside it")
    p.set_defaults(func=cmd_card)


# ---------------------------------------------------------------------------------------------
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default=str(default_model()), help="ONNX model (card beside it) or .plan"
    )
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    p.add_argument(
        "--cam-threshold",
        type=threshold_arg,
        default=None,
        help="CAM box: keep pixels >= this fraction of the map's maximum (default: the value "
        f"chosen for the model at export, in its card; {DEFAULT_CAM_THRESHOLD} (Zhou et al.) "
        "for a card without one)",
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
    p.add_argument(
        "--validation-only",
        action="store_true",
        help="render only the images that training on this set (--n, --seed) holds out for "
        "validation: what `gapcam cam-threshold` chooses a model's threshold on",
    )
    p.add_argument(
        "--train-seed", type=int, help="the training seed of --validation-only (default: --seed)"
    )
    p.set_defaults(func=cmd_data)

    p = sub.add_parser(
        "cam-threshold",
        help="choose a model's CAM box threshold on validation images and write it to its card",
    )
    p.add_argument("--model", default=str(default_model()), help="ONNX model (card beside it)")
    p.add_argument("--data", required=True, help="labelled validation images (labels.jsonl boxes)")
    p.set_defaults(func=cmd_cam_threshold)

    _add_train_export_parsers(sub)
    _add_frames_parser(sub)

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
    p.add_argument(
        "--loc-class",
        help="class whose CAM is scored against ground-truth boxes (labels.jsonl "
        "'blocking_box'); default: the card's 'localisation_class', else 'blocked' if the model "
        "has it; 'none' to skip",
    )
    _model_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="per-stage timings and pipeline/inference ratio")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument(
        "--overlay-scale",
        type=float,
        default=None,
        help="overlay size relative to the frame (default: the node's overlay.scale, 0.5)",
    )
    _model_args(p)
    p.set_defaults(func=cmd_bench)

    _add_import_commands(sub)
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
