"""ONNX -> TensorRT plan + ``.plan.json``, verified before it is published.

Precision paths, by TensorRT version (see :class:`engine_builder.trt_api.Capabilities`):

======== ================================ ==========================================
         TensorRT 8.5 - 10.x              TensorRT 11 (strongly typed)
======== ================================ ==========================================
fp32     as parsed                        as parsed
fp16     ``BuilderFlag.FP16``             ONNX converted to fp16 (fp32 IO kept)
int8 Q/DQ ``INT8`` + ``FP16`` flags        Q/DQ graph as is
int8 cal ``IInt8EntropyCalibrator2``      refused: use ``engine-builder quantize``
======== ================================ ==========================================

:func:`build_engine` runs named steps, each a function of its inputs (Polygraphy style):
:func:`resolve_inputs` (card, int8 source, the settings this build uses - a copy, the caller's
are never changed), :func:`choose_calibration` (where the int8 scales come from, decided once),
:func:`parse_network`, :func:`make_calibrator`, :func:`configure_precision`,
:func:`build_serialized`, :func:`describe_plan` (the ``.plan.json``), :func:`verify_candidate`
and :func:`publish`. The plan is written to a temporary file, verified against the FP32 ONNX on
ONNX Runtime, and only then moved into place (``os.replace``) with its metadata; a failing engine
is not published unless ``force``. Builder timing results persist in a timing cache file per
TensorRT version and GPU, so rebuilding the same model on the same device takes seconds instead of
minutes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from engine_builder import trt_api
from engine_builder.calibration_set import ImageSet, load_image_set
from engine_builder.compare import Thresholds
from engine_builder.entropy_cache import read_cache
from engine_builder.errors import EngineBuilderError, VerificationFailedError
from engine_builder.metadata import make_metadata, write_metadata
from engine_builder.qdq_rules import is_qdq_model, require_tensorrt_qdq
from engine_builder.verify import fp32_reference_of_onnx, verify_plan
from gapcam.backends.cuda_context import PrimaryContext, query_runtime_info
from gapcam.backends.plan_metadata import PlanMetadata, RuntimeInfo
from gapcam.model_card import ModelCard, load_card_for_onnx, sha256_file

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class BuildRequest:
    onnx_path: Path
    precision: str
    out_dir: Path
    calib: Path | None = None
    calib_cache: Path | None = None
    timing_cache: Path | None = None
    settings: trt_api.BuildSettings | None = None
    verify: bool = True
    verify_data: Path | None = None
    verify_images: int | None = 256
    reference_onnx: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    force: bool = False
    verbose: bool = False
    device: int = 0
    #: Let TensorRT calibrate on the GPU instead of computing the cache on the CPU (see below).
    device_calibration: bool = False

    def __post_init__(self) -> None:
        for name in ("onnx_path", "out_dir", "calib", "calib_cache", "timing_cache"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        for name in ("verify_data", "reference_onnx"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))


@dataclass
class BuildResult:
    plan_path: Path
    metadata: PlanMetadata
    seconds: float
    verified: bool | None


def plan_path_for(onnx_path: Path, precision: str, out_dir: Path) -> Path:
    """``lane_change.onnx`` -> ``OUT/lane_change.fp16.plan``; a Q/DQ model keeps its own stem."""
    stem = onnx_path.stem
    if stem.endswith(f".{precision}") or stem.endswith(f".{precision}.qdq"):
        return out_dir / f"{stem}.plan"
    return out_dir / f"{stem}.{precision}.plan"


def rebuild_command(req: BuildRequest) -> str:
    """The canonical command that reproduces this build (recorded, and shown on mismatches)."""
    parts = ["engine-builder", "build", str(req.onnx_path), "--precision", req.precision]
    parts += ["--out", str(req.out_dir)]
    if req.calib:
        parts += ["--calib", str(req.calib)]
    if req.calib_cache:
        parts += ["--calib-cache", str(req.calib_cache)]
    return shlex.join(parts)


def int8_source(req: BuildRequest, model: onnx.ModelProto) -> str | None:
    """``qdq``, ``calibrator`` or None; refuses combinations that cannot mean what they say."""
    qdq = is_qdq_model(model)
    if req.precision != "int8":
        if qdq:
            raise EngineBuilderError(
                f"{req.onnx_path} is a Q/DQ (int8) model; build it with --precision int8"
            )
        if req.calib or req.calib_cache:
            raise EngineBuilderError("--calib/--calib-cache only apply to --precision int8")
        return None
    if qdq:
        if req.calib or req.calib_cache:
            raise EngineBuilderError(
                f"{req.onnx_path} is a Q/DQ model and carries its own scales; drop --calib/--calib-cache"
            )
        require_tensorrt_qdq(model, str(req.onnx_path))
        return "qdq"
    if not req.calib and not (req.calib_cache and req.calib_cache.is_file()):
        raise EngineBuilderError(
            "int8 needs calibration: --calib SET (e.g. calibration/default), --calib-cache FILE, "
            "or a Q/DQ model from `engine-builder quantize`"
        )
    return "calibrator"


def default_calib_cache(calib_set: ImageSet, card: ModelCard, version: trt_api.Version) -> Path:
    """Caches live beside the set they came from, named by model, set and TensorRT version."""
    base = calib_set.manifest_path.parent if calib_set.manifest_path else calib_set.root
    code = trt_api.calibration_cache_version_code(version)
    name = f"{card.name}-{card.onnx_sha256[:12]}-set{calib_set.hash[:12]}-trt{code}.cache"
    return base / "caches" / name


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower()


@contextlib.contextmanager
def _parser_input(onnx_path: Path, precision: str, caps: trt_api.Capabilities, say):
    """The ONNX file TensorRT parses: fp16-converted for strongly typed fp16 builds."""
    if not (caps.strongly_typed and precision == "fp16"):
        yield onnx_path
        return
    from engine_builder.fp16_onnx import convert_to_fp16

    say("strongly typed TensorRT: converting the ONNX to fp16 (fp32 inputs/outputs kept)")
    with tempfile.TemporaryDirectory(prefix="engine-builder-fp16-") as tmp:
        path = Path(tmp) / f"{onnx_path.stem}.fp16.onnx"
        onnx.save(convert_to_fp16(onnx.load(str(onnx_path))), str(path))
        yield path


class ScalesFrom(enum.Enum):
    """Where an int8 calibrator build gets its scales (recorded as ``int8.calibration_cache.source``)."""

    GIVEN = "given"  #: --calib-cache FILE that exists
    REUSED = "reused"  #: the cache of an earlier build with the same model, set and TensorRT
    CPU = "cpu"  #: computed on the CPU now (write_cpu_cache), then read by TensorRT
    DEVICE = "device"  #: TensorRT calibrates on the GPU now (--device-calibration)


@dataclass(frozen=True)
class Calibration:
    """The int8 calibrator's inputs: the cache file and where its scales come from."""

    cache_path: Path | None
    scales_from: ScalesFrom
    images: ImageSet | None
    batch: int  #: images per calibration batch (at most the set's size)


@dataclass(frozen=True)
class BuildInputs:
    """What one build works from; ``settings`` is this build's own copy."""

    onnx_path: Path
    card: ModelCard
    onnx_sha256: str
    int8_source: str | None  #: qdq | calibrator | None
    settings: trt_api.BuildSettings
    calib_set: ImageSet | None


@dataclass(frozen=True)
class BuiltPlan:
    """The serialized engine and what building it measured."""

    plan: bytes
    seconds: float
    io: list[dict[str, Any]]
    timing: dict[str, int]
    calibration_batches: int | None


def build_engine(req: BuildRequest, say: Callable[[str], None] = print) -> BuildResult:
    """Build, verify and publish one engine; see the module docstring for the precision paths."""
    inputs = resolve_inputs(req)
    trt = trt_api.import_tensorrt()
    caps = trt_api.capabilities(trt)
    check_supported(trt, caps, req, inputs)
    out_dir = Path(req.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan_path = plan_path_for(inputs.onnx_path, req.precision, out_dir)
    ctx = PrimaryContext(req.device)
    try:
        runtime = query_runtime_info(ctx, trt.__version__)
        timing_path = req.timing_cache or out_dir / timing_cache_name(trt.__version__, runtime)
        calibration = choose_calibration(req, inputs, caps.version)
        if calibration is not None and calibration.scales_from is ScalesFrom.CPU:
            write_cpu_cache(
                inputs.onnx_path,
                inputs.card,
                inputs.calib_set,
                calibration.cache_path,
                caps.version,
                say,
            )
        say(
            f"building {plan_path.name}: {req.precision}"
            + (f" (int8 via {inputs.int8_source})" if inputs.int8_source else "")
            + f", TensorRT {trt.__version__} on {runtime.gpu_name} (sm {runtime.compute_capability})"
        )
        with ctx.active():
            parsed = parse_network(trt, caps, req, inputs.card, say)
            calibrator = make_calibrator(trt, caps, inputs, calibration, ctx, say)
            try:
                built = build_serialized(
                    trt, caps, parsed, inputs, calibrator, timing_path, req.onnx_path, say
                )
            finally:
                if calibrator is not None:
                    calibrator._free()
    finally:
        ctx.release()
    meta = describe_plan(req, inputs, built, calibration, runtime, caps, plan_path, timing_path)
    verified = None
    tmp_plan = out_dir / f".{plan_path.name}.{os.getpid()}.tmp"
    tmp_plan.write_bytes(built.plan)
    try:
        if req.verify:
            meta, verified = verify_candidate(tmp_plan, plan_path, meta, req, inputs.card, say)
        publish(tmp_plan, plan_path, meta)
    finally:
        tmp_plan.unlink(missing_ok=True)
    say(f"wrote {plan_path} ({len(built.plan) / 1e6:.1f} MB) and {plan_path.name}.json")
    return BuildResult(plan_path, meta, built.seconds, verified)


# ---------------------------------------------------------------------------- the steps
def resolve_inputs(req: BuildRequest) -> BuildInputs:
    """Card, ONNX hash, int8 source and this build's settings (a copy: ``req`` stays as given)."""
    if req.precision not in PRECISIONS:
        raise EngineBuilderError(f"precision must be one of {', '.join(PRECISIONS)}")
    onnx_path = Path(req.onnx_path)
    card = load_card_for_onnx(onnx_path)
    source = int8_source(req, onnx.load(str(onnx_path), load_external_data=False))
    base = req.settings or trt_api.BuildSettings(req.precision, source)
    settings = dataclasses.replace(base, precision=req.precision, int8_source=source)
    calib_set = load_image_set(req.calib, card.input) if req.calib else None
    if calib_set is not None and source == "calibrator":
        batch = min(settings.calibration_batch, len(calib_set.entries))
        settings = dataclasses.replace(settings, calibration_batch=batch)
    return BuildInputs(
        onnx_path, card, card.onnx_sha256 or sha256_file(onnx_path), source, settings, calib_set
    )


def check_supported(trt, caps: trt_api.Capabilities, req: BuildRequest, inputs: BuildInputs):
    """Refuse what this TensorRT cannot build, with the command that gets there instead."""
    if inputs.int8_source == "calibrator" and not caps.entropy_calibrator:
        onnx_path = inputs.onnx_path
        raise EngineBuilderError(
            f"TensorRT {trt.__version__} is strongly typed and has no IInt8EntropyCalibrator2; "
            f"quantise first: engine-builder quantize {onnx_path} --calib {req.calib or 'SET'} "
            f"--out {onnx_path.with_suffix('')}.int8.qdq.onnx, then build that with --precision int8"
        )


def timing_cache_name(tensorrt_version: str, runtime: RuntimeInfo) -> str:
    """One timing cache per TensorRT version and GPU (a cache is only valid for both)."""
    return (
        f"timing.trt{tensorrt_version}.sm{runtime.compute_capability}."
        f"{_slug(runtime.gpu_name)}.cache"
    )


def choose_calibration(
    req: BuildRequest, inputs: BuildInputs, version: trt_api.Version
) -> Calibration | None:
    """Where the int8 calibrator's scales come from (None unless int8 via the calibrator).

    In order: a ``--calib-cache`` file that exists; the cache an earlier build left beside the
    calibration set; else computed now, on the CPU (default) or by TensorRT on the GPU.
    """
    if inputs.int8_source != "calibrator":
        return None
    batch, images = inputs.settings.calibration_batch, inputs.calib_set
    if req.calib_cache is not None and req.calib_cache.is_file():
        return Calibration(req.calib_cache, ScalesFrom.GIVEN, images, batch)
    cache = req.calib_cache
    if cache is None and images is not None:
        cache = default_calib_cache(images, inputs.card, version)
        if cache.is_file():
            return Calibration(cache, ScalesFrom.REUSED, images, batch)
    where = ScalesFrom.DEVICE if req.device_calibration else ScalesFrom.CPU
    return Calibration(cache, where, images, batch)


def parse_network(trt, caps: trt_api.Capabilities, req: BuildRequest, card: ModelCard, say):
    """The ONNX parsed into a TensorRT network whose input is the card's."""
    logger = trt_api.make_logger(trt, req.verbose)
    with _parser_input(Path(req.onnx_path), req.precision, caps, say) as parse_path:
        parsed = trt_api.parse_onnx(trt, logger, parse_path, caps)
    if [name for name, _ in parsed.inputs] != [card.input.name]:
        raise EngineBuilderError(
            f"{req.onnx_path}: network inputs {parsed.inputs} do not match the card's "
            f"{card.input.name!r}"
        )
    return parsed


def make_calibrator(
    trt, caps, inputs: BuildInputs, calibration: Calibration | None, ctx: PrimaryContext, say
):
    """TensorRT's entropy calibrator over the calibration set (reads/writes the cache)."""
    if calibration is None:
        return None
    cache_path, images, batch = calibration.cache_path, calibration.images, calibration.batch
    if cache_path is not None and cache_path.is_file():
        say(f"calibration cache {cache_path} ({len(read_cache(cache_path).scales)} tensors)")

    def batches():
        if images is None:
            return iter(())
        return (b for b in images.batches(inputs.card.input, batch) if b.shape[0] == batch)

    return trt_api.make_entropy_calibrator(trt, caps, batches, cache_path, ctx.cuda)


def configure_precision(trt, caps, parsed, settings, calibrator, timing_data, say):
    """Builder config: precision flags by version, profile, calibrator, timing cache."""
    progress = trt_api.make_progress_monitor(trt, caps, say)
    config = trt_api.make_config(
        trt,
        parsed,
        caps,
        settings,
        timing_cache_data=timing_data,
        calibrator=calibrator,
        progress=progress,
    )
    return config, progress


def build_serialized(
    trt, caps, parsed, inputs: BuildInputs, calibrator, timing_path: Path, onnx_path, say
) -> BuiltPlan:
    """Build the serialized engine, loading and saving the timing cache around it."""
    timing_data = timing_path.read_bytes() if timing_path.is_file() else None
    say(
        f"timing cache {timing_path.name}: "
        + (f"loaded {len(timing_data)} bytes" if timing_data else "new")
    )
    config, progress = configure_precision(
        trt, caps, parsed, inputs.settings, calibrator, timing_data, say
    )
    started = time.monotonic()
    heartbeat = trt_api.Heartbeat(say, "building") if progress is None else contextlib.nullcontext()
    with heartbeat:
        plan = trt_api.build_serialized(trt, parsed, config, Path(onnx_path))
    seconds = time.monotonic() - started
    new_timing = trt_api.serialized_timing_cache(config)
    if new_timing:
        tmp = timing_path.with_name(f".{timing_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(new_timing)
        os.replace(tmp, timing_path)
    say(f"built in {seconds:.1f} s")
    io = [
        {"name": name, "mode": "input", "shape": list(shape), "dtype": "float32"}
        for name, shape in parsed.inputs
    ] + [{"name": name, "mode": "output", "dtype": "float32"} for name in parsed.outputs]
    return BuiltPlan(
        plan=plan,
        seconds=seconds,
        io=io,
        timing={
            "timing_cache_loaded_bytes": len(timing_data or b""),
            "timing_cache_saved_bytes": len(new_timing),
        },
        calibration_batches=getattr(calibrator, "batches_used", None),
    )


def describe_plan(
    req: BuildRequest,
    inputs: BuildInputs,
    built: BuiltPlan,
    calibration: Calibration | None,
    runtime: RuntimeInfo,
    caps: trt_api.Capabilities,
    plan_path: Path,
    timing_path: Path,
) -> PlanMetadata:
    """The ``.plan.json`` of the new engine (paths relative to its directory)."""
    out_dir = plan_path.parent
    return make_metadata(
        plan=built.plan,
        plan_name=plan_path.name,
        precision=req.precision,
        onnx_path=Path(os.path.relpath(inputs.onnx_path.resolve(), out_dir.resolve())),
        onnx_sha256=inputs.onnx_sha256,
        fp32_reference=_fp32_reference(req, inputs, out_dir),
        int8=_int8_metadata(inputs, calibration, built.calibration_batches),
        runtime=runtime,
        strongly_typed=caps.strongly_typed,
        io=built.io,
        builder={**inputs.settings.to_dict(), "timing_cache": str(timing_path), **built.timing},
        build_seconds=built.seconds,
        command=rebuild_command(req),
        card=inputs.card,
    )


def verify_candidate(
    tmp_plan: Path,
    plan_path: Path,
    meta: PlanMetadata,
    req: BuildRequest,
    card: ModelCard,
    say: Callable[[str], None],
) -> tuple[PlanMetadata, bool]:
    """The candidate vs its FP32 ONNX; raises unless it passes (or ``force``)."""
    data = (
        load_image_set(req.verify_data, card.input).subset(req.verify_images)
        if req.verify_data
        else None
    )
    result = verify_plan(
        tmp_plan,
        data,
        req.thresholds,
        metadata=meta,
        onnx_override=req.reference_onnx,
        limit=req.verify_images,
        device=req.device,
        say=say,
    )
    for line in result.comparison.lines():
        say(f"  {line}")
    meta = meta.with_verification(result.to_dict(req.thresholds, forced=req.force))
    if not result.passed and not req.force:
        raise VerificationFailedError(
            f"{plan_path.name}: engine disagrees with the FP32 ONNX "
            f"({'; '.join(result.failures)}); not published. Rebuild with another "
            "precision/calibration, or pass --force to publish anyway"
        )
    return meta, result.passed


def publish(tmp_plan: Path, plan_path: Path, meta: PlanMetadata) -> None:
    """Move the plan into place, then its metadata (readers check one against the other)."""
    os.replace(tmp_plan, plan_path)
    write_metadata(plan_path, meta)


def _fp32_reference(req: BuildRequest, inputs: BuildInputs, out_dir: Path) -> dict[str, str] | None:
    """For a Q/DQ model: the FP32 ONNX it was quantised from (what verification compares to)."""
    if inputs.int8_source != "qdq":
        return None
    if req.reference_onnx is not None:  # checked against the recorded sha by verify
        ref_path = req.reference_onnx
        ref_sha = (inputs.card.provenance.get("quantization") or {}).get(
            "fp32_onnx_sha256"
        ) or sha256_file(ref_path)
    else:
        ref_path, ref_sha = fp32_reference_of_onnx(inputs.onnx_path, inputs.card)
    return {"path": os.path.relpath(ref_path.resolve(), out_dir.resolve()), "sha256": ref_sha}


def write_cpu_cache(
    onnx_path: Path,
    card: ModelCard,
    calib_set: ImageSet | None,
    cache_path: Path,
    version: trt_api.Version,
    say: Callable[[str], None],
) -> None:
    """The entropy calibration cache computed on the CPU (TensorRT's algorithm, exact input range).

    Why not let TensorRT calibrate: its entropy threshold for the normalised input clips the
    bright and dark pixels (few, but meaningful), which on the trained model cost 1.4 accuracy
    points in simulation; the input's range is known exactly from the preprocessing. The CPU cache
    is also the one the Q/DQ model uses, so both INT8 paths quantise alike.
    ``--device-calibration`` restores TensorRT's own calibration.
    """
    from engine_builder.entropy_cache import scales_from_amax, write_cache
    from engine_builder.quantize import activation_ranges

    if calib_set is None:
        raise EngineBuilderError(f"{cache_path}: calibration cache not found and no --calib SET")
    amax = activation_ranges(
        onnx_path, card, calib_set, method="entropy", percentile=99.99, say=say
    )
    code = trt_api.calibration_cache_version_code(version)
    write_cache(cache_path, scales_from_amax(amax), code)
    say(f"calibration cache computed on the CPU: {cache_path}")


def _int8_metadata(
    inputs: BuildInputs, calibration: Calibration | None, calibration_batches: int | None
) -> dict[str, Any] | None:
    if inputs.int8_source is None:
        return None
    if inputs.int8_source == "qdq":
        quant = dict((inputs.card.provenance or {}).get("quantization") or {})
        return {
            "method": "qdq",
            "calibration_set": quant.get("calibration_set"),
            "quantization": quant,
        }
    assert calibration is not None  # choose_calibration gives one for every calibrator build
    source = calibration.scales_from.value
    cache_path, cache = calibration.cache_path, None
    if cache_path is not None and cache_path.is_file():
        cache = {"path": str(cache_path), "sha256": sha256_file(cache_path), "source": source}
    calib_set = inputs.calib_set
    return {
        "method": "IInt8EntropyCalibrator2",
        #: where the scales came from: TensorRT on this GPU, or a cache (cpu / given / reused)
        "scales": "device" if calibration_batches else f"cache ({source})",
        "calibration_set": calib_set.describe() if calib_set else None,
        "calibration_cache": cache,
        "calibration_batches": calibration_batches,
    }
