"""engine-builder: quantise, build, verify, benchmark, inspect and self-test TensorRT engines.

Every user error ends as one line on stderr and a non-zero exit (2; 1 when a model or engine
fails verification), never a traceback: the tool runs in container entrypoints and CI logs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from engine_builder import __version__
from engine_builder.errors import VerificationFailedError
from gapcam.errors import GapcamError

PROG = "engine-builder"


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------- helpers
def _add_thresholds(p: argparse.ArgumentParser, accuracy_drop: float | None = None) -> None:
    from engine_builder.compare import DEFAULT_MIN_AGREEMENT, DEFAULT_MIN_CAM_CORRELATION

    p.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help="minimum top-1 agreement with FP32 (default %(default)s)",
    )
    p.add_argument(
        "--min-cam-corr",
        type=float,
        default=DEFAULT_MIN_CAM_CORRELATION,
        help="minimum mean per-image CAM Pearson correlation (default %(default)s)",
    )
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=accuracy_drop,
        help="maximum accuracy drop in points, when the data has labels (default %(default)s)",
    )


def _thresholds(args: argparse.Namespace):
    from engine_builder.compare import Thresholds

    return Thresholds(args.min_agreement, args.min_cam_corr, args.max_accuracy_drop)


def _card(model: Path):
    from gapcam.model_card import load_card_for_onnx

    return load_card_for_onnx(model)


def _shipped_model() -> Path:
    from engine_builder.selftest import shipped_model

    return shipped_model()


def _is_plan(path: Path) -> bool:
    return path.suffix in (".plan", ".engine", ".trt")


# ---------------------------------------------------------------------------- commands
def cmd_quantize(args: argparse.Namespace) -> int:
    import onnx

    from engine_builder.calibration_set import load_image_set
    from engine_builder.qdq_rules import check_qdq_model, is_qdq_model
    from engine_builder.quantize import qdq_path_for, quantize_model

    if args.check_only:
        model = onnx.load(str(args.model), load_external_data=False)
        if not is_qdq_model(model):
            say(f"{args.model}: no Q/DQ nodes (an FP32 model); nothing to check")
            return 0
        problems = check_qdq_model(model)
        for p in problems:
            say(f"  {p}")
        if problems:
            raise GapcamError(f"{args.model}: {len(problems)} Q/DQ rule violations (listed above)")
        say(f"{args.model}: Q/DQ model follows TensorRT's rules")
        return 0
    card = _card(args.model)
    calib = load_image_set(args.calib, card.input).subset(args.calib_images)
    # Without --val part of --calib is held out (quantize_model says so): a default validation
    # set of the shipped task would be the wrong images for any other model.
    val = load_image_set(args.val, card.input).subset(args.val_images) if args.val else None
    out = args.out or qdq_path_for(args.model)
    result = quantize_model(
        args.model,
        card,
        calib,
        out,
        validation=val,
        method=args.method,
        percentile=args.percentile,
        head=args.head,
        thresholds=_thresholds(args),
        force=args.force,
        say=say,
    )
    for line in result.comparison.lines():
        say(f"  {line}")
    say(f"wrote {result.model_path} (+ {result.model_path.with_suffix('.json').name}, report)")
    if result.failures:
        say(f"WARNING: below thresholds, written because of --force: {'; '.join(result.failures)}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from engine_builder.build import BuildRequest, build_engine
    from engine_builder.trt_api import BuildSettings

    settings = BuildSettings(
        args.precision,
        None,
        min_batch=1,
        opt_batch=args.opt_batch,
        max_batch=args.max_batch,
        workspace_mb=args.workspace_mb,
        calibration_batch=args.calib_batch,
    )
    req = BuildRequest(
        args.model,
        args.precision,
        args.out,
        calib=args.calib,
        calib_cache=args.calib_cache,
        timing_cache=args.timing_cache,
        settings=settings,
        verify=not args.no_verify,
        verify_data=args.data,
        verify_images=args.verify_images,
        reference_onnx=args.onnx,
        thresholds=_thresholds(args),
        force=args.force,
        verbose=args.verbose,
        device=args.device,
        device_calibration=args.device_calibration,
    )
    build_engine(req, say)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from engine_builder.calibration_set import load_image_set
    from engine_builder.verify import verify_onnx, verify_plan

    target: Path = args.target
    if not target.is_file():
        raise GapcamError(f"{target}: no such engine or model file")
    thresholds = _thresholds(args)
    if _is_plan(target):
        from gapcam.backends.plan_metadata import load_plan_metadata

        meta = load_plan_metadata(target)
        spec = meta.card().input
        data = load_image_set(args.data, spec).subset(args.images) if args.data else None
        result = verify_plan(
            target,
            data,
            thresholds,
            metadata=meta,
            onnx_override=args.onnx,
            limit=args.images,
            device=args.device,
            say=say,
        )
    else:
        card = _card(target)
        data = load_image_set(args.data, card.input).subset(args.images) if args.data else None
        result = verify_onnx(target, data, thresholds, onnx_override=args.onnx, limit=args.images)
    say(f"{target.name} vs {Path(result.reference).name} on {result.data['name']}:")
    for line in result.comparison.lines():
        say(f"  {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(thresholds), indent=2) + "\n")
    if not result.passed:
        raise VerificationFailedError(f"{target.name}: FAIL ({'; '.join(result.failures)})")
    say("PASS")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from engine_builder.bench import bench_backend, format_rows
    from gapcam.backends import load_backend

    target: Path = args.target
    if not target.is_file():
        raise GapcamError(f"{target}: no such engine or model file")
    kwargs = {"device": args.device} if _is_plan(target) else {}
    backend = load_backend(target, "auto", **kwargs)
    try:
        say(backend.describe())
        static = getattr(backend, "static_batch", None)
        if static:
            say(
                f"the model has a static batch of {static}: other batch sizes run as {static}-image calls"
            )
        rows = bench_backend(backend, args.batch, iterations=args.iterations, warmup=args.warmup)
    finally:
        backend.close()
    for line in format_rows(rows):
        say(line)
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from engine_builder.inspect_engine import DAMAGED, inspect_plan

    if args.json:
        from gapcam.backends.plan_metadata import load_plan_metadata

        say(json.dumps(load_plan_metadata(args.plan).to_dict(), indent=2))
        return 0
    lines = inspect_plan(args.plan, layers=args.layers, device=args.device)
    for line in lines:
        say(line)
    if lines[-1].startswith(DAMAGED):
        print(f"{PROG}: FAIL: {args.plan}: {lines[-1][len(DAMAGED) + 2 :]}", file=sys.stderr)
        return 1
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from engine_builder.selftest import format_table, run_selftest

    rows, ok = run_selftest(
        args.out,
        model=args.model,
        iterations=args.iterations,
        verify_images=args.verify_images,
        say=say,
    )
    say("")
    for line in format_table(rows):
        say(line)
    if not ok:
        raise VerificationFailedError("selftest: at least one engine failed (see the table)")
    say("selftest PASS")
    return 0


def cmd_ensure(args: argparse.Namespace) -> int:
    from engine_builder.ensure import ensure_engine

    result = ensure_engine(
        args.model,
        args.precision,
        args.out,
        calib=args.calib,
        verify_data=args.data,
        verify=not args.no_verify,
        lock_timeout=args.lock_timeout,
        say=say,
    )
    print(result.plan_path)  # last line: the engine path, for entrypoint scripts
    return 0


def cmd_calib(args: argparse.Namespace) -> int:
    from engine_builder import calibration_set as cs

    if args.calib_cmd == "default":
        card = _card(_shipped_model())
        names = ["calibration", "validation"] if args.only is None else [args.only]
        cs.generate_default_sets(names, card.input, say=say, progress=not args.quiet)
        return 0
    if args.calib_cmd == "select":
        card = _card(args.model)
        image_set = cs.create_set_from_images(
            args.sources, args.out, card.input, count=args.count, dedup_threshold=args.dedup
        )
        sel = (image_set.manifest or {}).get("selection", {})
        say(
            f"{args.out}: {len(image_set.entries)} frames of {sel.get('candidates')} "
            f"({sel.get('near_duplicates_removed')} near-duplicates dropped), "
            f"set hash {image_set.hash[:12]}"
        )
        return 0
    if args.calib_cmd == "check":
        card = _card(args.model)
        image_set = cs.load_image_set(args.set, card.input)
        say(
            f"{args.set}: {len(image_set.entries)} images match their manifest, "
            f"set hash {image_set.hash}"
        )
        return 0
    if args.calib_cmd == "cache":
        from engine_builder.entropy_cache import scales_from_amax, write_cache
        from engine_builder.quantize import activation_ranges
        from engine_builder.trt_api import calibration_cache_version_code, parse_version

        card = _card(args.model)
        image_set = cs.load_image_set(args.set, card.input).subset(args.images)
        amax = activation_ranges(
            args.model, card, image_set, method=args.method, percentile=args.percentile, say=say
        )
        code = calibration_cache_version_code(parse_version(args.trt_version))
        path = write_cache(args.out, scales_from_amax(amax), code)
        say(f"wrote {path}: {len(amax)} tensors, TRT-{code}-EntropyCalibration2")
        return 0
    raise GapcamError(f"unknown calib command {args.calib_cmd!r}")


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from engine_builder.calibration_set import DEFAULT_CALIBRATION_SET

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("quantize", help="FP32 ONNX -> Q/DQ INT8 ONNX with an accuracy report (CPU)")
    p.add_argument("model", type=Path)
    p.add_argument("--calib", type=Path, default=DEFAULT_CALIBRATION_SET, help="calibration set")
    p.add_argument(
        "--val", type=Path, help="validation set (default: every 5th --calib image held out)"
    )
    p.add_argument("--out", type=Path, help="output (default MODEL.int8.qdq.onnx)")
    p.add_argument("--method", choices=("entropy", "percentile", "max"), default="entropy")
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument(
        "--head",
        choices=("int8", "float"),
        default="int8",
        help="quantise the classifier head (logits Gemm, CAM 1x1 conv) or keep it float",
    )
    p.add_argument("--calib-images", type=int, help="use at most N calibration images")
    p.add_argument("--val-images", type=int, help="use at most N validation images")
    p.add_argument("--force", action="store_true", help="write the model even below thresholds")
    p.add_argument("--check-only", action="store_true", help="only check MODEL's Q/DQ rules")
    _add_thresholds(p, accuracy_drop=0.5)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("build", help="ONNX -> TensorRT .plan + .plan.json (verified)")
    p.add_argument("model", type=Path)
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--calib", type=Path, help="int8: calibration set (IInt8EntropyCalibrator2)")
    g.add_argument("--calib-cache", type=Path, help="int8: TensorRT calibration cache file")
    p.add_argument(
        "--device-calibration",
        action="store_true",
        help="int8 --calib: let TensorRT calibrate on the GPU (default: cache computed on the CPU)",
    )
    p.add_argument("--timing-cache", type=Path, help="timing cache file (default in --out)")
    p.add_argument("--workspace-mb", type=int, default=1024)
    p.add_argument("--opt-batch", type=int, default=2)
    p.add_argument("--max-batch", type=int, default=4)
    p.add_argument("--calib-batch", type=int, default=8)
    p.add_argument("--no-verify", action="store_true", help="publish without verification")
    p.add_argument("--force", action="store_true", help="publish even if verification fails")
    p.add_argument("--data", type=Path, help="verification images (default calibration/validation)")
    p.add_argument("--verify-images", type=int, default=256)
    p.add_argument("--onnx", type=Path, help="FP32 reference for verification")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="TensorRT builder log")
    _add_thresholds(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("verify", help="engine or Q/DQ ONNX vs FP32 ONNX on ONNX Runtime")
    p.add_argument("target", type=Path, help=".plan or .onnx")
    p.add_argument("--data", type=Path, help="image set (default calibration/validation)")
    p.add_argument("--images", type=int, default=256, help="at most N images")
    p.add_argument("--onnx", type=Path, help="FP32 reference (default: from the metadata/card)")
    p.add_argument("--json", type=Path, help="also write the result as JSON")
    p.add_argument("--device", type=int, default=0)
    _add_thresholds(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("bench", help="latency p50/p90/p99 and throughput, batch 1 and 2")
    p.add_argument("target", type=Path, help=".plan or .onnx")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--json", type=Path)
    p.add_argument("--device", type=int, default=0)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("inspect", help="engine metadata (no TensorRT needed) and layers")
    p.add_argument("plan", type=Path)
    p.add_argument("--layers", action="store_true", help="per-layer info (needs TensorRT)")
    p.add_argument("--json", action="store_true", help="print the raw .plan.json")
    p.add_argument("--device", type=int, default=0)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("selftest", help="Jetson: build fp16/int8 from the shipped model, one table")
    p.add_argument("--out", type=Path, default=Path("engines/selftest"))
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--verify-images", type=int, default=256)
    p.set_defaults(func=cmd_selftest)

    p = sub.add_parser("ensure", help="build only when missing or stale (container entrypoint)")
    p.add_argument("model", type=Path)
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--calib", type=Path, help="int8: calibration set")
    p.add_argument("--data", type=Path, help="verification images (default calibration/validation)")
    p.add_argument("--no-verify", action="store_true", help="publish without verification")
    p.add_argument("--lock-timeout", type=float, default=1800.0)
    p.set_defaults(func=cmd_ensure)

    p = sub.add_parser("calib", help="calibration sets: default, select, check, cache")
    csub = p.add_subparsers(dest="calib_cmd", required=True, metavar="CALIB_COMMAND")
    c = csub.add_parser(
        "default", help="(re)generate calibration/default and calibration/validation"
    )
    c.add_argument("--only", choices=("calibration", "validation"))
    c.add_argument("--quiet", action="store_true")
    c = csub.add_parser("select", help="pick diverse frames from image folders into a new set")
    c.add_argument("sources", type=Path, nargs="+")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--count", type=int, default=256)
    c.add_argument("--dedup", type=float, default=0.02, help="near-duplicate distance")
    c.add_argument("--model", type=Path, default=None, help="model whose card gives preprocessing")
    c = csub.add_parser("check", help="verify a set's files against its manifest, print its hash")
    c.add_argument("set", type=Path)
    c.add_argument("--model", type=Path, default=None)
    c = csub.add_parser("cache", help="TensorRT entropy calibration cache computed on the CPU")
    c.add_argument("set", type=Path)
    c.add_argument("--model", type=Path, default=None)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--trt-version", required=True, help="TensorRT version of the target, e.g. 10.3")
    c.add_argument("--method", choices=("entropy", "percentile", "max"), default="entropy")
    c.add_argument("--percentile", type=float, default=99.99)
    c.add_argument("--images", type=int)
    p.set_defaults(func=cmd_calib)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "model", "unset") is None:
        args.model = _shipped_model()
    try:
        return int(args.func(args) or 0)
    except VerificationFailedError as exc:
        print(f"{PROG}: FAIL: {exc}", file=sys.stderr)
        return exc.exit_code
    except GapcamError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
